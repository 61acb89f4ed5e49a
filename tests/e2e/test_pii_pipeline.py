"""End to end, nothing private leaves: the PII corpus (tests/reliability/pii_corpus.yaml) from a
tenantwatch-configured service on SQLite and PostgreSQL, through the real collector (collector-config/otelcol.yaml,
every trace kept) to Jaeger, Prometheus and a Sentry stand-in; none of the corpus's secrets may appear in what any of
them received or stores."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from _stack import CONFIG, Process, Receiver, free_port, http_get, http_json, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))

from _leaks_support import load_corpus

pytestmark = pytest.mark.e2e

SERVICE = "tenantwatch-e2e-pii"
CORPUS = load_corpus()


@dataclass
class Stack:
    jaeger_query: int
    prometheus: int
    sentry: Receiver
    producer_output: str
    logs: Path


def _prometheus_config(tmp: Path, collector_prom: int) -> Path:
    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [
            {"job_name": "tenantwatch", "static_configs": [{"targets": [f"127.0.0.1:{collector_prom}"]}]}
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def postgres_schema(postgres_dsn: dict[str, Any]) -> Iterator[str]:
    import psycopg

    schema = f"pii_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:  # type: ignore[arg-type]
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        conn.execute(f"SET search_path TO {schema}")  # type: ignore[arg-type]
        conn.execute(CORPUS.schema)  # type: ignore[arg-type]
    yield schema
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:  # type: ignore[arg-type]
        conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def stack(
    otelcol_binary: Path,
    jaeger_binary: Path,
    postgres_dsn: dict[str, Any],
    postgres_schema: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    import shutil

    tmp = tmp_path_factory.mktemp("pii")
    ports = {
        name: free_port()
        for name in (
            *("jaeger_otlp", "jaeger_query", "jaeger_query_grpc", "otlp_grpc", "otlp_http", "health"),
            *("prom_exporter", "telemetry", "prometheus"),
        )
    }
    sentry = Receiver("sentry").start()
    processes: list[Process] = []
    try:
        jaeger = Process(
            "jaeger",
            [str(jaeger_binary), "--config", str(CONFIG / "jaeger" / "jaeger.yaml")],
            tmp / "jaeger.log",
            env={
                "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['jaeger_otlp']}",
                "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports['jaeger_query']}",
                "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports['jaeger_query_grpc']}",
            },
        ).start()
        processes.append(jaeger)
        collector = Process(
            "collector",
            [str(otelcol_binary), f"--config={CONFIG / 'otelcol.yaml'}"],
            tmp / "collector.log",
            env={
                "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
                "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
                "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
                "OTELCOL_PROMETHEUS_ENDPOINT": f"127.0.0.1:{ports['prom_exporter']}",
                "OTELCOL_TELEMETRY_PORT": str(ports["telemetry"]),
                "OTELCOL_SAMPLING_PERCENTAGE": "100",  # every trace reaches Jaeger: every one is checked
                "OTELCOL_DECISION_WAIT": "2s",
                "OTELCOL_BATCH_TIMEOUT": "1s",
                "OTELCOL_SPANMETRICS_FLUSH": "1s",
                "JAEGER_OTLP_ENDPOINT": f"127.0.0.1:{ports['jaeger_otlp']}",
                "SENTRY_OTLP_ENDPOINT": f"{sentry.url}/api/4242/integration/otlp",
                "SENTRY_KEY": "e2e-pii-key",
            },
        ).start()
        processes.append(collector)
        prometheus = Process(
            "prometheus",
            [
                shutil.which("prometheus") or "prometheus",
                f"--config.file={_prometheus_config(tmp, ports['prom_exporter'])}",
                f"--storage.tsdb.path={tmp / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
            ],
            tmp / "prometheus.log",
        ).start()
        processes.append(prometheus)
        jaeger.wait_http(f"http://127.0.0.1:{ports['jaeger_query']}/api/services")
        collector.wait_http(f"http://127.0.0.1:{ports['health']}/")
        prometheus.wait_http(f"http://127.0.0.1:{ports['prometheus']}/-/ready")

        dsn = postgres_dsn
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['otlp_http']}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": SERVICE,
            "TW_PII_POSTGRES_URL": f"postgresql+psycopg://{dsn['user']}@{dsn['host']}:{dsn['port']}/{dsn['dbname']}",
            "TW_PII_POSTGRES_SCHEMA": postgres_schema,
        }
        producer = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("_pii_producer.py"))],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            check=False,
        )
        assert producer.returncode == 0, (producer.stdout, producer.stderr[-3000:])
        yield Stack(ports["jaeger_query"], ports["prometheus"], sentry, producer.stdout + producer.stderr, tmp)
    finally:
        for process in reversed(processes):
            process.stop()
        sentry.stop()


def _jaeger_traces(stack: Stack) -> bytes:
    now = datetime.now(UTC)
    query = {
        "query.service_name": SERVICE,
        "query.start_time_min": (now - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query.start_time_max": (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query.num_traces": "1000",
    }
    return http_get(f"http://127.0.0.1:{stack.jaeger_query}/api/v3/traces?{urllib.parse.urlencode(query)}")


def _prometheus_series(stack: Stack) -> list[dict[str, str]]:
    query = urllib.parse.urlencode({"match[]": '{job="tenantwatch"}'})
    series: list[dict[str, str]] = http_json(f"http://127.0.0.1:{stack.prometheus}/api/v1/series?{query}")["data"]
    return series


def test_the_corpus_ran_as_described(stack: Stack) -> None:
    assert "wrong: \n" in stack.producer_output
    statuses = [500 if fails else 200 for _path, fails in CORPUS.requests] * 2
    assert f"statuses: {' '.join(map(str, statuses))}" in stack.producer_output
    assert CORPUS.leaked(stack.producer_output) == []  # nor in the service's own logs


def test_jaeger_stores_none_of_the_secrets(stack: Stack) -> None:
    def stored() -> bytes | None:
        blob = _jaeger_traces(stack)
        # db spans of both backends, their failures, and the request spans
        ready = blob.count(b'"db.statement"') >= 2 * len(CORPUS.statements) - 2 and blob.count(b"/signup") >= 2
        return blob if ready else None

    blob = wait_until("the corpus traces in Jaeger", stored, timeout=90, log=stack.logs / "collector.log")
    assert CORPUS.leaked(blob.decode(errors="replace")) == []
    assert b"violates check constraint" in blob  # failures are there, with what failed
    assert b"REDACTED" in blob  # the query strings are there, redacted


def test_sentry_receives_none_of_the_secrets(stack: Stack) -> None:
    def received() -> list[bytes] | None:
        logs = stack.sentry.received("/v1/logs")
        traces = stack.sentry.received("/v1/traces")
        return [r.body for r in logs + traces] if logs and traces else None

    bodies = wait_until("findings at the Sentry stand-in", received, timeout=60)
    assert any(b"tenantwatch.finding" in body or b"missing_tenant_filter" in body for body in bodies)
    for body in bodies:
        assert CORPUS.leaked(body.decode(errors="replace")) == []


def test_prometheus_series_carry_none_of_the_secrets(stack: Stack) -> None:
    series = wait_until(
        "tenantwatch metrics in Prometheus",
        lambda: [s for s in _prometheus_series(stack) if "db_client_operation_duration" in s["__name__"]],
        timeout=60,
    )
    assert series
    text = repr(_prometheus_series(stack))
    assert CORPUS.leaked(text) == []
