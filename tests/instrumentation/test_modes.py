"""Modes on real PostgreSQL: enforce stops a statement before it reaches the database; monitor and off never
interfere. The database's own state is checked on a separate, untraced connection."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.trace import StatusCode
from sa_support import ROWS_PER_TENANT, Item, Traced, attrs, postgres_engine, postgres_rows

from tenantwatch import attributes as A
from tenantwatch.config import Settings, Suppression
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantIsolationError, TenantwatchSQLAlchemyInstrumentor

pytestmark = pytest.mark.postgres

ITEMS = Item.__table__
Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


@pytest.fixture
def database(postgres_dsn: dict[str, Any], pg_schema: str) -> Callable[[str], Any]:
    """Ask the database itself (not through the instrumented engine)."""
    return lambda sql: postgres_rows(postgres_dsn, pg_schema, sql)


@pytest.fixture
def make_engine(postgres_dsn: dict[str, Any], pg_schema: str) -> Iterator[Callable[[], sa.engine.Engine]]:
    engines: list[sa.engine.Engine] = []

    def make() -> sa.engine.Engine:
        engines.append(postgres_engine(postgres_dsn, "psycopg", pg_schema))
        return engines[-1]

    yield make
    for engine in engines:
        engine.dispose()


def test_enforce_blocks_unscoped_writes_before_they_run(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], database: Any
) -> None:
    instrument(mode="enforce", install_processor=True)
    engine = make_engine()
    with tenant_context("1", user_id="u-1"), engine.connect() as conn:
        with pytest.raises(TenantIsolationError) as blocked_delete:
            conn.execute(sa.delete(ITEMS))
        conn.rollback()
        with pytest.raises(TenantIsolationError):
            conn.execute(sa.text("UPDATE items SET name = 'pwned' WHERE id > :floor"), {"floor": 0})
        conn.rollback()
        with pytest.raises(TenantIsolationError):  # cross-tenant: the context is organization 1
            conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 2).values(name="pwned"))
        conn.rollback()
        allowed = conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 1).values(name="mine"))
        conn.commit()
    assert allowed.rowcount == ROWS_PER_TENANT
    assert {f.rule for f in blocked_delete.value.findings} >= {"unscoped_write"}
    assert blocked_delete.value.facts.code_function == "test_enforce_blocks_unscoped_writes_before_they_run"
    assert database("SELECT count(*) FROM items") == [(2 * ROWS_PER_TENANT,)]
    assert database("SELECT count(*) FROM items WHERE name = 'pwned'") == [(0,)]
    assert database("SELECT count(*) FROM items WHERE name = 'mine'") == [(ROWS_PER_TENANT,)]

    blocked = [s for s in traced.db_spans() if attrs(s).get(A.DB_ENFORCED)]
    assert len(blocked) == 3
    delete = blocked[0]
    assert delete.status.status_code is StatusCode.ERROR
    assert attrs(delete)[A.DB_TENANT_FILTER] == "missing"
    assert "unscoped_write" in attrs(delete)[A.FINDINGS]  # the processor reported it like any finding
    assert any(event.name == A.FINDING_EVENT for event in delete.events)


def test_enforce_respects_suppressions(
    instrument: Instrument, make_engine: Callable[[], sa.engine.Engine], database: Any
) -> None:
    settings = Settings(suppressions=(Suppression(table="items", reason="maintenance"),))
    instrument(mode="enforce", settings=settings)
    engine = make_engine()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.update(ITEMS).values(name="bulk"))
    assert database("SELECT count(*) FROM items WHERE name = 'bulk'") == [(2 * ROWS_PER_TENANT,)]


def test_monitor_lets_everything_run(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], database: Any
) -> None:
    instrument(mode="monitor")
    engine = make_engine()
    with tenant_context("1"), engine.begin() as conn:
        conn.execute(sa.update(ITEMS).where(ITEMS.c.organization_id == 1).values(name="mine"))
        conn.execute(sa.delete(ITEMS).where(ITEMS.c.organization_id == 2))
        conn.execute(sa.delete(ITEMS).where(ITEMS.c.id > 1090))
    assert database("SELECT count(*) FROM items") == [(ROWS_PER_TENANT - 9,)]
    update, delete_other, delete_unscoped = (attrs(s) for s in traced.db_spans())
    assert update[A.DB_RETURNED_ROWS] == ROWS_PER_TENANT
    assert delete_other[A.DB_TENANT_VALUES] == ("2",)
    assert delete_unscoped[A.DB_UNSCOPED_WRITES] == ("items",)
    assert not any(A.DB_ENFORCED in attrs(s) for s in traced.spans())


def test_off_records_nothing_of_ours(
    instrument: Instrument, traced: Traced, make_engine: Callable[[], sa.engine.Engine], database: Any
) -> None:
    instrument(mode="off")
    engine = make_engine()
    with tenant_context("1"), engine.begin() as conn:
        rows = conn.execute(sa.select(ITEMS)).all()
        conn.execute(sa.delete(ITEMS))
    assert len(rows) == 2 * ROWS_PER_TENANT
    assert database("SELECT count(*) FROM items") == [(0,)]
    spans = traced.db_spans()
    assert len(spans) == 2  # OTel's own db spans are still there
    for span in spans:
        assert not [key for key in attrs(span) if key.startswith(("tenantwatch.", "tenant.", "code."))]
        assert A.DB_RETURNED_ROWS not in attrs(span)
