"""OpenTelemetry's ASGI middleware, as tenantwatch wraps it, never raises into the application: raw non-UTF-8
bytes in a query string (OTel decodes them strictly) are traced, and any other failure of OTel's leaves the request
running."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import current_context
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware


class RawApp:
    """A raw ASGI app that records what it saw and answers 200 (or raises, when told to)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.seen.append({"query_string": scope.get("query_string"), "tenant": current_context().tenant_id})
        if self.fail:
            raise RuntimeError("the application's own error")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    yield InMemorySpanExporter()


def _middleware(app: RawApp, exporter: InMemorySpanExporter) -> TenantwatchMiddleware:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = load_settings(environ={}, http={"trust_headers": True})
    return TenantwatchMiddleware(app, settings=settings, tracer_provider=provider, meter_provider=MeterProvider())


async def _request(middleware: TenantwatchMiddleware, query: bytes) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/search",
        "raw_path": b"/search",
        "query_string": query,
        "headers": [(b"host", b"api.example.com"), (b"x-tenant-id", b"acme")],
        "client": ("203.0.113.7", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


async def test_raw_ff_bytes_in_the_query_string_are_traced_and_reach_the_app(exporter: InMemorySpanExporter) -> None:
    app = RawApp()
    sent = await _request(_middleware(app, exporter), b"q=\xff\xfe&page=1")
    assert sent[0]["status"] == 200
    assert app.seen == [{"query_string": b"q=\xff\xfe&page=1", "tenant": "acme"}]  # untouched, tenant resolved
    (server,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    attributes = dict(server.attributes or {})
    assert attributes[A.TENANT_ID] == "acme"
    # OTel unquotes the query it records; the undecodable bytes show as replacement characters.
    assert attributes["http.url"] == "http://api.example.com/search?q=\ufffd\ufffd&page=1"


async def test_a_failure_inside_otel_before_the_app_runs_leaves_the_request_running(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import opentelemetry.instrumentation.asgi as otel_asgi

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("OTel could not read this request")

    monkeypatch.setattr(otel_asgi, "collect_request_attributes", broken)
    app = RawApp()
    sent = await _request(_middleware(app, exporter), b"q=1")
    assert sent[0]["status"] == 200
    assert app.seen == [{"query_string": b"q=1", "tenant": "acme"}]  # run once, tenant still resolved
    assert "OpenTelemetry's ASGI middleware failed" in caplog.text


async def test_the_applications_own_exception_still_propagates_once(exporter: InMemorySpanExporter) -> None:
    app = RawApp(fail=True)
    with pytest.raises(RuntimeError, match="the application's own error"):
        await _request(_middleware(app, exporter), b"q=\xff")
    assert len(app.seen) == 1
