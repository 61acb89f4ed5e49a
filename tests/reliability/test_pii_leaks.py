"""Nothing private leaves the process: the PII corpus (tests/reliability/pii_corpus.yaml) through tenantwatch on
SQLite and PostgreSQL, into in-memory span, log and metric exporters; none of its secrets may appear in anything
exported (nor in a Python log record). And every metric stays bounded: 100k tenants and 20k tables make a bounded
number of series per instrument."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from _leaks_support import Corpus, Pipeline, build_pipeline, load_corpus, make_app, run_statements, teardown

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.facts import SpanFacts
from tenantwatch.instrumentation.asgi import instrument_app

CORPUS = load_corpus()


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    built = build_pipeline(load_settings(environ={}, http={"trust_headers": True}))
    yield built
    teardown(built)


@pytest.fixture
def sqlite_engine(pipeline: Pipeline, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'pii.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(CORPUS.schema)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_engine(pipeline: Pipeline, postgres_dsn: dict[str, Any]) -> Iterator[sa.engine.Engine]:
    import psycopg

    schema = f"pii_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        conn.execute(f"SET search_path TO {schema}")  # type: ignore[arg-type]
        conn.execute(CORPUS.schema)  # type: ignore[arg-type]
    url = f"postgresql+psycopg://{postgres_dsn['user']}@{postgres_dsn['host']}:{postgres_dsn['port']}/{postgres_dsn['dbname']}"
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:  # type: ignore[arg-type]
        conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


async def _requests(pipeline: Pipeline, engine: sa.engine.Engine, corpus: Corpus) -> list[int]:
    app = instrument_app(
        make_app(engine, corpus),
        settings=pipeline.settings,
        tracer_provider=pipeline.provider,
        meter_provider=pipeline.meter_provider,
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000), raise_app_exceptions=False)
    statuses = []
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
        for path, _fails in corpus.requests:
            response = await client.get(path, headers={"x-tenant-id": "1"})
            statuses.append(response.status_code)
    return statuses


def _check(pipeline: Pipeline, records: list[logging.LogRecord]) -> None:
    text = pipeline.exported_text(records)
    assert pipeline.spans.get_finished_spans(), "nothing was exported: the check would prove nothing"
    assert any(r.log_record.attributes for r in pipeline.logs.get_finished_logs()), "no finding log record"
    assert CORPUS.leaked(text) == []


async def _run(pipeline: Pipeline, engine: sa.engine.Engine, backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert run_statements(engine, CORPUS, backend) == []  # each statement failed (or not) as the corpus says
    statuses = await _requests(pipeline, engine, CORPUS)
    assert statuses == [500 if fails else 200 for _path, fails in CORPUS.requests]
    failed = [s for s in pipeline.spans.get_finished_spans() if not s.status.is_ok]
    assert len(failed) >= sum(s.fails for s in CORPUS.statements if backend in s.backends)
    _check(pipeline, caplog.records)


async def test_sqlite_corpus_leaks_nothing(
    pipeline: Pipeline, sqlite_engine: sa.engine.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await _run(pipeline, sqlite_engine, "sqlite", caplog)


@pytest.mark.postgres
async def test_postgresql_corpus_leaks_nothing(
    pipeline: Pipeline, postgres_engine: sa.engine.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    await _run(pipeline, postgres_engine, "postgresql", caplog)
    statuses = [str(s.status.description) for s in pipeline.spans.get_finished_spans() if not s.status.is_ok]
    assert any("violates check constraint" in d for d in statuses)  # what the error was is still there
    assert any("violates unique constraint" in d for d in statuses)


def test_series_per_instrument_stay_bounded_with_100k_tenants_and_20k_tables() -> None:
    """The figures: tenants cap 100 (+ __other__, __none__), tables cap 200 (+ __other__)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tenantwatch.processors import TenantwatchSpanProcessor

    settings = load_settings(environ={})
    reader = InMemoryMetricReader()
    processor = TenantwatchSpanProcessor(
        SimpleSpanProcessor(InMemorySpanExporter()),
        settings=settings,
        meter_provider=MeterProvider(metric_readers=[reader]),
    )
    base = SpanFacts(
        operation="SELECT",
        tenant_filter="present",
        statement_fingerprint="0123456789abcdef",
        returned_rows=1,
        system="postgresql",
    )
    tracer = TracerProvider()
    tracer.add_span_processor(processor)
    tracer_ = tracer.get_tracer("cardinality")
    for index in range(100_000):
        table = f"table_{index % 20_000}"
        facts = replace(base, main_table=table, tables=(table,), tenant_tables=(table,))
        if index % 10 == 0:  # every tenth statement a finding (on 10k of the tables)
            facts = replace(facts, tenant_filter="missing", unfiltered=(f"main:{table}",))
        attributes = {A.DB_SYSTEM: "postgresql", **facts.to_attributes(), A.TENANT_ID: f"tenant-{index}"}
        tracer_.start_span("SELECT", attributes=attributes).end()
    data = reader.get_metrics_data()
    assert data is not None
    series = {
        metric.name: len(metric.data.data_points)
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    tenants = settings.tenant_label_cap + 2
    tables = settings.table_label_cap + 1
    print(f"series per instrument: {series}")
    assert series[A.METRIC_OPERATION_DURATION] <= tenants * tables
    assert series[A.METRIC_FINDINGS] <= tenants * tables * 2
    # what the probe saw on main: one series per table name
    assert series[A.METRIC_OPERATION_DURATION] < 20_000
