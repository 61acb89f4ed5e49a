"""Reading Jaeger's v3 query API: time windows walked oldest first, a full page split until every trace is read, a
trace seen in two windows judged once, an empty answer (Jaeger's 404) is no error, and Jaeger's errors are loud."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tenantwatch import load_settings
from tenantwatch.tools.scan import InputError, JaegerSource, ReadStats, scan_sources

BASE = 1_764_000_000.0  # Unix seconds


def _trace(number: int, start: float) -> dict[str, Any]:
    """One trace of one db span without tenant filter (a finding each)."""
    ns = int(start * 1e9)
    return {
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "okr"}}]},
        "scopeSpans": [
            {
                "spans": [
                    {
                        "traceId": f"{number:032x}",
                        "spanId": f"{number:016x}",
                        "name": "SELECT notes",
                        "kind": 3,
                        "startTimeUnixNano": str(ns),
                        "endTimeUnixNano": str(ns + 1000),
                        "attributes": [
                            {"key": "db.system", "value": {"stringValue": "postgresql"}},
                            {"key": "db.statement", "value": {"stringValue": "SELECT * FROM notes"}},
                            {"key": "tenant.id", "value": {"stringValue": "acme"}},
                        ],
                    }
                ]
            }
        ],
    }


class FakeJaeger:
    """Answers /api/v3/traces from a list of (start seconds, trace) like Jaeger: whole traces started in the range,
    at most num_traces, newest first; 404 when nothing matches."""

    def __init__(self, traces: list[tuple[float, dict[str, Any]]], *, fail: int | None = None) -> None:
        self.traces = traces
        self.queries: list[dict[str, str]] = []
        self.fail = fail
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                fake.queries.append(query)
                if fake.fail:
                    self._answer(fake.fail, {"error": {"httpCode": fake.fail, "message": "storage down"}})
                    return
                low = datetime.fromisoformat(query["query.start_time_min"].replace("Z", "+00:00")).timestamp()
                high = datetime.fromisoformat(query["query.start_time_max"].replace("Z", "+00:00")).timestamp()
                found = sorted((t for t in fake.traces if low <= t[0] <= high), key=lambda t: -t[0])
                found = found[: int(query["query.num_traces"])]
                if not found:
                    self._answer(404, {"error": {"httpCode": 404, "message": "trace not found"}})
                    return
                self._answer(200, {"result": {"resourceSpans": [t for _, t in found]}})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def jaeger() -> Iterator[FakeJaeger]:
    fake = FakeJaeger([])
    yield fake
    fake.server.shutdown()


def _scan(source: JaegerSource) -> tuple[int, int, ReadStats]:
    stats = ReadStats()
    groups = scan_sources([source], load_settings(tenant_tables={"notes": "organization_id"}), stats=stats)
    missing = sum(g.count for g in groups if g.rule == "missing_tenant_filter")
    return groups.spans, missing, stats


def test_every_trace_is_read_when_pages_are_full(jaeger: FakeJaeger) -> None:
    jaeger.traces = [(BASE + i * 0.5, _trace(i + 1, BASE + i * 0.5)) for i in range(60)]  # 30 s of traces
    source = JaegerSource(jaeger.url, "okr", BASE - 1, BASE + 40, page_size=8, window=20)
    spans, missing, stats = _scan(source)
    assert (spans, missing) == (60, 60)
    assert stats.problem_count == 0
    assert all(q["query.service_name"] == "okr" for q in jaeger.queries)
    assert len(jaeger.queries) > 3  # the full windows were split


def test_a_trace_on_a_window_boundary_counts_once(jaeger: FakeJaeger) -> None:
    jaeger.traces = [(BASE + 10, _trace(1, BASE + 10)), (BASE + 15, _trace(2, BASE + 15))]
    spans, missing, _ = _scan(JaegerSource(jaeger.url, "okr", BASE, BASE + 30, window=10))  # BASE+10 in two windows
    assert (spans, missing) == (2, 2)


def test_attribute_filters_are_sent_and_an_empty_answer_is_an_empty_source(jaeger: FakeJaeger) -> None:
    source = JaegerSource(jaeger.url, "okr", BASE, BASE + 60, {"tenantwatch.severity": "critical"}, window=3600)
    spans, _, stats = _scan(source)
    assert spans == 0 and stats.empty_sources == [source.name]
    assert json.loads(jaeger.queries[0]["query.attributes"]) == {"tenantwatch.severity": "critical"}
    assert jaeger.queries[0]["query.start_time_min"].endswith("Z")


def test_more_traces_in_one_millisecond_than_a_page_is_reported(jaeger: FakeJaeger) -> None:
    jaeger.traces = [(BASE + 5 + i / 1e6, _trace(i + 1, BASE + 5 + i / 1e6)) for i in range(20)]
    spans, _, stats = _scan(JaegerSource(jaeger.url, "okr", BASE, BASE + 10, page_size=4, window=10))
    assert spans < 20
    assert stats.problem_count >= 1 and "raise --page-size" in stats.problems[0].message


def test_jaeger_errors_are_input_errors() -> None:
    fake = FakeJaeger([], fail=500)
    try:
        with pytest.raises(InputError, match=r"Jaeger answered 500.*storage down"):
            _scan(JaegerSource(fake.url, "okr", BASE, BASE + 60))
    finally:
        fake.server.shutdown()
