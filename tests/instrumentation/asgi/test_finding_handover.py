"""Response actions hear the span processor's findings however the processor was wired: passed explicitly, set up by
configure(), registered on the provider after the middleware was built, or nested in a fan-out processor."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tenantwatch
from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.facts import SpanFacts
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware
from tenantwatch.processors import TenantwatchSpanProcessor

UNFILTERED = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="missing",
    unfiltered=("main:objectives",),
    statement_fingerprint="f00dfeed00000002",
    tenant_id="acme",
)
"""What the SQLAlchemy instrumentation records for ``SELECT * FROM objectives``: missing_tenant_filter (critical)."""


def _settings() -> Settings:
    return load_settings(
        environ={},
        http={"trust_headers": True},
        blocking={"enabled": True, "threshold": 2, "block_seconds": 60, "status": 429},
    )


def _app(provider: TracerProvider) -> Any:
    """A raw ASGI app whose every request runs one unfiltered query on ``provider`` (a db span with its facts)."""
    tracer = provider.get_tracer("test-app")

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        attributes = {A.DB_SYSTEM: "postgresql", A.DB_STATEMENT: "SELECT * FROM objectives"}
        attributes.update(UNFILTERED.to_attributes())
        tracer.start_span("SELECT app", kind=SpanKind.CLIENT, attributes=attributes).end()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    return app


async def _statuses(app: Any, count: int) -> list[int]:
    statuses = []
    for _ in range(count):
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/objectives",
            "raw_path": b"/objectives",
            "query_string": b"",
            "headers": [(b"host", b"api.example.com"), (b"x-tenant-id", b"acme")],
            "client": ("203.0.113.7", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        await app(scope, receive, send)
        statuses.append(int(sent[0]["status"]))
    return statuses


def _processor(settings: Settings) -> TenantwatchSpanProcessor:
    return TenantwatchSpanProcessor(SimpleSpanProcessor(InMemorySpanExporter()), settings=settings)


async def test_a_processor_registered_after_the_middleware_was_built_is_heard() -> None:
    """App factories wrap the app at import time and set up tracing at start-up: the middleware still finds it."""
    settings, provider = _settings(), TracerProvider()
    app = TenantwatchMiddleware(
        _app(provider), settings=settings, tracer_provider=provider, meter_provider=MeterProvider()
    )
    provider.add_span_processor(_processor(settings))
    assert await _statuses(app, 3) == [200, 200, 429]  # two critical findings start the block


async def test_a_processor_inside_a_fan_out_processor_is_heard() -> None:
    settings, provider = _settings(), TracerProvider()
    fan_out = SynchronousMultiSpanProcessor()
    fan_out.add_span_processor(_processor(settings))
    provider.add_span_processor(fan_out)
    app = TenantwatchMiddleware(
        _app(provider), settings=settings, tracer_provider=provider, meter_provider=MeterProvider()
    )
    assert await _statuses(app, 3) == [200, 200, 429]


async def test_an_explicit_processor_is_heard_even_when_the_server_spans_go_elsewhere() -> None:
    settings = _settings()
    processor = _processor(settings)
    db_provider = TracerProvider()
    db_provider.add_span_processor(processor)
    app = TenantwatchMiddleware(
        _app(db_provider),
        settings=settings,
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        processor=processor,
    )
    assert await _statuses(app, 3) == [200, 200, 429]


async def test_configure_hands_its_processor_to_the_middleware() -> None:
    handle = tenantwatch.configure(
        settings=_settings(), exporters=False, set_global=False, instrument_sqlalchemy=False, console=False
    )
    try:
        app = handle.instrument_app(_app(handle.tracer_provider))
        assert await _statuses(app, 3) == [200, 200, 429]
    finally:
        handle.shutdown()


async def test_a_processor_on_another_provider_is_not_heard() -> None:
    """Only the processor judging the middleware's own server spans binds: findings elsewhere start no block."""
    settings = _settings()
    db_provider, server_provider = TracerProvider(), TracerProvider()
    db_provider.add_span_processor(_processor(settings))
    app = TenantwatchMiddleware(
        _app(db_provider), settings=settings, tracer_provider=server_provider, meter_provider=MeterProvider()
    )
    assert await _statuses(app, 3) == [200, 200, 200]
