"""`tenantwatch report` from the command line: exit codes (0 written, 1 no data, 2 errors), the files written, and a
Prometheus answered over real HTTP by a small stand-in server."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli_support import run_cli
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.groups import FindingGroups

SINCE, UNTIL = "2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"
T0 = 1_796_083_200  # 2026-12-01T00:00:00Z


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Prometheus:
    """Answers /api/v1/status/buildinfo and /api/v1/query_range (findings by rule only), or 404 for everything."""

    def __init__(self, *, is_prometheus: bool = True, findings: bool = True, reject_queries: bool = False) -> None:
        self.queries: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                if not is_prometheus:
                    self._answer(404, b"<html>not here</html>", "text/html")
                elif url.path == "/api/v1/status/buildinfo":
                    self._json({"status": "success", "data": {"version": "2.45.0"}})
                elif url.path == "/api/v1/query_range" and reject_queries:
                    body = {"status": "error", "errorType": "bad_data", "error": "1:1: parse error"}
                    self._answer(400, json.dumps(body).encode(), "application/json")
                elif url.path == "/api/v1/query_range":
                    owner.queries.append(params)
                    result: list[dict[str, Any]] = []
                    if findings and params["query"].startswith("sum by (tenantwatch_rule) ("):
                        values = [[T0 + 600, "0"], [T0 + 1200, "3"]]
                        result = [{"metric": {"tenantwatch_rule": "missing_tenant_filter"}, "values": values}]
                    self._json({"status": "success", "data": {"resultType": "matrix", "result": result}})
                else:
                    self._answer(404, b"404 page not found", "text/plain")

            def _json(self, document: dict[str, Any]) -> None:
                self._answer(200, json.dumps(document).encode(), "application/json")

            def _answer(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus() -> Iterator[_Prometheus]:
    server = _Prometheus()
    yield server
    server.stop()


def _findings(tmp_path: Path, *, at: int = T0 + 900) -> Path:
    groups = FindingGroups()
    finding = Finding(rule="large_result", severity="warning", message="m", fingerprint="f1", table="objectives")
    groups.add(finding, SpanFacts(tenant_id="acme"), time_ns=at * 10**9)
    path = tmp_path / "scan.json"
    path.write_text(json.dumps(groups.to_json()))
    return path


def test_a_report_from_prometheus_writes_html_markdown_and_json(
    prometheus: _Prometheus, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    html, md, js = tmp_path / "r.html", tmp_path / "r.md", tmp_path / "r.json"
    code, _, err = run_cli(
        capsys, monkeypatch, "report", "--prometheus", prometheus.url, "--since", SINCE, "--until", UNTIL,
        "--step", "600", "-o", str(html), "--markdown", str(md), "--json", str(js),
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(js.read_text())
    chart = document["sections"][0]["charts"][0]
    assert chart["series"] == [
        {
            "name": "missing_tenant_filter",
            "x": ["2026-12-01T00:10:00Z", "2026-12-01T00:20:00Z"],
            "y": [0, 3],
            "total": 3,
        }
    ]
    assert "| missing_tenant_filter | 3 | 3 | 2026-12-01T00:20:00Z |" in md.read_text()
    assert 'id="chart-findings-by-rule-over-time"' in html.read_text()
    assert prometheus.queries[0]["step"] == "600s"
    assert (prometheus.queries[0]["start"], prometheus.queries[0]["end"]) == (f"{T0}.000", f"{T0 + 3600}.000")
    assert f"wrote {html}, {md}, {js}: 1 of 9 sections with data" in err
    assert html.stat().st_mode & 0o044  # readable by others like any file written with the umask, not 0600


def test_no_data_at_all_exits_1_writes_nothing_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _Prometheus(findings=False)
    try:
        html = tmp_path / "r.html"
        argv = ("report", "--prometheus", server.url, "--since", SINCE, "--until", UNTIL, "-o", str(html))
        code, _, err = run_cli(capsys, monkeypatch, *argv)
        assert code == 1
        assert "no data from any source" in err and "--allow-empty" in err
        assert not html.exists()
        code, _, err = run_cli(capsys, monkeypatch, *argv, "--allow-empty")
        assert code == 0, err
        assert "No data from any source in this period." in html.read_text()
    finally:
        server.stop()


def test_prometheus_down_exits_2_with_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    code, _, err = run_cli(capsys, monkeypatch, "report", "--prometheus", url, "-o", str(tmp_path / "r.html"))
    assert code == 2
    assert f"tenantwatch report: cannot reach Prometheus at {url}" in err
    assert not (tmp_path / "r.html").exists()


def test_a_server_that_is_not_prometheus_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = _Prometheus(is_prometheus=False)
    try:
        code, _, err = run_cli(
            capsys, monkeypatch, "report", "--prometheus", server.url, "-o", str(tmp_path / "r.html")
        )
    finally:
        server.stop()
    assert code == 2
    assert f"Prometheus at {server.url} answered 404 for /api/v1/status/buildinfo" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "nothing to report from: give --prometheus URL, --findings FILE, or both"),
        (("--prometheus", "localhost:9090"), "not an http(s) URL: 'localhost:9090'"),
        (("--findings", "x.json", "--since", "yesterday"), "--since 'yesterday' is neither a duration back from now"),
        (("--findings", "x.json", "--until", "2026-12-01T00:00:00"), "--until '2026-12-01T00:00:00' needs a time zone"),
        (("--findings", "x.json", "--since", UNTIL, "--until", SINCE), "before it starts"),
        (("--findings", "x.json", "--no-html"), "--no-html leaves nothing to write"),
        (("--findings", "missing.json"), "cannot read findings document missing.json"),
    ],
)
def test_usage_errors_exit_2(
    argv: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "report", *argv)
    assert code == 2
    assert message in err


def test_since_and_until_take_the_grammar_of_scan_a_duration_back_from_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = time.time()
    code, out, err = run_cli(
        capsys, monkeypatch, "report", "--findings", str(_findings(tmp_path)), "--since", "24h", "--until", "1h",
        "--no-html", "--json", "-", "--allow-empty",
    )  # fmt: skip
    after = time.time()
    assert code == 0, err
    period = json.loads(out)["period"]
    start = datetime.fromisoformat(period["start"].replace("Z", "+00:00")).timestamp()
    end = datetime.fromisoformat(period["end"].replace("Z", "+00:00")).timestamp()
    assert before - 86400 - 1 <= start <= after - 86400
    assert before - 3600 - 1 <= end <= after - 3600


def test_a_bad_time_gets_the_same_message_from_scan_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, scan_err = run_cli(capsys, monkeypatch, "scan", "--jaeger", "http://127.0.0.1:9", "--service", "x",
                             "--since", "24 hours")  # fmt: skip
    _, _, report_err = run_cli(capsys, monkeypatch, "report", "--findings", "x.json", "--since", "24 hours")
    message = "--since '24 hours' is neither a duration back from now (30m, 24h, 7d) nor an RFC 3339 time"
    assert message in scan_err and message in report_err


def test_a_report_from_findings_alone_to_stdout_markdown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = _findings(tmp_path)
    code, out, err = run_cli(
        capsys, monkeypatch, "report", "--findings", str(scan), "--since", SINCE, "--until", UNTIL, "--no-html",
        "--markdown", "-",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("# tenantwatch report, 2026-12-01T00:00:00Z to 2026-12-01T01:00:00Z\n")
    assert "| f1 | objectives | 1 | 2026-12-01T00:15:00Z | 2026-12-01T00:15:00Z | - | - |" in out
    assert "Prometheus not queried (no --prometheus)" in out


def test_the_help_shows_examples(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "report", "--help")
    assert code == 0
    assert "examples:" in out and "tenantwatch report --prometheus http://127.0.0.1:9090" in out


def test_a_query_prometheus_rejects_exits_2_with_its_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = _Prometheus(reject_queries=True)
    try:
        code, _, err = run_cli(
            capsys, monkeypatch, "report", "--prometheus", server.url, "-o", str(tmp_path / "r.html")
        )
    finally:
        server.stop()
    assert code == 2
    assert "answered 400 for /api/v1/query_range: 1:1: parse error" in err
    assert not (tmp_path / "r.html").exists()


def test_without_plotly_the_html_report_exits_2_naming_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)  # import fails as if plotly were not installed
    argv = ("report", "--findings", str(_findings(tmp_path)), "--since", SINCE, "--until", UNTIL)
    code, _, err = run_cli(capsys, monkeypatch, *argv, "-o", str(tmp_path / "r.html"))
    assert code == 2
    assert "pip install 'tenantwatch[report]'" in err
    assert not (tmp_path / "r.html").exists()
    code, _, err = run_cli(capsys, monkeypatch, *argv, "--no-html", "--json", str(tmp_path / "r.json"))
    assert code == 0, err  # Markdown and JSON need no plotly
