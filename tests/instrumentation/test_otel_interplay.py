"""tenantwatch on top of opentelemetry-instrumentation-sqlalchemy: OTel's options reach OTel, OTel's attributes and
semantic-convention choice are respected, and uninstrument() undoes exactly what tenantwatch did."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sa_support import ROWS_PER_TENANT, Traced, attrs

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
TENANT_TABLES = Settings(tenant_tables={"items": "organization_id"})
FILTERED = "SELECT id FROM items WHERE organization_id = 1"


def _executed_sql(engine: sa.engine.Engine) -> list[str]:
    """What sqlite3 itself receives on ``engine``'s connections (sqlcommenter comments included)."""
    executed: list[str] = []
    sa.event.listen(engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(executed.append))
    return executed


def _select(engine: sa.engine.Engine, sql: str = FILTERED) -> None:
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text(sql)).all()


# --- OTel's options ---------------------------------------------------------------------------------------------


def test_sqlcommenter_options_reach_otel(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    """``enable_commenter`` / ``commenter_options`` given to tenantwatch are OTel's: the statement the database
    receives carries the comment, also on an engine made before instrument()."""
    early = sa.create_engine(f"sqlite:///{sqlite_path}")
    early_sql = _executed_sql(early)
    instrument(settings=TENANT_TABLES, enable_commenter=True, commenter_options={"db_framework": False})
    late = sa.create_engine(f"sqlite:///{sqlite_path}")
    late_sql = _executed_sql(late)
    for engine, executed in ((late, late_sql), (early, early_sql)):
        _select(engine)
        (sent,) = [s for s in executed if s.startswith(FILTERED)]
        assert "/*db_driver=" in sent and "traceparent=" in sent
        assert "db_framework" not in sent


def test_engines_handed_over_when_otel_is_someone_elses_get_the_options(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    SQLAlchemyInstrumentor().instrument(tracer_provider=traced.provider)
    engine = sa.engine.create.create_engine.__wrapped__(f"sqlite:///{sqlite_path}")  # not traced by OTel
    executed = _executed_sql(engine)
    instrument(settings=TENANT_TABLES, engine=engine, enable_commenter=True)
    _select(engine)
    (sent,) = [s for s in executed if s.startswith(FILTERED)]
    assert "/*db_driver=" in sent
    assert len(traced.db_spans(FILTERED)) == 1


# --- uninstrument ------------------------------------------------------------------------------------------------


def test_uninstrument_leaves_the_otel_instrumentation_the_user_made(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    tenantwatch = instrument(settings=TENANT_TABLES)  # instruments OTel as nobody has
    SQLAlchemyInstrumentor().uninstrument()  # the user takes OTel over with options of their own
    SQLAlchemyInstrumentor().instrument(tracer_provider=traced.provider)
    tenantwatch.uninstrument()
    assert SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
    _select(sa.create_engine(f"sqlite:///{sqlite_path}"))
    span = traced.only_db_span(FILTERED)  # still traced by the user's OTel
    assert A.DB_TENANT_FILTER not in attrs(span)  # and tenantwatch is gone


def test_uninstrument_detaches_the_tracers_tenantwatch_attached(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    early = sa.create_engine(f"sqlite:///{sqlite_path}")
    SQLAlchemyInstrumentor().instrument(tracer_provider=traced.provider)
    users = sa.create_engine(f"sqlite:///{sqlite_path}")  # traced by the user's OTel
    tenantwatch = instrument(settings=TENANT_TABLES)
    _select(early)
    assert len(traced.db_spans(FILTERED)) == 1  # traced once tenantwatch is there
    tenantwatch.uninstrument()
    traced.clear()
    _select(early)
    _select(users)
    spans = traced.db_spans(FILTERED)
    assert len(spans) == 1  # the user's engine only: OTel's own tracing stays as the user set it up
    assert SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
    instrument(settings=TENANT_TABLES)  # and back: the early engine is traced again, once
    traced.clear()
    _select(early)
    assert len(traced.db_spans(FILTERED)) == 1


# --- OTel's attributes -------------------------------------------------------------------------------------------


def test_attributes_another_instrumentation_set_are_kept(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    instrument(settings=TENANT_TABLES)
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")

    def theirs(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        context._otel_span.set_attributes({A.CODE_FUNCTION: "their_function", A.TENANT_ID: "their-tenant"})

    sa.event.listen(engine, "before_cursor_execute", theirs)  # after OTel's own listener on this engine
    _select(engine)
    span = attrs(traced.only_db_span(FILTERED))
    assert (span[A.CODE_FUNCTION], span[A.TENANT_ID]) == ("their_function", "their-tenant")
    assert span[A.DB_TENANT_FILTER] == "present"  # tenantwatch's own facts are there


# --- OTEL_SEMCONV_STABILITY_OPT_IN -------------------------------------------------------------------------------


@pytest.fixture
def opt_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str | None], None]]:
    def choose(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        else:
            monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", value)
        _OpenTelemetrySemanticConventionStability._initialized = False

    yield choose
    _OpenTelemetrySemanticConventionStability._initialized = False  # read again once the variable is restored


@pytest.mark.parametrize(
    ("opt_in_value", "old", "new"),
    [(None, True, False), ("database", False, True), ("database/dup", True, True)],
)
def test_semantic_conventions_follow_the_opt_in(
    instrument: Instrument,
    traced: Traced,
    sqlite_path: Path,
    opt_in: Callable[[str | None], None],
    opt_in_value: str | None,
    old: bool,
    new: bool,
) -> None:
    opt_in(opt_in_value)
    instrument(settings=TENANT_TABLES, install_processor=True)
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text("SELECT id FROM items")).all()  # unfiltered: a finding
        countries = [{"c": "it", "n": "Italy"}, {"c": "es", "n": "Spain"}]
        conn.execute(sa.text("INSERT INTO countries VALUES (:c, :n)"), countries)  # executemany
        with pytest.raises(sa.exc.OperationalError):
            conn.execute(sa.text("SELECT id FROM nowhere"))

    select = attrs(traced.only_db_span("SELECT id FROM items"))
    insert = attrs(traced.only_db_span("INSERT INTO countries"))
    failed = attrs(traced.only_db_span("FROM nowhere"))
    otel_operation = f"SELECT {sqlite_path}"  # OTel's own value, which tenantwatch must not replace
    for span in (select, insert, failed):
        assert (A.DB_STATEMENT in span, A.DB_SYSTEM in span) == (old, old)
        assert (A.DB_QUERY_TEXT in span, A.DB_SYSTEM_NAME in span) == (new, new)
        assert (A.DB_SQL_TABLE in span, A.DB_COLLECTION_NAME in span) == (old, new)
        assert A.DB_OPERATION in span
    assert select.get(A.DB_OPERATION_LEGACY) == (otel_operation if old else None)
    assert select.get(A.DB_OPERATION_NAME) == (otel_operation if new else None)
    assert select[A.DB_OPERATION] == "SELECT"
    assert select[A.DB_RETURNED_ROWS] == 2 * ROWS_PER_TENANT
    assert select.get(A.DB_RESPONSE_RETURNED_ROWS) == (2 * ROWS_PER_TENANT if new else None)
    assert insert[A.DB_RETURNED_ROWS] == 2  # executemany
    assert insert.get(A.DB_RESPONSE_RETURNED_ROWS) == (2 if new else None)
    assert failed.get(A.DB_SQL_TABLE if old else A.DB_COLLECTION_NAME) == "nowhere"
    assert "missing_tenant_filter" in select[A.FINDINGS]  # the processor reads the facts in every mode
