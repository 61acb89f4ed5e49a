"""tenantwatch never breaks the application: hostile statements, a failing analyzer or hook, errors, sampling,
and uninstrument leaves nothing behind."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode
from sa_support import ROWS_PER_TENANT, Item, Traced, attrs, returned_rows, sqlite_engine
from sqlalchemy.engine import Engine
from sqlalchemy.engine.cursor import CursorResult

from tenantwatch import attributes as A
from tenantwatch.config import AnalysisSettings, Settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.sql.analyzer import Analyzer

ITEMS = Item.__table__
Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]


def _tenantwatch_keys(span: Any) -> list[str]:
    return [key for key in attrs(span) if key.startswith(("tenantwatch.", "tenant.", "code."))]


def test_hostile_statements_are_answered_not_raised(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    instrument(settings=Settings(analysis=AnalysisSettings(max_statement_bytes=10_000, max_depth=50)))
    engine = sqlite_engine(sqlite_path)
    deep = "SELECT " + "(" * 80 + "1" + ")" * 80 + " FROM items WHERE organization_id = 1"
    huge = "SELECT count(*) FROM items WHERE name <> '" + "x" * 20_000 + "'"
    with engine.connect() as conn:
        assert len(conn.execute(sa.text(deep)).all()) == ROWS_PER_TENANT
        assert conn.execute(sa.text(huge)).scalar() == 2 * ROWS_PER_TENANT
        assert conn.execute(sa.text("PRAGMA table_info(items)")).all()
    deep_span, huge_span = traced.db_spans("items")[:2]
    assert attrs(deep_span)[A.DB_TENANT_FILTER] == "unknown"
    assert "deeper" in attrs(deep_span)[A.DB_ANALYSIS_ERROR]
    assert "too large" in attrs(huge_span)[A.DB_ANALYSIS_ERROR]
    assert returned_rows(deep_span) == ROWS_PER_TENANT


def test_failing_analyzer_leaves_the_query_alone(
    instrument: Instrument, traced: Traced, sqlite_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    analyzer = Analyzer(Settings())

    def explode(sql: str) -> Any:
        raise RuntimeError("analyzer bug")

    analyzer.analyze = explode  # type: ignore[method-assign]
    instrument(analyzer=analyzer)
    engine = sqlite_engine(sqlite_path)
    with caplog.at_level(logging.WARNING, logger="tenantwatch"), engine.connect() as conn:
        for _ in range(3):
            assert len(conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id == 1)).all()) == ROWS_PER_TENANT
    spans = traced.db_spans()
    assert len(spans) == 3  # OTel still ends its spans
    assert all(not _tenantwatch_keys(span) for span in spans)
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(logged) == 1  # rate-limited: one line, not one per statement
    assert "analyzer bug" in caplog.text


def test_broken_hook_in_enforce_mode_fails_open(
    instrument: Instrument, traced: Traced, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tenantwatch.core.rule as rules

    def broken(*args: Any) -> Any:
        raise RuntimeError("rule engine bug")

    monkeypatch.setattr(rules, "evaluate", broken)
    instrument(mode="enforce")
    engine = sqlite_engine(sqlite_path)
    with tenant_context("1"), engine.begin() as conn:
        assert conn.execute(sa.delete(ITEMS)).rowcount == 2 * ROWS_PER_TENANT
    assert attrs(traced.only_db_span())[A.DB_UNSCOPED_WRITES] == ("items",)


def test_broken_code_location_still_counts_rows(
    instrument: Instrument, traced: Traced, sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantwatch.instrumentation import _attributes

    def broken(skip: int = 1) -> Any:
        raise RuntimeError("frame walk bug")

    monkeypatch.setattr(_attributes, "find_caller", broken)
    instrument()
    engine = sqlite_engine(sqlite_path)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ITEMS)).all()
    assert len(rows) == 2 * ROWS_PER_TENANT
    span = traced.only_db_span()  # OTel ended it as usual
    assert span.end_time is not None


def test_failed_statement_carries_facts_and_error(engine: Any, tw: Traced) -> None:
    with tenant_context("1"), engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        conn.execute(sa.text("SELECT no_such_column FROM items WHERE organization_id = :org"), {"org": 1})
    span = tw.only_db_span()
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)[A.TENANT_ID] == "1"
    assert attrs(span)[A.DB_TENANT_VALUES] == ("1",)
    assert attrs(span)[A.CODE_FUNCTION] == "test_failed_statement_carries_facts_and_error"


def test_unsampled_spans_cost_nothing_and_change_nothing(instrument: Instrument, sqlite_path: Path) -> None:
    provider = TracerProvider(sampler=ALWAYS_OFF)
    instrument(tracer_provider=provider)
    engine = sqlite_engine(sqlite_path)
    with engine.connect() as conn:
        result = conn.execute(sa.select(ITEMS))
        assert not hasattr(result.context, "_tenantwatch_rows")  # nothing deferred for a span nobody records
        assert len(result.all()) == 2 * ROWS_PER_TENANT


def test_uninstrument_removes_listeners_and_wrappers(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    instrumentor = instrument()
    hooks = instrumentor._listeners
    assert hooks is not None
    assert sa.event.contains(Engine, "after_cursor_execute", hooks.after_cursor_execute)
    assert hasattr(CursorResult._fetchall_impl, "__wrapped__")
    instrumentor.uninstrument()
    assert not hasattr(CursorResult._fetchall_impl, "__wrapped__")
    for name in ("after_cursor_execute", "handle_error", "engine_connect"):
        assert not sa.event.contains(Engine, name, getattr(hooks, name))

    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().instrument(tracer_provider=traced.provider)  # OTel alone, after tenantwatch left
    engine = sqlite_engine(sqlite_path)
    with engine.connect() as conn:
        assert len(conn.execute(sa.select(ITEMS)).all()) == 2 * ROWS_PER_TENANT
    span = traced.only_db_span()
    assert not _tenantwatch_keys(span)
    assert A.DB_RETURNED_ROWS not in attrs(span)


def test_engine_created_before_instrument_is_traced_when_passed(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    early = sa.create_engine(f"sqlite:///{sqlite_path}")  # before instrument(): OTel's patch cannot see it
    instrument(engine=early)
    with tenant_context("2"), early.connect() as conn:
        conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id == 2)).all()
    span = attrs(traced.only_db_span())
    assert span[A.TENANT_ID] == "2"
    assert span[A.DB_RETURNED_ROWS] == ROWS_PER_TENANT


@pytest.mark.postgres
def test_error_while_fetching_ends_the_span_with_the_rows_so_far(
    instrument: Instrument, traced: Traced, postgres_dsn: dict[str, Any], pg_schema: str
) -> None:
    from sa_support import postgres_engine

    instrument()
    engine = postgres_engine(postgres_dsn, "psycopg", pg_schema)
    failing = sa.text("SELECT 100 / (50 - g) AS x FROM generate_series(1, 100) AS g")
    received = 0
    with engine.connect() as conn, pytest.raises(sa.exc.DataError):  # division by zero at row 50
        for _row in conn.execution_options(stream_results=True, max_row_buffer=10).execute(failing):
            received += 1
    span = traced.only_db_span("generate_series")
    assert span.status.status_code is StatusCode.ERROR
    assert "division by zero" in (span.status.description or "")
    assert returned_rows(span) == received
    assert 0 < received < 50
    engine.dispose()


def test_engines_created_before_someone_else_instrumented_otel(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from sqlalchemy.ext.asyncio import create_async_engine

    early = sa.create_engine(f"sqlite:///{sqlite_path}")
    early_async = create_async_engine(f"sqlite+aiosqlite:///{sqlite_path}")
    SQLAlchemyInstrumentor().instrument(tracer_provider=traced.provider)  # the application did this first
    instrument(engines=[early, early_async])
    with early.connect() as conn:
        conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id == 1)).all()

    async def read() -> int:
        async with early_async.connect() as conn:
            rows = (await conn.execute(sa.select(ITEMS).where(ITEMS.c.organization_id == 2))).all()
        await early_async.dispose()
        return len(rows)

    import asyncio

    assert asyncio.run(read()) == ROWS_PER_TENANT
    assert [returned_rows(s) for s in traced.db_spans()] == [ROWS_PER_TENANT, ROWS_PER_TENANT]


def test_tenant_isolation_error_survives_pickling() -> None:
    import pickle

    from tenantwatch.core.findings import Finding
    from tenantwatch.facts import SpanFacts
    from tenantwatch.instrumentation import TenantIsolationError

    error = TenantIsolationError(
        (Finding("unscoped_write", "critical", "DELETE on items has no tenant filter", "abc"),),
        SpanFacts(operation="DELETE", tables=("items",)),
    )
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error)
    assert copy.findings == error.findings
    assert copy.facts == error.facts


def test_bad_mode_argument_is_rejected_by_name(instrument: Instrument) -> None:
    with pytest.raises(ValueError, match="mode"):
        instrument(mode="block-everything")
    assert not TenantwatchSQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
