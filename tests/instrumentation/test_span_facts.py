"""Before the db span ends it carries the tenant context, the statement's tenant facts and the caller's location."""

from __future__ import annotations

import inspect
from typing import Any

import sqlalchemy as sa
from sa_support import Country, Item, Traced, attrs
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from tenantwatch import attributes as A
from tenantwatch.context import tenant_context, trust_baggage, unscoped

ITEMS = Item.__table__
HERE = __file__


def _lines_of(function: Any) -> range:
    lines, first = inspect.getsourcelines(function)
    return range(first, first + len(lines))


def test_core_select_carries_context_filter_and_values(engine: Any, tw: Traced) -> None:
    with tenant_context("1", user_id="u-7", role="member"), engine.connect() as conn:
        conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id == 1, ITEMS.c.id > 5)).all()
    span = attrs(tw.only_db_span())
    assert span[A.TENANT_ID] == "1"
    assert span[A.ENDUSER_ID] == "u-7"
    assert span[A.ENDUSER_ROLE] == "member"
    assert span[A.DB_TABLES] == ("items",)
    assert span[A.DB_TENANT_TABLES] == ("items",)
    assert span[A.DB_TENANT_FILTER] == "present"
    assert span[A.DB_TENANT_VALUES] == ("1",)
    assert span[A.DB_OPERATION] == "SELECT"
    assert len(span[A.DB_FINGERPRINT]) >= 8
    assert span[A.CODE_FUNCTION] == "test_core_select_carries_context_filter_and_values"
    assert span[A.CODE_FILEPATH] == HERE
    assert span[A.CODE_LINENO] in _lines_of(test_core_select_carries_context_filter_and_values)


def test_missing_filter_and_expanding_in(engine: Any, tw: Traced) -> None:
    with tenant_context("2"), engine.connect() as conn:
        conn.execute(sa.select(ITEMS)).all()
        conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id.in_([1, 2]))).all()
        conn.execute(
            sa.text("SELECT id FROM items WHERE organization_id IN :orgs").bindparams(
                sa.bindparam("orgs", expanding=True)
            ),
            {"orgs": [2, 3]},
        ).all()
    unfiltered, core_in, text_in = (attrs(s) for s in tw.db_spans())
    assert unfiltered[A.DB_TENANT_FILTER] == "missing"
    assert unfiltered[A.DB_UNFILTERED] == ("main:items",)
    assert A.DB_TENANT_VALUES not in unfiltered
    assert core_in[A.DB_TENANT_FILTER] == "present"
    assert core_in[A.DB_TENANT_VALUES] == ("1", "2")
    assert text_in[A.DB_TENANT_VALUES] == ("2", "3")


def test_orm_writes_carry_written_tenant_values(engine: Any, tw: Traced) -> None:
    with tenant_context("1"), Session(engine) as session:
        session.add(Item(id=5000, organization_id=1, name="new"))
        session.flush()
        session.execute(sa.update(Item).where(Item.organization_id == 1, Item.id == 5000).values(name="renamed"))
        session.scalars(sa.select(Country)).all()
        session.rollback()
    insert, update = tw.db_spans("items")
    assert attrs(insert)[A.DB_OPERATION] == "INSERT"
    assert attrs(insert)[A.DB_WRITTEN_TENANT_VALUES] == ("1",)
    assert attrs(insert)[A.CODE_FUNCTION] == "test_orm_writes_carry_written_tenant_values"
    assert attrs(update)[A.DB_TENANT_FILTER] == "present"
    assert attrs(update)[A.DB_TENANT_VALUES] == ("1",)
    countries = attrs(tw.only_db_span("countries"))
    assert countries[A.DB_TENANT_FILTER] == "not_applicable"
    assert A.DB_TENANT_TABLES not in countries


def test_unscoped_work_is_tagged(engine: Any, tw: Traced) -> None:
    with unscoped("nightly roll-up"), engine.connect() as conn:
        conn.execute(sa.text("SELECT organization_id, count(*) FROM items GROUP BY organization_id")).all()
    span = attrs(tw.only_db_span())
    assert span[A.UNSCOPED_REASON] == "nightly roll-up"
    assert span[A.DB_TENANT_FILTER] == "missing"


def test_baggage_tenant_only_after_trust_baggage(engine: Any, tw: Traced) -> None:
    """Attached baggage alone does not tag db spans (a peer's claim); inside ``trust_baggage()`` it does."""
    from opentelemetry import baggage, context

    token = context.attach(baggage.set_baggage(A.TENANT_ID, "acme"))
    try:
        with engine.connect() as conn:
            conn.execute(sa.select(ITEMS.c.id).where(ITEMS.c.organization_id == 1)).all()
        untrusted = attrs(tw.only_db_span())
        tw.clear()
        with trust_baggage(), engine.connect() as conn:
            conn.execute(sa.select(ITEMS.c.id).where(ITEMS.c.organization_id == 1)).all()
    finally:
        context.detach(token)
    assert A.TENANT_ID not in untrusted
    assert attrs(tw.only_db_span())[A.TENANT_ID] == "acme"


async def test_async_code_location_points_at_the_coroutine(async_engine: Any, tw: Traced) -> None:
    with tenant_context("1", user_id="u-1"):
        async with AsyncSession(async_engine) as session:
            await session.scalars(sa.select(Item).where(Item.organization_id == 1))
    span = attrs(tw.only_db_span())
    assert span[A.TENANT_ID] == "1"
    assert span[A.DB_TENANT_VALUES] == ("1",)
    assert span[A.CODE_FUNCTION] == "test_async_code_location_points_at_the_coroutine"
    assert span[A.CODE_FILEPATH] == HERE
    assert span[A.CODE_LINENO] in _lines_of(test_async_code_location_points_at_the_coroutine)


def test_code_location_skips_sqlalchemy_generated_code(engine: Any, tw: Traced) -> None:
    """SQLAlchemy compiles some decorators at run time (file ``<string>``): they are library frames too."""
    assert sa.inspect(engine).has_table("items")
    spans = tw.db_spans("")
    assert spans
    assert {attrs(s)[A.CODE_FUNCTION] for s in spans} == {"test_code_location_skips_sqlalchemy_generated_code"}


def test_library_and_application_modules() -> None:
    from tenantwatch.instrumentation._code_location import _module_is_library

    assert _module_is_library("sqlalchemy.engine.reflection")
    assert _module_is_library("opentelemetry.instrumentation.sqlalchemy.engine")
    assert _module_is_library("tenantwatch.instrumentation._listeners")
    assert not _module_is_library("tenantwatch.demo.scenario")  # the demo is an application
    assert not _module_is_library("sqlalchemy_utils")
    assert not _module_is_library("__main__")
    assert not _module_is_library(None)
