"""``tenantwatch audit`` as CI runs it: exit codes, the JSON document, the table, clear errors (never a traceback,
never the password) and ``--export`` of the RLS coverage gauge to an in-process OTLP/HTTP receiver."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from audit_schemas import APP_ROLE, BROKEN_TABLES, COMMON, GOOD, as_user, create_database, table
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from cli_support import run_cli

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def good_url(postgres_url: str) -> str:
    return create_database(postgres_url, "tw_audit_cli_good", GOOD)


@pytest.fixture(scope="module")
def warn_only_url(postgres_url: str) -> str:
    """Only WARN lints: an unindexed tenant column, RLS not forced."""
    ddl = "\n".join([table("w_unindexed", primary_key="id", index=False), table("w_unforced", force=False)])
    return create_database(postgres_url, "tw_audit_cli_warn", ddl)


@pytest.fixture(scope="module")
def broken_url(postgres_url: str) -> str:
    ddl = "\n".join([COMMON, BROKEN_TABLES["b_disabled"][1], BROKEN_TABLES["b_true"][1], table("legacy_ok")])
    ddl += "\nCREATE TABLE legacy (id integer PRIMARY KEY, org text NOT NULL);"
    return create_database(postgres_url, "tw_audit_cli_broken", ddl)


@pytest.fixture(scope="module")
def empty_url(postgres_url: str) -> str:
    return create_database(postgres_url, "tw_audit_cli_empty", COMMON)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Receiver:
    """An OTLP/HTTP metrics receiver on a free loopback port: keeps every decoded export request."""

    def __init__(self) -> None:
        self.requests: list[ExportMetricsServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    received.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def gauges(self) -> dict[str, list[tuple[float, dict[str, str]]]]:
        found: dict[str, list[tuple[float, dict[str, str]]]] = {}
        for request in self.requests:
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for metric in scope.metrics:
                        for point in metric.gauge.data_points:
                            value = point.as_double if point.HasField("as_double") else float(point.as_int)
                            labels = {a.key: a.value.string_value for a in point.attributes}
                            found.setdefault(metric.name, []).append((value, labels))
        return found

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    started = _Receiver()
    yield started
    started.stop()


def test_a_correct_schema_exits_0_with_a_readable_table(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "audit", good_url, "--role", APP_ROLE)
    assert (code, err) == (0, "")
    assert "4 tenant table(s); RLS coverage 100% (4 forced, 0 enabled but not forced, 0 disabled)" in out
    assert "no lint: every tenant table is isolated by forced RLS with a tenant policy" in out


def test_lints_exit_1_and_the_table_names_level_id_object_and_fix(
    capsys: Any, monkeypatch: Any, broken_url: str
) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "audit", broken_url, "--role", APP_ROLE)
    assert code == 1
    lines = out.splitlines()
    row = next(line for line in lines if "rls_disabled" in line)
    assert row.split() == ["ERROR", "TWA001", "rls_disabled", "public.b_disabled"]
    assert "fix: ALTER TABLE public.b_disabled ENABLE ROW LEVEL SECURITY;" in out
    assert "policy b_true_tenant on public.b_true" in out
    assert lines[-1].startswith("2 lint(s): 2 ERROR, 0 WARN, 0 INFO; 2 at or above --fail-on WARN (exit 1)")


def test_fail_on_sets_the_level_that_fails(capsys: Any, monkeypatch: Any, warn_only_url: str) -> None:
    assert run_cli(capsys, monkeypatch, "audit", warn_only_url, "--role", APP_ROLE)[0] == 1
    assert run_cli(capsys, monkeypatch, "audit", warn_only_url, "--role", APP_ROLE, "--fail-on", "error")[0] == 0
    assert run_cli(capsys, monkeypatch, "audit", warn_only_url, "--role", APP_ROLE, "--fail-on", "INFO")[0] == 1
    code, out, _ = run_cli(capsys, monkeypatch, "audit", warn_only_url, "--role", APP_ROLE, "--fail-on", "never")
    assert code == 0
    assert "tenant_column_unindexed" in out  # still reported
    assert out.splitlines()[-1].endswith("0 at or above --fail-on NEVER (exit 0)")


def test_json_document(capsys: Any, monkeypatch: Any, broken_url: str) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "audit", broken_url, "--role", APP_ROLE, "--json")
    document = json.loads(out)
    assert code == 1 == document["exit_code"]
    assert document["version"] == 1
    assert document["database"] == "tw_audit_cli_broken"
    assert document["role"] == {"name": APP_ROLE, "superuser": False, "bypass_rls": False}
    assert document["coverage"] == {"ratio": 2 / 3, "tenant_tables": 3, "forced": 2, "enabled": 0, "disabled": 1}
    assert document["counts"] == {"ERROR": 2, "WARN": 0, "INFO": 0}
    assert document["fail_on"] == "WARN"
    tables = {t["name"]: t for t in document["tenant_tables"]}
    assert tables["b_disabled"] == {
        "schema": "public",
        "name": "b_disabled",
        "tenant_column": "organization_id",
        "rls": "disabled",
        "owner": "postgres",
    }
    first = document["lints"][0]
    assert set(first) == {
        "id",
        "name",
        "title",
        "level",
        "object",
        "detail",
        "remediation",
        "description",
        "metadata",
        "cache_key",
    }
    assert (first["id"], first["name"], first["level"]) == ("TWA001", "rls_disabled", "ERROR")
    assert first["object"] == {"type": "table", "schema": "public", "name": "b_disabled"}
    assert first["cache_key"] == "rls_disabled_public_b_disabled"
    assert [lint["name"] for lint in document["lints"]] == ["rls_disabled", "policy_always_true"]


def test_tenant_tables_from_the_rules_file(capsys: Any, monkeypatch: Any, broken_url: str, tmp_path: Path) -> None:
    """``legacy`` has no default tenant column: only the rules file makes it a tenant table (and it has no RLS)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("tenant_tables:\n  legacy: org\n")
    _, out, _ = run_cli(capsys, monkeypatch, "audit", broken_url, "--role", APP_ROLE, "--json")
    assert "legacy" not in {t["name"] for t in json.loads(out)["tenant_tables"]}
    _, out, _ = run_cli(capsys, monkeypatch, "audit", broken_url, "--role", APP_ROLE, "--json", "--config", str(rules))
    document = json.loads(out)
    assert {"schema": "public", "name": "legacy"} | {"type": "table"} in [
        lint["object"] for lint in document["lints"] if lint["name"] == "rls_disabled"
    ]
    legacy = next(t for t in document["tenant_tables"] if t["name"] == "legacy")
    assert legacy["tenant_column"] == "org"


def test_connection_error_exits_2_without_traceback_or_password(capsys: Any, monkeypatch: Any) -> None:
    url = f"postgresql+psycopg://app:s3cr3t-pw@127.0.0.1:{_free_port()}/app"
    code, out, err = run_cli(capsys, monkeypatch, "audit", url)
    assert code == 2
    assert err.startswith("tenantwatch audit: cannot read the catalog of postgresql+psycopg://app:***@127.0.0.1:")
    assert "s3cr3t-pw" not in out + err
    assert "Traceback" not in err
    code, out, err = run_cli(capsys, monkeypatch, "audit", url, "--json")
    assert code == 2
    assert json.loads(out)["exit_code"] == 2
    assert "s3cr3t-pw" not in out + err


def test_usage_errors_exit_2_with_a_clear_message(
    capsys: Any, monkeypatch: Any, good_url: str, empty_url: str, tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "audit")
    assert (code, err) == (
        2,
        "tenantwatch audit: DATABASE_URL is required, e.g. tenantwatch audit postgresql+psycopg://admin@db/app\n",
    )
    code, _, err = run_cli(capsys, monkeypatch, "audit", good_url, "--role", "no_such_role")
    assert code == 2
    assert "--role: no role no_such_role in " in err
    code, _, err = run_cli(capsys, monkeypatch, "audit", f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2
    assert "audit reads PostgreSQL catalogs" in err
    code, _, err = run_cli(capsys, monkeypatch, "audit", "not a url")
    assert code == 2
    assert "not a database URL" in err
    code, _, err = run_cli(capsys, monkeypatch, "audit", empty_url)
    assert code == 2
    assert "no tenant table in " in err and "pass --config or --tenant-column" in err


def test_a_non_superuser_connecting_as_itself(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "audit", as_user(good_url, APP_ROLE), "--json")
    document = json.loads(out)
    assert (code, document["role"]["name"], document["lints"]) == (0, APP_ROLE, [])


def test_export_sends_the_coverage_gauge_over_otlp(
    capsys: Any, monkeypatch: Any, broken_url: str, receiver: _Receiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    code, _, err = run_cli(capsys, monkeypatch, "audit", broken_url, "--role", APP_ROLE, "--export")
    assert code == 1  # the lints still decide the exit code
    assert f"exported tenantwatch.rls.coverage = 0.667 to {receiver.url}/v1/metrics" in err
    gauges = receiver.gauges()
    labels = {"db.system.name": "postgresql", "db.namespace": "tw_audit_cli_broken"}
    assert gauges["tenantwatch.rls.coverage"] == [(pytest.approx(2 / 3), labels)]
    assert sorted(gauges["tenantwatch.rls.tables"], key=lambda p: p[1]["tenantwatch.rls.state"]) == [
        (1.0, {**labels, "tenantwatch.rls.state": "disabled"}),
        (0.0, {**labels, "tenantwatch.rls.state": "enabled"}),
        (2.0, {**labels, "tenantwatch.rls.state": "forced"}),
    ]
    service = {
        a.key: a.value.string_value
        for a in receiver.requests[0].resource_metrics[0].resource.attributes
        if a.key == "service.name"
    }
    assert service == {"service.name": "tenantwatch-audit"}


def test_export_to_a_collector_that_is_down_exits_2(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    code, _, err = run_cli(capsys, monkeypatch, "audit", good_url, "--role", APP_ROLE, "--export")
    assert code == 2
    assert "tenantwatch audit: --export: exporting to http://127.0.0.1:" in err
    assert "failed" in err


def test_help_and_docs_list_every_lint_with_its_level(capsys: Any, monkeypatch: Any) -> None:
    from tenantwatch.tools.audit import LINTS

    code, out, _ = run_cli(capsys, monkeypatch, "audit", "--help")
    assert code == 0
    assert "tenantwatch audit postgresql+psycopg://admin@db/app --role app" in out
    docs = (Path(__file__).resolve().parents[3] / "docs" / "cli.md").read_text(encoding="utf-8")
    for kind in LINTS:
        assert f"{kind.id} {kind.name:<28} {kind.level}" in out
        assert f"| {kind.id} | `{kind.name}` | {kind.level} |" in docs
    assert len({kind.id for kind in LINTS}) == len({kind.name for kind in LINTS}) == len(LINTS) == 11
