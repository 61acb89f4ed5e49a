"""One-call setup: tracer, meter and logger providers with OTLP exporters, the span processor, the instrumentation.

Usage::

    import tenantwatch

    handle = tenantwatch.configure(service_name="okr-api", engine=engine)
    ...
    handle.shutdown()          # flushes spans, logs and metrics (also runs at interpreter exit)

What it builds:

* settings: :func:`tenantwatch.config.load_settings` (explicit arguments > ``TENANTWATCH_*`` > rules file > defaults);
  a bad rules file raises :class:`tenantwatch.config.ConfigError` here, naming the field path;
* one :class:`tenantwatch.sql.analyzer.Analyzer` shared by the instrumentation and the processor;
* a ``TracerProvider`` whose spans go through :class:`tenantwatch.processors.TenantwatchSpanProcessor` into a
  ``BatchSpanProcessor`` and the OTLP span exporter;
* a ``MeterProvider`` with a ``PeriodicExportingMetricReader`` and the OTLP metric exporter;
* a ``LoggerProvider`` with a ``BatchLogRecordProcessor`` and the OTLP log exporter (finding log records);
* the SQLAlchemy instrumentation (``instrument_sqlalchemy=True``; needs the ``sqlalchemy`` extra);
* with ``app=``, the ASGI instrumentation of that application (``handle.app`` is what to serve: a Starlette or
  FastAPI application is instrumented in place through its middleware stack, any other ASGI app is wrapped).

OTLP protocol, per signal: the ``protocol`` argument, else ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL``,
else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf`` (the OpenTelemetry specification's default; the
Python SDK's own auto-configuration defaults to ``grpc``). Endpoint: the ``endpoint`` argument as a base URL (like
``OTEL_EXPORTER_OTLP_ENDPOINT``: ``/v1/traces`` etc. are appended for HTTP), else the exporters read the standard
``OTEL_EXPORTER_OTLP_*`` variables themselves (endpoint, headers, timeout, compression, certificates).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from pydantic import ValidationError

from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.processors import TenantwatchSpanProcessor

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["PROTOCOLS", "TenantwatchHandle", "configure"]

logger = logging.getLogger(__name__)

PROTOCOLS: Final = ("grpc", "http/protobuf")
"""OTLP protocols the Python exporters speak."""

DEFAULT_PROTOCOL: Final = "http/protobuf"

_SIGNALS: Final = {
    "traces": (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "v1/traces"),
    "metrics": (OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, "v1/metrics"),
    "logs": (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "v1/logs"),
}


@dataclass
class TenantwatchHandle:
    """What :func:`configure` set up. ``shutdown()`` flushes and stops everything (idempotent)."""

    settings: Settings
    analyzer: Analyzer
    processor: TenantwatchSpanProcessor
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    instrumentor: Any | None = None
    """The SQLAlchemy instrumentor when ``configure`` instrumented SQLAlchemy (uninstrumented by ``shutdown``)."""
    app: Any | None = None
    """The ASGI application to serve when ``configure(app=...)`` instrumented one."""
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)

    def instrument_app(self, app: Any, **kwargs: Any) -> Any:
        """Wrap an ASGI application (FastAPI, Starlette, raw ASGI) with tenantwatch's middleware, wired to this
        setup's settings, providers and span processor (response actions listen to its findings). Serve the
        returned application. Keyword arguments go to :class:`tenantwatch.instrumentation.asgi.TenantwatchMiddleware`
        (``resolver``, ``observers``, ``excluded_urls``, ...)."""
        from tenantwatch.instrumentation.asgi import instrument_app

        kwargs.setdefault("settings", self.settings)
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        kwargs.setdefault("processor", self.processor)
        return instrument_app(app, **kwargs)

    def add_middleware(self, app: Any, **kwargs: Any) -> Any:
        """Instrument a Starlette or FastAPI application in place (``app.add_middleware``), wired like
        :meth:`instrument_app`; returns ``app``. Other ASGI applications, or a Starlette application that has already
        started, are wrapped instead and the wrapper is returned: serve what this returns."""
        from tenantwatch.instrumentation.asgi import TenantwatchMiddleware

        kwargs.setdefault("settings", self.settings)
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        kwargs.setdefault("processor", self.processor)
        add = getattr(app, "add_middleware", None)
        if callable(add) and getattr(app, "middleware_stack", True) is None:
            add(TenantwatchMiddleware, **kwargs)
            return app
        return self.instrument_app(app, **kwargs)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything recorded so far: spans first (their findings make logs and metrics), then logs and
        metrics. True if every provider flushed in time."""
        spans = self.tracer_provider.force_flush(timeout_millis)
        logs = self.logger_provider.force_flush(timeout_millis)
        metrics_ok = self.meter_provider.force_flush(timeout_millis)
        return bool(spans and logs and metrics_ok)

    def shutdown(self) -> None:
        """Uninstrument, then flush and shut down the tracer, logger and meter providers, in that order."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.instrumentor is not None:
            try:
                self.instrumentor.uninstrument()
            except Exception:
                logger.exception("tenantwatch: uninstrumenting SQLAlchemy failed")
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def resolve_protocol(signal: str, explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The OTLP protocol for ``signal`` (``traces``, ``metrics`` or ``logs``).

    ``explicit`` wins and must be valid (:class:`ConfigError` otherwise); a bad environment value logs a warning and
    falls back to the next source.
    """
    if explicit is not None:
        protocol = explicit.strip().lower()
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {explicit!r}")
        return protocol
    environ = os.environ if environ is None else environ
    for var in (_SIGNALS[signal][0], OTEL_EXPORTER_OTLP_PROTOCOL):
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        protocol = raw.strip().lower()
        if protocol in PROTOCOLS:
            return protocol
        logger.warning("ignoring %s=%r: tenantwatch exports OTLP over %s", var, raw, " or ".join(PROTOCOLS))
    return DEFAULT_PROTOCOL


def _signal_endpoint(endpoint: str | None, protocol: str, signal: str) -> str | None:
    if endpoint is None:
        return None
    if protocol == "grpc":
        return endpoint
    return f"{endpoint.rstrip('/')}/{_SIGNALS[signal][1]}"


def _otlp_span_exporter(protocol: str, endpoint: str | None) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(endpoint=endpoint)


def _otlp_metric_exporter(protocol: str, endpoint: str | None) -> MetricExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        return GrpcMetricExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    return HttpMetricExporter(endpoint=endpoint)


def _otlp_log_exporter(protocol: str, endpoint: str | None) -> LogRecordExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter(endpoint=endpoint)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(endpoint=endpoint)


def _settings(settings: Settings | None, rules_file: str | os.PathLike[str] | None, mode: str | None) -> Settings:
    if settings is None:
        return load_settings(rules_file, mode=mode)
    if rules_file is not None:
        raise ConfigError("rules_file: pass either settings or rules_file, not both")
    if mode is None:
        return settings
    try:
        return Settings.model_validate({**settings.model_dump(), "mode": mode})
    except ValidationError as exc:
        raise ConfigError(f"mode: {exc.errors()[0]['msg']} (got {mode!r})") from exc


def _set_globals(
    tracer_provider: TracerProvider, meter_provider: MeterProvider, logger_provider: LoggerProvider
) -> None:
    """Make the providers global, each unless an SDK provider is already global (that one stays, with a warning)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        logger.warning("tenantwatch.configure: a global TracerProvider is already set; leaving it global")
    else:
        trace.set_tracer_provider(tracer_provider)
    if isinstance(metrics.get_meter_provider(), MeterProvider):
        logger.warning("tenantwatch.configure: a global MeterProvider is already set; leaving it global")
    else:
        metrics.set_meter_provider(meter_provider)
    if isinstance(_logs.get_logger_provider(), LoggerProvider):
        logger.warning("tenantwatch.configure: a global LoggerProvider is already set; leaving it global")
    else:
        _logs.set_logger_provider(logger_provider)


def configure(
    *,
    service_name: str | None = None,
    settings: Settings | None = None,
    rules_file: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    exporters: bool = True,
    span_exporter: SpanExporter | SpanProcessor | None = None,
    metric_reader: MetricReader | None = None,
    log_exporter: LogRecordExporter | LogRecordProcessor | None = None,
    instrument_sqlalchemy: bool = True,
    engine: Any | None = None,
    engines: Iterable[Any] | None = None,
    set_global: bool = True,
    app: Any | None = None,
) -> TenantwatchHandle:
    """Set up tracing, metrics and logs with OTLP export, tenantwatch's span processor and instrumentation.

    ``service_name`` sets ``service.name`` (else ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``).
    ``settings`` is used as given (``mode`` may still override it); otherwise settings are loaded from
    ``rules_file`` (or ``$TENANTWATCH_RULES_FILE``) and the environment, with ``mode`` winning.
    ``endpoint`` is a base URL such as ``http://collector:4318``; ``protocol`` is ``grpc`` or ``http/protobuf``.
    ``exporters=False`` creates no OTLP exporters (spans, metrics and logs stay in process unless injected).
    ``span_exporter`` (an exporter, batched, or a span processor, used as is), ``metric_reader`` and
    ``log_exporter`` (an exporter, batched, or a log record processor) replace the OTLP ones for their signal.
    ``instrument_sqlalchemy`` instruments SQLAlchemy (``engine`` / ``engines``: engines created before this call).
    ``set_global`` makes the providers the global ones (unless a global SDK tracer provider already exists).
    ``app`` (an ASGI application) is instrumented with tenantwatch's ASGI middleware (see
    :meth:`TenantwatchHandle.add_middleware`); serve ``handle.app``.

    Raises :class:`tenantwatch.config.ConfigError` (a ``ValueError``) for a bad rules file or argument, naming the
    field.
    """
    resolved = _settings(settings, rules_file, mode)
    from tenantwatch.sql.analyzer import Analyzer

    analyzer = Analyzer(resolved)
    resource = Resource.create({SERVICE_NAME: service_name} if service_name else {})
    protocols = {signal: resolve_protocol(signal, protocol) for signal in _SIGNALS} if exporters else {}

    logger_provider = LoggerProvider(resource=resource)
    if log_exporter is not None:
        logger_provider.add_log_record_processor(
            log_exporter if isinstance(log_exporter, LogRecordProcessor) else BatchLogRecordProcessor(log_exporter)
        )
    elif exporters:
        proto = protocols["logs"]
        exporter = _otlp_log_exporter(proto, _signal_endpoint(endpoint, proto, "logs"))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter))

    readers: list[MetricReader] = []
    if metric_reader is not None:
        readers.append(metric_reader)
    elif exporters:
        proto = protocols["metrics"]
        readers.append(
            PeriodicExportingMetricReader(_otlp_metric_exporter(proto, _signal_endpoint(endpoint, proto, "metrics")))
        )
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    downstream: SpanProcessor | None
    if isinstance(span_exporter, SpanProcessor):
        downstream = span_exporter
    elif span_exporter is not None:
        downstream = BatchSpanProcessor(span_exporter)
    elif exporters:
        proto = protocols["traces"]
        downstream = BatchSpanProcessor(_otlp_span_exporter(proto, _signal_endpoint(endpoint, proto, "traces")))
    else:
        downstream = None
    processor = TenantwatchSpanProcessor(
        downstream if downstream is not None else SpanProcessor(),
        settings=resolved,
        analyzer=analyzer,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(processor)

    handle = TenantwatchHandle(
        settings=resolved,
        analyzer=analyzer,
        processor=processor,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    if set_global:
        _set_globals(tracer_provider, meter_provider, logger_provider)
    if instrument_sqlalchemy:
        handle.instrumentor = _instrument_sqlalchemy(
            resolved, analyzer, tracer_provider, meter_provider, engine=engine, engines=engines
        )
    if app is not None:
        handle.app = handle.add_middleware(app)
    return handle


def _instrument_sqlalchemy(
    settings: Settings,
    analyzer: Analyzer,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    *,
    engine: Any | None,
    engines: Iterable[Any] | None,
) -> Any | None:
    try:
        from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor
    except ImportError as exc:
        logger.warning(
            "tenantwatch.configure: SQLAlchemy instrumentation unavailable (%s); install tenantwatch[sqlalchemy]", exc
        )
        return None
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        logger.warning("tenantwatch.configure: SQLAlchemy is already instrumented; leaving it as it is")
        return None
    instrumentor.instrument(
        settings=settings,
        analyzer=analyzer,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        engine=engine,
        engines=list(engines) if engines is not None else None,
        install_processor=False,
    )
    return instrumentor
