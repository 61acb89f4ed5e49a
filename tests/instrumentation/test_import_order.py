"""Import order never decides what is traced.

OTel's SQLAlchemy instrumentation traces engines made through its patched ``sqlalchemy.create_engine``; tenantwatch
also traces, on their first connection, engines made before ``configure()`` / ``instrument()``, through a
``create_engine`` imported before, at import time of another module, and async ones. The natural layout runs in a
subprocess so that its module-level imports are real; the other shapes run in process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sa_support import ROWS_PER_TENANT, Traced, attrs, returned_rows

# Bound at collection, before any test instruments anything: the ``from sqlalchemy import create_engine`` of an
# application module imported before tenantwatch is configured.
from sqlalchemy import create_engine as create_engine_imported_early
from sqlalchemy.ext.asyncio import create_async_engine as create_async_engine_imported_early

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

Instrument = Callable[..., TenantwatchSQLAlchemyInstrumentor]
TENANT_TABLES = Settings(tenant_tables={"items": "organization_id"})
UNFILTERED = "SELECT id FROM items"

# --- the natural layout, in a subprocess -------------------------------------------------------------------------

_MODELS = """
from sqlalchemy import create_engine

engine = create_engine("sqlite:///{db}")  # created when this module is imported, before configure()
"""

_MAIN = """
import asyncio, json, sys

from sqlalchemy import create_engine, text            # the natural layout: imports first
from sqlalchemy.ext.asyncio import create_async_engine

import models                                          # creates its engine at import time

early_async = create_async_engine("sqlite+aiosqlite:///{db}")  # created before configure()

import tenantwatch
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tenantwatch.config import Settings

exporter = InMemorySpanExporter()
tenantwatch.configure(
    service_name="import-order",
    exporters=False,
    span_exporter=SimpleSpanProcessor(exporter),
    settings=Settings(tenant_tables={{"items": "organization_id"}}, discover=False),
)
late = create_engine("sqlite:///{db}")                 # the name imported before configure()


def query(engine, shape):
    with tenantwatch.tenant_context("1"), engine.connect() as conn:
        conn.execute(text(f"SELECT id AS {{shape.replace('-', '_')}} FROM items")).all()


async def query_async(shape):
    async with early_async.connect() as conn:
        with tenantwatch.tenant_context("1"):
            (await conn.execute(text(f"SELECT id AS {{shape.replace('-', '_')}} FROM items"))).all()
    await early_async.dispose()


query(models.engine, "import-time")
query(late, "imported-before")
asyncio.run(query_async("async-before"))
out = []
for span in exporter.get_finished_spans():
    attributes = dict(span.attributes or {{}})
    out.append({{key: (list(v) if isinstance(v, tuple) else v) for key, v in attributes.items()}})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def natural_layout(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The attributes of every span the natural-layout application exported."""
    from sa_support import create_sqlite_database

    app = tmp_path_factory.mktemp("app")
    db = app / "app.db"
    create_sqlite_database(db)
    (app / "models.py").write_text(textwrap.dedent(_MODELS.format(db=db)))
    (app / "main.py").write_text(textwrap.dedent(_MAIN.format(db=db)))
    done = subprocess.run(
        [sys.executable, "main.py"], cwd=app, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    spans: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return spans


@pytest.mark.parametrize("shape", ["import-time", "imported-before", "async-before"])
def test_natural_layout_traces_every_engine(natural_layout: list[dict[str, Any]], shape: str) -> None:
    """``from sqlalchemy import create_engine`` at the top, then ``configure()``: statements are traced, judged and
    reported, whichever way the engine was made."""
    # the shape is in a column alias: exported statements lose their comments with their literals
    alias = shape.replace("-", "_")
    spans = [s for s in natural_layout if f"AS {alias} FROM" in str(s.get(A.DB_STATEMENT))]
    assert len(spans) == 1, natural_layout  # traced, and traced once
    (span,) = spans
    assert span[A.DB_TENANT_FILTER] == "missing"
    assert span[A.DB_RETURNED_ROWS] == 2 * ROWS_PER_TENANT
    assert "missing_tenant_filter" in span[A.FINDINGS]


# --- the same shapes in process --------------------------------------------------------------------------------------


def _unfiltered_select(engine: sa.engine.Engine) -> None:
    with tenant_context("1"), engine.connect() as conn:
        conn.execute(sa.text(UNFILTERED)).all()


def test_engine_created_before_instrument_is_traced(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    instrument(settings=TENANT_TABLES)
    _unfiltered_select(engine)
    span = traced.only_db_span(UNFILTERED)
    assert attrs(span)[A.DB_TENANT_FILTER] == "missing"
    assert returned_rows(span) == 2 * ROWS_PER_TENANT


def test_create_engine_imported_before_instrument_is_traced(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    instrument(settings=TENANT_TABLES)
    engine = create_engine_imported_early(f"sqlite:///{sqlite_path}")
    _unfiltered_select(engine)
    assert attrs(traced.only_db_span(UNFILTERED))[A.DB_TENANT_FILTER] == "missing"


async def test_async_engine_created_before_instrument_is_traced(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    engine = create_async_engine_imported_early(f"sqlite+aiosqlite:///{sqlite_path}")
    instrument(settings=TENANT_TABLES)
    try:
        async with engine.connect() as conn:
            with tenant_context("1"):
                await conn.execute(sa.text(UNFILTERED))
    finally:
        await engine.dispose()
    span = traced.only_db_span(UNFILTERED)
    assert attrs(span)[A.DB_TENANT_FILTER] == "missing"


def test_an_engine_otel_traces_is_never_traced_twice(instrument: Instrument, traced: Traced, sqlite_path: Path) -> None:
    passed = sa.create_engine(f"sqlite:///{sqlite_path}")
    instrument(settings=TENANT_TABLES, engine=passed)
    patched = sa.create_engine(f"sqlite:///{sqlite_path}")  # through OTel's wrapper
    for engine in (passed, patched, patched.execution_options(isolation_level="AUTOCOMMIT")):
        traced.clear()
        _unfiltered_select(engine)
        _unfiltered_select(engine)
        assert len(traced.db_spans(UNFILTERED)) == 2


def test_connection_usage_of_an_engine_traced_late_matches_its_pool(
    instrument: Instrument, traced: Traced, sqlite_path: Path
) -> None:
    """The connections an engine pooled before it was traced are counted in ``db.client.connections.usage``."""
    engine = sa.create_engine(f"sqlite:///{sqlite_path}", pool_logging_name="early", poolclass=sa.pool.QueuePool)
    with engine.connect(), engine.connect():
        pass  # two idle connections in the pool before anything is instrumented
    reader = InMemoryMetricReader()
    instrument(settings=TENANT_TABLES, meter_provider=MeterProvider(metric_readers=[reader]))

    def usage() -> dict[str, int]:
        data = reader.get_metrics_data()
        found: dict[str, int] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "db.client.connections.usage":
                        for point in metric.data.data_points:
                            attributes = dict(point.attributes or {})
                            if attributes.get("pool.name") == "early":
                                found[str(attributes["state"])] = int(point.value)
        return found

    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1")).all()
        assert usage() == {"used": 1, "idle": 1}
    assert usage() == {"used": 0, "idle": 2}
    engine.dispose()
