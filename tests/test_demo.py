"""``tenantwatch demo``: six scripted bugs, six findings, nothing on correct queries; live, plain, JSON and OTLP."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rich.console import Console

from tenantwatch.cli import main
from tenantwatch.demo import STEPS, DemoFinding, DemoResult, StepResult
from tenantwatch.demo.display import LiveReporter

SIX_RULES = {
    "missing_tenant_filter",
    "cross_tenant",
    "unscoped_write",
    "large_result",
    "superuser_write",
    "slow_query",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No OTLP endpoint or tenantwatch setting from the developer's shell."""
    for name in list(os.environ):
        if name.startswith(("OTEL_EXPORTER_OTLP", "TENANTWATCH_")):
            monkeypatch.delenv(name)


def _check_document(doc: dict[str, Any]) -> None:
    """Each buggy step raised exactly its rule, each correct step nothing, and the findings say so."""
    steps = {s["name"]: s for s in doc["steps"]}
    assert list(steps) == [step.name for step in STEPS]
    for step in STEPS:
        reported = steps[step.name]
        assert reported["error"] is None, step.name
        assert reported["rules"] == ([step.expected_rule] if step.expected_rule else []), step.name
    findings = doc["findings"]
    assert sorted(f["rule"] for f in findings) == sorted(SIX_RULES)
    by_rule = {f["rule"]: f for f in findings}
    for step in STEPS:
        if step.expected_rule:
            finding = by_rule[step.expected_rule]
            assert finding["step"] == step.name
            assert finding["tenant"] == step.tenant
            assert finding["message"] and finding["severity"] and finding["table"] and finding["query"]
            assert len(finding["fingerprint"]) == 16
    summary = doc["summary"]
    assert summary["buggy_steps"] == 6
    assert summary["bugs_caught"] == 6
    assert summary["false_positives"] == 0
    assert summary["all_as_expected"] is True
    assert summary["findings"] == 6


def test_demo_json_reports_six_findings_and_none_for_correct_queries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    _check_document(doc)
    by_rule = {f["rule"]: f for f in doc["findings"]}
    steps = {s["name"]: s for s in doc["steps"]}
    # the facts behind the findings are the real ones
    assert steps["export_objectives"]["rows"] == 1500
    assert "1500 rows" in by_rule["large_result"]["message"]
    assert by_rule["large_result"]["severity"] == "warning"
    assert steps["revenue_report"]["duration_ms"] > 500
    assert "'globex'" in by_rule["cross_tenant"]["message"]
    assert by_rule["cross_tenant"]["table"] == "invoices"
    assert by_rule["unscoped_write"]["query"].startswith("UPDATE invoices")
    assert by_rule["superuser_write"]["severity"] == "high"
    assert by_rule["missing_tenant_filter"]["severity"] == "critical"
    assert doc["summary"]["rows_seeded"]["objectives"] > 1500
    assert sum(doc["summary"]["rows_seeded"].values()) > 2000


def test_demo_console_script(tmp_path: Path) -> None:
    """The installed ``tenantwatch`` entry point runs the demo in a fresh process and exits 0."""
    script = Path(sys.executable).with_name("tenantwatch")
    assert script.is_file(), "the tenantwatch console script is not installed in this environment"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TENANTWATCH_"))}
    done = subprocess.run(
        [str(script), "demo", "--json"], check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    _check_document(json.loads(done.stdout))


def test_demo_plain_output_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out, _ = capsys.readouterr()
    assert "\x1b[" not in out  # no terminal control codes in a pipe
    finding_lines = [line.strip() for line in out.splitlines() if line.strip().startswith("FINDING ")]
    assert len(finding_lines) == 6
    assert {line.split()[2] for line in finding_lines} == SIX_RULES
    assert out.count("no finding") == sum(1 for step in STEPS if not step.buggy)
    assert "6/6 bugs caught, 0 on correct queries" in out


def test_live_reporter_draws_a_growing_table() -> None:
    """On a terminal the findings appear in a table as they arrive, then a per-step check table."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    reporter = LiveReporter(console, pace_s=0)
    buggy = next(step for step in STEPS if step.expected_rule == "cross_tenant")
    reporter.step_started(buggy, 5, len(STEPS))
    finding = DemoFinding(
        step=buggy.name,
        rule="cross_tenant",
        severity="critical",
        message="SELECT on invoices filters on tenant 'globex'",
        table="invoices",
        tenant="acme",
        fingerprint="0123456789abcdef",
        query="SELECT 1",
    )
    reporter.finding(finding)
    mid_run = buffer.getvalue()
    assert "cross_tenant" in mid_run and "invoices_for_orgs" in mid_run and "critical" in mid_run
    result = StepResult(step=buggy, rows=3, findings=[finding])
    reporter.step_finished(result)
    reporter.finished(DemoResult(steps=[result]))
    final = buffer.getvalue()
    assert "scripted steps" in final
    assert "1/1 bugs caught" in final


# --- OTLP export ------------------------------------------------------------------------------------------------


class _Receiver(ThreadingHTTPServer):
    requests: list[tuple[str, bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.requests.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[_Receiver]:
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("via", ["flag", "environment"])
def test_demo_exports_findings_over_otlp(
    via: str, otlp_receiver: _Receiver, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an endpoint (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT), the spans with their finding events, the
    finding log records and the metrics go out over OTLP."""
    endpoint = f"http://127.0.0.1:{otlp_receiver.server_address[1]}"
    if via == "flag":
        assert main(["demo", "--json", "--otlp-endpoint", endpoint]) == 0
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        assert main(["demo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    _check_document(doc)
    assert doc["summary"]["otlp_endpoint"] == endpoint

    paths = {path for path, _ in otlp_receiver.requests}
    assert {"/v1/traces", "/v1/logs", "/v1/metrics"} <= paths

    exported_rules: list[str] = []
    step_spans: set[str] = set()
    for path, body in otlp_receiver.requests:
        if path != "/v1/traces":
            continue
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if span.name.startswith("demo "):
                        step_spans.add(span.name)
                    for event in span.events:
                        if event.name == "tenantwatch.finding":
                            attrs = {a.key: a.value.string_value for a in event.attributes}
                            exported_rules.append(attrs["tenantwatch.rule"])
    assert sorted(exported_rules) == sorted(SIX_RULES)
    assert step_spans == {f"demo {step.name}" for step in STEPS}

    log_bodies = []
    for path, body in otlp_receiver.requests:
        if path == "/v1/logs":
            for resource_logs in ExportLogsServiceRequest.FromString(body).resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    log_bodies.extend(record.body.string_value for record in scope_logs.log_records)
    assert len(log_bodies) == 6

    metric_names = set()
    for path, body in otlp_receiver.requests:
        if path == "/v1/metrics":
            for resource_metrics in ExportMetricsServiceRequest.FromString(body).resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    metric_names.update(metric.name for metric in scope_metrics.metrics)
    assert "tenantwatch.findings" in metric_names


def test_demo_refuses_to_run_where_tenantwatch_already_instruments(capsys: pytest.CaptureFixture[str]) -> None:
    """Inside a process whose SQLAlchemy tenantwatch already instruments, the demo says why it cannot run (exit 2)
    instead of silently seeing no findings."""
    from opentelemetry.sdk.trace import TracerProvider

    from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor

    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    instrumentor.instrument(tracer_provider=TracerProvider(), install_processor=False)
    try:
        assert main(["demo", "--json"]) == 2
    finally:
        instrumentor.uninstrument()
    out, err = capsys.readouterr()
    assert "already instrumented" in err
    error = json.loads(out)  # --json: the error is a JSON document on stdout too
    assert error["exit_code"] == 2 and "already instrumented" in error["error"]
    assert main(["demo", "--json"]) == 0  # and runs again once it is gone
    _check_document(json.loads(capsys.readouterr().out))
