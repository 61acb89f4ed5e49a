"""The instrumentation records ``tenantwatch.rls.coverage`` on the first connect of each PostgreSQL engine: once
per engine, never raising into the application, skipped (debug log) on SQLite."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tenantwatch import attributes as A
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.sql import rls_coverage

DATABASE = "tw_gauge"
POLICY = "USING (organization_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)"
SCHEMA = f"""
CREATE TABLE countries (code text PRIMARY KEY);
CREATE TABLE a (id integer PRIMARY KEY, organization_id integer NOT NULL);
CREATE TABLE b (id integer PRIMARY KEY, organization_id integer NOT NULL);
CREATE TABLE c (id integer PRIMARY KEY, organization_id integer NOT NULL);
CREATE TABLE d (id integer PRIMARY KEY, organization_id integer NOT NULL);
ALTER TABLE a ENABLE ROW LEVEL SECURITY; ALTER TABLE a FORCE ROW LEVEL SECURITY; CREATE POLICY t ON a {POLICY};
ALTER TABLE b ENABLE ROW LEVEL SECURITY; ALTER TABLE b FORCE ROW LEVEL SECURITY; CREATE POLICY t ON b {POLICY};
ALTER TABLE c ENABLE ROW LEVEL SECURITY; CREATE POLICY t ON c {POLICY};
"""


@pytest.fixture(scope="module")
def gauge_url(postgres_url: str) -> str:
    parts = urlsplit(postgres_url)
    dsn = {"host": parts.hostname, "port": parts.port, "user": parts.username or "postgres"}
    with psycopg.connect(**dsn, dbname=parts.path.lstrip("/"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(**dsn, dbname=DATABASE, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return urlunsplit(parts._replace(path=f"/{DATABASE}"))


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def instrumented(
    instrument: Callable[..., TenantwatchSQLAlchemyInstrumentor], reader: InMemoryMetricReader
) -> MeterProvider:
    provider = MeterProvider(metric_readers=[reader])
    instrument(meter_provider=provider)
    return provider


def _gauges(reader: InMemoryMetricReader) -> dict[str, list[tuple[float, dict[str, Any]]]]:
    found: dict[str, list[tuple[float, dict[str, Any]]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name.startswith("tenantwatch.rls."):
                    for point in metric.data.data_points:
                        found.setdefault(metric.name, []).append((point.value, dict(point.attributes or {})))
    return found


@pytest.mark.postgres
def test_first_connect_records_the_coverage_and_the_tables_counted(
    instrumented: MeterProvider, reader: InMemoryMetricReader, gauge_url: str
) -> None:
    engine = sa.create_engine(gauge_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM a")).scalar() == 0
    finally:
        engine.dispose()
    labels = {A.DB_SYSTEM_NAME: "postgresql", A.DB_NAMESPACE: DATABASE}
    gauges = _gauges(reader)
    assert gauges[A.METRIC_RLS_COVERAGE] == [(0.5, labels)]
    assert sorted(gauges[A.METRIC_RLS_TABLES], key=lambda p: str(p[1][A.RLS_STATE])) == [
        (1, {**labels, A.RLS_STATE: "disabled"}),
        (1, {**labels, A.RLS_STATE: "enabled"}),
        (2, {**labels, A.RLS_STATE: "forced"}),
    ]


@pytest.mark.postgres
def test_once_per_engine(instrumented: MeterProvider, gauge_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    real = rls_coverage.read_rls_coverage

    def counted(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return real(*args)
        finally:
            calls.append(time.perf_counter() - started)

    monkeypatch.setattr("tenantwatch.instrumentation._listeners.read_rls_coverage", counted)
    first, second = sa.create_engine(gauge_url), sa.create_engine(gauge_url)
    try:
        for _ in range(3):
            with first.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        assert len(calls) == 1
        with second.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        assert len(calls) == 2
    finally:
        first.dispose()
        second.dispose()
    assert max(calls) < 1.0  # one catalog query (a few ms here), under a 2 s statement timeout


@pytest.mark.postgres
def test_a_failing_coverage_read_never_reaches_the_application(
    instrumented: MeterProvider,
    reader: InMemoryMetricReader,
    gauge_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr("tenantwatch.instrumentation._listeners.read_rls_coverage", broken)
    engine = sa.create_engine(gauge_url)
    try:
        with caplog.at_level(logging.WARNING, logger="tenantwatch"), engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO d VALUES (1, 1)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM d")).scalar() == 1
            conn.execute(sa.text("DELETE FROM d"))
            conn.commit()
    finally:
        engine.dispose()
    assert A.METRIC_RLS_COVERAGE not in _gauges(reader)
    assert any("RLS coverage" in r.getMessage() for r in caplog.records)


def test_sqlite_is_skipped_with_a_debug_log(
    instrumented: MeterProvider, reader: InMemoryMetricReader, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with caplog.at_level(logging.DEBUG, logger="tenantwatch"), engine.connect() as conn:
            conn.execute(sa.text("CREATE TABLE items (id integer PRIMARY KEY, organization_id integer)"))
            conn.execute(sa.text("SELECT * FROM items"))
    finally:
        engine.dispose()
    assert _gauges(reader) == {}
    assert "tenantwatch: no RLS coverage for sqlite (PostgreSQL only)" in [r.getMessage() for r in caplog.records]
