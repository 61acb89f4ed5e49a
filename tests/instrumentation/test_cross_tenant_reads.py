"""Observed cross-tenant reads on a real database: the tenant values of the rows the application actually fetched.

Organization 1 is the context tenant; organization 2 owns other rows. Findings come from the span processor on the
exported db spans (``install_processor=True``), with the code location of the statement in this file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sa_support import Traced, attrs, postgres_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, joinedload, mapped_column, relationship

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

_Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("authors.id"))
    body: Mapped[str]
    author: Mapped[Author] = relationship()


OWN_NOTE, OTHER_NOTE, CROSSED_NOTE = 11, 21, 12
"""Org 1's note, org 2's note, and org 1's note whose author belongs to org 2 (a reference across tenants)."""


def _seed(engine: sa.engine.Engine) -> None:
    with unscoped("test seed"), Session(engine) as session:
        session.add_all([Author(id=1, organization_id=1, name="a1"), Author(id=2, organization_id=2, name="a2")])
        session.flush()
        session.add_all(
            [
                Note(id=OWN_NOTE, organization_id=1, author_id=1, body="only-org-1"),
                Note(id=CROSSED_NOTE, organization_id=1, author_id=2, body="crossed"),
                Note(id=OTHER_NOTE, organization_id=2, author_id=2, body="org-2"),
            ]
        )
        session.commit()


@pytest.fixture
def pg_engine(instrument: _Instrument, postgres_dsn: dict[str, Any], pg_schema: str) -> Iterator[sa.engine.Engine]:
    instrument(install_processor=True)
    engine = postgres_engine(postgres_dsn, "psycopg", pg_schema)
    Base.metadata.create_all(engine)
    _seed(engine)
    yield engine
    engine.dispose()


def _here() -> int:
    """The line number of the caller (the statement's code location is the line after)."""
    return sys._getframe(1).f_lineno


def _findings(span: Any) -> dict[str, tuple[str, str]]:
    """rule -> (severity, message) of the findings the processor put on a span."""
    found = {}
    for event in span.events:
        if event.name == A.FINDING_EVENT:
            event_attrs = dict(event.attributes or {})
            found[str(event_attrs[A.RULE])] = (str(event_attrs[A.SEVERITY]), str(event_attrs[A.MESSAGE]))
    return found


def _counts(span: Any) -> tuple[Any, ...]:
    a = attrs(span)
    return tuple(
        a.get(key)
        for key in (
            A.DB_TENANT_ROWS_INSPECTED,
            A.DB_TENANT_ROWS_OWN,
            A.DB_TENANT_ROWS_OTHER,
            A.DB_TENANT_ROWS_UNINSPECTED,
        )
    )


def _select_span(traced: Traced, needle: str = "FROM notes") -> Any:
    spans = [s for s in traced.db_spans(needle) if str(attrs(s).get(A.DB_OPERATION)) == "SELECT"]
    assert len(spans) == 1, [attrs(s).get(A.DB_STATEMENT) for s in spans]
    return spans[0]


@pytest.mark.postgres
def test_session_get_of_another_tenants_row_is_a_cross_tenant_read(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), Session(pg_engine) as session:
        line = _here() + 1
        note = session.get(Note, OTHER_NOTE)
    assert note is not None and note.organization_id == 2  # the application got its row, unchanged
    span = _select_span(traced)
    found = _findings(span)
    severity, message = found["cross_tenant_read"]
    assert severity == "critical"
    assert "1 row(s) of another tenant from notes (a lookup by key without a tenant filter)" in message
    assert "org-2" not in message and "'2'" not in message  # counts, never values
    assert found["missing_tenant_filter"][0] == "critical"  # not latent: a row left its tenant
    assert _counts(span) == (1, 0, 1, 0)
    assert attrs(span)[A.DB_KEYED] == ("main:notes",)
    assert (attrs(span)[A.CODE_FILEPATH], attrs(span)[A.CODE_LINENO]) == (__file__, line)


@pytest.mark.postgres
def test_session_get_of_an_own_row_is_a_latent_warning(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), Session(pg_engine) as session:
        line = _here() + 1
        session.get(Note, OWN_NOTE)
    span = _select_span(traced)
    found = _findings(span)
    assert set(found) == {"missing_tenant_filter"}
    severity, message = found["missing_tenant_filter"]
    assert severity == "warning"
    assert "latent, a lookup by key: the 1 row(s) it returned were all the context tenant's" in message
    assert attrs(span)[A.SEVERITY] == "warning"
    assert _counts(span) == (1, 1, 0, 0)
    assert attrs(span)[A.CODE_LINENO] == line


@pytest.mark.postgres
def test_list_query_without_filter_returning_only_own_rows_stays_critical(
    pg_engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context("1"), Session(pg_engine) as session:
        notes = session.scalars(sa.select(Note).where(Note.body == "only-org-1")).all()
    assert [n.id for n in notes] == [OWN_NOTE]
    span = _select_span(traced)
    found = _findings(span)
    assert set(found) == {"missing_tenant_filter"}
    assert found["missing_tenant_filter"][0] == "critical"
    assert "latent, a read" in found["missing_tenant_filter"][1]
    assert _counts(span) == (1, 1, 0, 0)


@pytest.mark.postgres
def test_raw_text_read_without_filter_returning_other_tenants_rows(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), pg_engine.connect() as conn:
        line = _here() + 1
        rows = conn.execute(sa.text("SELECT id, body, organization_id FROM notes ORDER BY id")).all()
    assert len(rows) == 3
    span = _select_span(traced)
    assert _findings(span)["cross_tenant_read"][0] == "critical"
    assert _counts(span) == (3, 2, 1, 0)
    assert attrs(span)[A.CODE_LINENO] == line


@pytest.mark.postgres
def test_raw_read_whose_tenant_column_is_not_in_the_result_is_not_inspected(
    pg_engine: sa.engine.Engine, traced: Traced
) -> None:
    traced.clear()
    with tenant_context("1"), pg_engine.connect() as conn:
        conn.execute(sa.text("SELECT id, body FROM notes")).all()
    span = _select_span(traced)
    assert set(_findings(span)) == {"missing_tenant_filter"}
    assert _findings(span)["missing_tenant_filter"][0] == "critical"
    assert A.DB_TENANT_ROWS_INSPECTED not in attrs(span)


@pytest.mark.postgres
def test_joinedload_of_another_tenants_row_through_a_foreign_key(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    """The note is filtered; its author, joined by the declared key, is inherited: another tenant's author row is a
    cross-tenant reference gone live."""
    traced.clear()
    with tenant_context("1"), Session(pg_engine) as session:
        query = sa.select(Note).where(Note.organization_id == 1).options(joinedload(Note.author)).order_by(Note.id)
        notes = session.scalars(query).unique().all()
    assert [n.author.organization_id for n in notes] == [1, 2]
    span = _select_span(traced)
    assert "join:authors_1:authors:fk_join" in attrs(span)[A.DB_INHERITED]
    found = _findings(span)
    assert set(found) == {"cross_tenant_read"}
    assert "from authors (reached through a foreign key" in found["cross_tenant_read"][1]
    assert attrs(span)[A.DB_TENANT_ROWS_OTHER_TABLES] == ("authors",)
    assert _counts(span) == (2, 1, 1, 0)


@pytest.mark.postgres
def test_joinedload_with_only_own_rows_says_nothing(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), Session(pg_engine) as session:
        session.scalars(
            sa.select(Note).where(Note.id == OWN_NOTE, Note.organization_id == 1).options(joinedload(Note.author))
        ).unique().all()
    span = _select_span(traced)
    assert _findings(span) == {}
    assert _counts(span) == (1, 1, 0, 0)


@pytest.mark.postgres
def test_inspection_is_capped(
    instrument: _Instrument, traced: Traced, postgres_dsn: dict[str, Any], pg_schema: str
) -> None:
    instrument(install_processor=True, settings=Settings(rules={"cross_tenant_read": {"max_rows": 1000}}))
    engine = postgres_engine(postgres_dsn, "psycopg", pg_schema)
    with unscoped("seed"), engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id int PRIMARY KEY, organization_id int NOT NULL)"))
        conn.execute(sa.text("INSERT INTO events SELECT g, 1 + (g % 2) FROM generate_series(1, 10000) AS g"))
    traced.clear()
    with tenant_context("1"), engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, organization_id FROM events")).all()
    engine.dispose()
    assert len(rows) == 10_000
    (span,) = [s for s in traced.db_spans("FROM events")]
    inspected, own, other, uninspected = _counts(span)
    assert (inspected, own + other, uninspected) == (1000, 1000, 9000)
    assert other > 0
    assert attrs(span)[A.DB_RETURNED_ROWS] == 10_000
    assert "(1000 inspected, 9000 more not inspected)" in _findings(span)["cross_tenant_read"][1]


@pytest.mark.postgres
def test_result_left_half_read_counts_what_was_read(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), pg_engine.connect() as conn:
        result = conn.execute(sa.text("SELECT id, organization_id FROM notes ORDER BY id"))
        first = result.fetchone()  # org 1's note; the rest is never fetched
        assert first is not None and tuple(first) == (OWN_NOTE, 1)
    span = _select_span(traced)
    assert _counts(span) == (1, 1, 0, 0)
    assert attrs(span)[A.DB_RETURNED_ROWS] == 1
    assert "cross_tenant_read" not in _findings(span)


@pytest.mark.postgres
def test_unscoped_reads_are_not_inspected(pg_engine: sa.engine.Engine, traced: Traced) -> None:
    traced.clear()
    with tenant_context("1"), unscoped("support console"), Session(pg_engine) as session:
        session.get(Note, OTHER_NOTE)
    span = _select_span(traced)
    assert _findings(span) == {}
    assert A.DB_TENANT_ROWS_INSPECTED not in attrs(span)


def test_sqlite_session_get_of_another_tenants_row(instrument: _Instrument, traced: Traced, tmp_path: Path) -> None:
    instrument(install_processor=True)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    Base.metadata.create_all(engine)
    _seed(engine)
    traced.clear()
    with tenant_context("1"), Session(engine) as session:
        line = _here() + 1
        session.get(Note, OTHER_NOTE)
        session.get(Note, OWN_NOTE)
    engine.dispose()
    spans = [s for s in traced.db_spans("FROM notes") if attrs(s).get(A.DB_OPERATION) == "SELECT"]
    assert [_counts(s) for s in spans] == [(1, 0, 1, 0), (1, 1, 0, 0)]
    assert _findings(spans[0])["cross_tenant_read"][0] == "critical"
    assert attrs(spans[0])[A.CODE_LINENO] == line
    assert set(_findings(spans[1])) == {"missing_tenant_filter"}
    severity, message = _findings(spans[1])["missing_tenant_filter"]
    assert severity == "warning"
    assert "latent, a lookup by key" in message


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg2", "psycopg-stream"])
def test_other_drivers_and_streamed_results(
    instrument: _Instrument, traced: Traced, postgres_dsn: dict[str, Any], pg_schema: str, driver: str
) -> None:
    """psycopg2's rows, and a server-side cursor (``stream_results``) read in batches, are inspected alike."""
    instrument(install_processor=True)
    engine = postgres_engine(postgres_dsn, driver.partition("-")[0], pg_schema)
    Base.metadata.create_all(engine)
    _seed(engine)
    traced.clear()
    with tenant_context("1"), engine.connect() as conn:
        if driver.endswith("stream"):
            result = conn.execution_options(stream_results=True, max_row_buffer=1).execute(sa.select(Note.__table__))
            rows = [row for batch in result.partitions(1) for row in batch]
        else:
            rows = list(conn.execute(sa.select(Note.__table__)))
    engine.dispose()
    assert len(rows) == 3
    span = _select_span(traced)
    assert _counts(span) == (3, 2, 1, 0)
    assert _findings(span)["cross_tenant_read"][0] == "critical"


@pytest.mark.postgres
async def test_asyncpg_session_get_of_another_tenants_row(
    instrument: _Instrument, traced: Traced, postgres_dsn: dict[str, Any], pg_schema: str
) -> None:
    from sa_support import postgres_async_engine
    from sqlalchemy.ext.asyncio import AsyncSession

    instrument(install_processor=True)
    sync = postgres_engine(postgres_dsn, "psycopg", pg_schema)
    Base.metadata.create_all(sync)
    _seed(sync)
    sync.dispose()
    engine = postgres_async_engine(postgres_dsn, pg_schema)
    traced.clear()
    with tenant_context("1"):
        async with AsyncSession(engine) as session:
            await session.get(Note, OTHER_NOTE)
    await engine.dispose()
    span = _select_span(traced)
    assert _counts(span) == (1, 0, 1, 0)
    assert _findings(span)["cross_tenant_read"][0] == "critical"


def test_a_row_it_cannot_read_switches_inspection_off_without_raising() -> None:
    """Counts are recorded only when every fetched row could be read; the application's rows are never touched."""
    from tenantwatch.instrumentation._row_tenants import InspectionPlan, RowTenants

    tenants = RowTenants(InspectionPlan([(2, "notes", "organization_id", None)]), ("1",), max_rows=10)
    tenants.rows([(1, "a", 1), (2, "b", None), (3, "c", "0002")])
    recorded: dict[str, Any] = {}
    tenants.record(recorded)
    assert (recorded[A.DB_TENANT_ROWS_INSPECTED], recorded[A.DB_TENANT_ROWS_OWN]) == (3, 1)  # NULL: no tenant's row
    assert recorded[A.DB_TENANT_ROWS_OTHER] == 1  # "0002" is tenant 2, canonically
    tenants.row((4,))  # too short: cannot be read
    broken: dict[str, Any] = {}
    tenants.record(broken)
    assert broken == {}
