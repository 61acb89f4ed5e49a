"""The one outage warning of configure()'s OTLP pipelines, worded by what happened: a collector that answered 404
(reachable, but no pipeline on that path) is not "unreachable", and a password in the endpoint is never logged."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tenantwatch._configure import configure


@pytest.fixture
def not_found() -> Iterator[str]:
    """An HTTP server answering 404 to every POST (a collector without a traces pipeline); yields host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _export_one_span(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    handle = configure(
        set_global=False, instrument_sqlalchemy=False, endpoint=endpoint, metric_reader=InMemoryMetricReader()
    )
    try:
        with handle.tracer_provider.get_tracer("app").start_as_current_span("work"):
            pass
        return handle.force_flush(3_000)
    finally:
        handle.shutdown(1_000)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("tenantwatch")]


def test_a_404_answer_is_named_as_such(
    not_found: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tenantwatch")
    assert _export_one_span(f"http://u:HttpPw@{not_found}", monkeypatch) is False
    (warning,) = _warnings(caplog)
    assert warning.startswith(
        f"tenantwatch: http://u:***@{not_found}/v1/traces answered HTTP 404 to the traces export "
        "(no traces pipeline on that path?); dropping traces while it answers so"
    )
    assert "unreachable" not in warning
    assert "HttpPw" not in caplog.text


def test_an_unreachable_collector_is_still_unreachable_without_its_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    caplog.set_level(logging.DEBUG, logger="tenantwatch")
    assert _export_one_span(f"http://u:HttpPw@127.0.0.1:{port}", monkeypatch) is False
    (warning,) = _warnings(caplog)
    assert warning.startswith(f"tenantwatch: cannot deliver telemetry to http://u:***@127.0.0.1:{port}/v1/traces")
    assert "while the collector is unreachable" in warning
    assert "HttpPw" not in caplog.text
