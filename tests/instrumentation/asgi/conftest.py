"""The ``build`` fixture: an instrumented test app with its own tracer, meter and logger providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_support import SECRET, Stack, make_app
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sa_support import create_sqlite_database, sqlite_engine

from tenantwatch.config import load_settings
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware, instrument_app
from tenantwatch.processors import TenantwatchSpanProcessor


@pytest.fixture
def build(  # the first stack built receives the db spans (SQLAlchemy is instrumented once)
    instrument: Callable[..., Any], tmp_path: Path
) -> Iterator[Callable[..., tuple[Stack, TenantwatchMiddleware]]]:
    built: list[Stack] = []
    db = tmp_path / "app.db"
    create_sqlite_database(db)
    engine = sqlite_engine(db)
    key_file = tmp_path / "jwt.key"
    key_file.write_text(SECRET)

    def make(
        http: dict[str, Any] | None = None, *, inner: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> tuple[Stack, TenantwatchMiddleware]:
        """``inner(engine)`` builds the application to wrap (default: the Starlette test app)."""
        settings_kw = kwargs.pop("settings_kw", {})
        http = {"jwt_key_file": str(key_file), "jwt_algorithms": ["HS256", "RS256"], **(http or {})}
        settings = load_settings(environ={}, http=http, **settings_kw)
        exporter, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
        meter_provider = MeterProvider(metric_readers=[reader])
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        processor = TenantwatchSpanProcessor(
            SimpleSpanProcessor(exporter),
            settings=settings,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        if not built:
            instrument(tracer_provider=provider, settings=settings, engine=engine)
        stack = Stack(provider, exporter, reader, logs, processor, settings, engine, meter_provider)
        app = instrument_app(
            (inner or make_app)(engine),
            settings=settings,
            tracer_provider=provider,
            meter_provider=meter_provider,
            **kwargs,
        )
        stack.apps.append(app)
        built.append(stack)
        return stack, app

    yield make
    engine.dispose()
    for stack in built:
        stack.provider.shutdown()
