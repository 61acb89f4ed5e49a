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
  batching processor and the span exporters of ``OTEL_TRACES_EXPORTER`` (``otlp`` by default, ``console``,
  ``none`` or a comma list);
* a ``MeterProvider`` with a ``PeriodicExportingMetricReader`` per exporter of ``OTEL_METRICS_EXPORTER``;
* a ``LoggerProvider`` with a batching processor per exporter of ``OTEL_LOGS_EXPORTER`` (finding log records);
* with ``console=True`` or ``TENANTWATCH_CONSOLE=1``, one line per finding on standard error;
* the SQLAlchemy instrumentation (``instrument_sqlalchemy=True``; needs the ``sqlalchemy`` extra);
* with ``app=``, the ASGI instrumentation of that application (``handle.app`` is what to serve: a Starlette or
  FastAPI application is instrumented in place through its middleware stack, any other ASGI app is wrapped).

An instrumentation whose extra is not installed (SQLAlchemy present but not opentelemetry-instrumentation-sqlalchemy,
an ``app=`` without ``tenantwatch[asgi]``) is skipped with ONE warning naming the extra to install; the application
runs on. :func:`instrumented` says what is active in the process, :func:`missing_instrumentation` why one is not.

OTLP protocol, per signal: the ``protocol`` argument, else ``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_PROTOCOL``,
else ``OTEL_EXPORTER_OTLP_PROTOCOL``, else ``http/protobuf`` (the OpenTelemetry specification's default; the
Python SDK's own auto-configuration defaults to ``grpc``). Endpoint: the ``endpoint`` argument as a base URL (like
``OTEL_EXPORTER_OTLP_ENDPOINT``: ``/v1/traces`` etc. are appended for HTTP), else the exporters read the standard
``OTEL_EXPORTER_OTLP_*`` variables themselves (endpoint, headers, timeout, compression, certificates).

Outages (see :mod:`tenantwatch.export`): an OTLP export takes at most 2 s unless ``OTEL_EXPORTER_OTLP_TIMEOUT``
says otherwise; while the collector is unreachable batches are dropped at once, counted on
``tenantwatch.export.dropped``, with ONE warning naming the endpoint; ``force_flush`` and ``shutdown`` keep their
timeout and return False when something was not delivered; the exit handler gives the shutdown 1 s in all.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from pydantic import ValidationError

from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.core.guard import guard
from tenantwatch.environment_variables import TENANTWATCH_CONSOLE
from tenantwatch.export import ConsoleFindings, Drops, Outage, Pipelines
from tenantwatch.export._batch import BoundedBatcher
from tenantwatch.export._delivery import bounded_call
from tenantwatch.export._exporters import otlp_span_exporter, signal_endpoint
from tenantwatch.processors import TenantwatchSpanProcessor

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["PROTOCOLS", "TenantwatchHandle", "configure", "instrumented", "missing_instrumentation"]

logger = logging.getLogger(__name__)

PROTOCOLS: Final = ("grpc", "http/protobuf")
"""OTLP protocols the Python exporters speak."""

DEFAULT_PROTOCOL: Final = "http/protobuf"

# The demo builds its span exporter with these (they live in tenantwatch.export).
_otlp_span_exporter = otlp_span_exporter
_signal_endpoint = signal_endpoint

EXIT_TIMEOUT_MILLIS: Final = 1_000
"""What the interpreter-exit handler gives :meth:`TenantwatchHandle.shutdown`, for everything together."""

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
    pipelines: Pipelines | None = None
    """The exporters ``configure`` built (bounded processors and metric exporters), for flush and shutdown."""
    drops: Drops = field(default_factory=Drops)
    """What could not be delivered, per signal (also counted on ``tenantwatch.export.dropped``)."""
    outage: Outage = field(default_factory=Outage)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: bool = field(default=False, init=False, repr=False)
    _delivered: bool = field(default=False, init=False, repr=False)

    def instrument_app(self, app: Any, **kwargs: Any) -> Any:
        """Wrap an ASGI application (FastAPI, Starlette, raw ASGI) with tenantwatch's middleware, wired to this
        setup's settings, providers and span processor (response actions listen to its findings). Serve the
        returned application. Keyword arguments go to :class:`tenantwatch.instrumentation.asgi.TenantwatchMiddleware`
        (``resolver``, ``observers``, ``excluded_urls``, ...). Without the ``asgi`` extra, ``app`` is returned as it
        is, with one warning."""
        if _unavailable("asgi"):
            return app
        from tenantwatch.instrumentation.asgi import instrument_app

        kwargs.setdefault("settings", self.settings)
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        kwargs.setdefault("processor", self.processor)
        wrapped = instrument_app(app, **kwargs)
        _APPS_INSTRUMENTED.add("asgi")
        return wrapped

    def add_middleware(self, app: Any, **kwargs: Any) -> Any:
        """Instrument a Starlette or FastAPI application in place (``app.add_middleware``), wired like
        :meth:`instrument_app`; returns ``app``. Other ASGI applications, or a Starlette application that has already
        started, are wrapped instead and the wrapper is returned: serve what this returns. Without the ``asgi``
        extra, ``app`` is returned as it is, with one warning."""
        if _unavailable("asgi"):
            return app
        from tenantwatch.instrumentation.asgi import TenantwatchMiddleware

        kwargs.setdefault("settings", self.settings)
        kwargs.setdefault("tracer_provider", self.tracer_provider)
        kwargs.setdefault("meter_provider", self.meter_provider)
        kwargs.setdefault("processor", self.processor)
        add = getattr(app, "add_middleware", None)
        if callable(add) and getattr(app, "middleware_stack", True) is None:
            add(TenantwatchMiddleware, **kwargs)
            _APPS_INSTRUMENTED.add("asgi")
            return app
        return self.instrument_app(app, **kwargs)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything recorded so far: spans first (their findings make logs and metrics), then logs and
        metrics. Returns within ``timeout_millis``; True only if everything was delivered (nothing dropped since
        the previous flush, every provider done in time)."""
        with self.outage.hurry():
            return self._flush(timeout_millis)

    def _flush(self, timeout_millis: int) -> bool:
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        ok = True
        providers: tuple[tuple[str, Any], ...] = (
            ("traces", self.tracer_provider),
            ("logs", self.logger_provider),
            ("metrics", self.meter_provider),
        )
        for name, provider in providers:
            remaining = _remaining(deadline)

            def flush(provider: Any = provider, millis: int = int(remaining * 1000)) -> bool:
                return bool(provider.force_flush(millis))

            done, result = bounded_call(flush, remaining, name=f"{name}-flush")
            ok = ok and done and bool(result)
        exporters = self.pipelines.metric_exporters if self.pipelines is not None else []
        return all([exporter.delivered_since_flush() for exporter in exporters]) and ok

    def shutdown(self, timeout_millis: int = 30_000) -> bool:
        """Uninstrument, then flush and shut down the tracer, logger and meter providers, in that order, within
        ``timeout_millis`` in all (what is still queued then is dropped and counted). True if everything was
        delivered. Idempotent: later calls return the first call's answer at once."""
        with self._lock:
            if self._stopped:
                return self._delivered
            self._stopped = True
        atexit.unregister(self._at_exit)
        with self.outage.hurry():
            self._delivered = self._stop(timeout_millis)
        dropped = self.drops.totals()
        if dropped:
            logger.info(
                "tenantwatch: not delivered: %s", ", ".join(f"{count} {signal}" for signal, count in dropped.items())
            )
        return self._delivered

    def _stop(self, timeout_millis: int) -> bool:
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        if self.instrumentor is not None:
            with guard("uninstrumenting SQLAlchemy", logger=logger, level=logging.ERROR):
                self.instrumentor.uninstrument()
        pipelines = self.pipelines
        bounded: list[BoundedBatcher[Any]] = []
        if pipelines is not None:
            bounded = [p.batcher for p in pipelines.span_processors] + [p.batcher for p in pipelines.log_processors]
        # Spans and logs in parallel; the metrics get the last third (their final export counts the drops).
        stage = time.monotonic() + _remaining(deadline) * 2 / 3
        workers = [
            threading.Thread(
                target=batcher.shutdown,
                args=(max(_remaining(stage) - _GRACE_SECONDS, 0) * 1000,),
                daemon=True,
                name="tenantwatch-stop",
            )
            for batcher in bounded
        ]
        started: list[threading.Thread] = []
        for batcher, worker in zip(bounded, workers, strict=True):
            try:
                worker.start()
                started.append(worker)
            except RuntimeError:  # no new threads this late in interpreter shutdown: one after the other
                batcher.shutdown(_remaining(stage) * 1000)
        for worker in started:
            worker.join(_remaining(stage))
        for name, provider in (("traces", self.tracer_provider), ("logs", self.logger_provider)):
            bounded_call(provider.shutdown, _remaining(stage), name=f"{name}-shutdown")
        remaining = _remaining(deadline)

        def stop_metrics() -> None:
            self.meter_provider.shutdown(timeout_millis=remaining * 1000)

        done, _ = bounded_call(stop_metrics, remaining, name="metrics-shutdown")
        exporters = pipelines.metric_exporters if pipelines is not None else []
        metrics_ok = all([exporter.delivered_since_flush() for exporter in exporters])
        spans_logs_ok = all(batcher.delivered for batcher in bounded)
        return done and metrics_ok and spans_logs_ok

    def _at_exit(self) -> None:
        self.shutdown(EXIT_TIMEOUT_MILLIS)


_GRACE_SECONDS: Final = 0.05
"""The span and log shutdowns end this much before their stage does, so their drop counts reach the metrics."""


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


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
    console: bool | TextIO | None = None,
) -> TenantwatchHandle:
    """Set up tracing, metrics and logs with OTLP export, tenantwatch's span processor and instrumentation.

    ``service_name`` sets ``service.name`` (else ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``).
    ``settings`` is used as given (``mode`` may still override it); otherwise settings are loaded from
    ``rules_file`` (or ``$TENANTWATCH_RULES_FILE``) and the environment, with ``mode`` winning.
    ``endpoint`` is a base URL such as ``http://collector:4318``; ``protocol`` is ``grpc`` or ``http/protobuf``.
    ``exporters=False`` creates no exporters (spans, metrics and logs stay in process unless injected); otherwise
    each signal gets the exporters ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` name (``otlp`` by default, ``console``,
    ``none``, comma lists).
    ``span_exporter`` (an exporter, batched, or a span processor, used as is), ``metric_reader`` and
    ``log_exporter`` (an exporter, batched, or a log record processor) replace those of their signal.
    ``console`` (else ``TENANTWATCH_CONSOLE``) prints one line per finding on standard error (or on the stream
    given), for local runs.
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

    drops, outage = Drops(), Outage()
    pipelines = Pipelines(protocols, endpoint, drops=drops, outage=outage)

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    if isinstance(log_exporter, LogRecordProcessor):
        logger_provider.add_log_record_processor(log_exporter)
    elif log_exporter is not None or exporters:
        for log_processor in pipelines.logs(log_exporter):
            logger_provider.add_log_record_processor(log_processor)

    readers: list[MetricReader] = []
    if metric_reader is not None:
        readers.append(metric_reader)
    elif exporters:
        readers.extend(pipelines.metrics())
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    drops.bind(meter_provider)

    downstream: SpanProcessor | None = None
    if isinstance(span_exporter, SpanProcessor):
        downstream = span_exporter
    elif span_exporter is not None or exporters:
        span_processors = pipelines.spans(span_exporter)
        if len(span_processors) == 1:
            downstream = span_processors[0]
        elif span_processors:
            fan_out = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
            for span_processor in span_processors:
                fan_out.add_span_processor(span_processor)
            downstream = fan_out
    processor = TenantwatchSpanProcessor(
        downstream if downstream is not None else SpanProcessor(),
        settings=resolved,
        analyzer=analyzer,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    if _console_wanted(console):
        processor.add_finding_listener(ConsoleFindings(None if isinstance(console, bool | None) else console))
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(processor)

    handle = TenantwatchHandle(
        settings=resolved,
        analyzer=analyzer,
        processor=processor,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
        pipelines=pipelines,
        drops=drops,
        outage=outage,
    )
    atexit.register(handle._at_exit)
    if set_global:
        _set_globals(tracer_provider, meter_provider, logger_provider)
    if instrument_sqlalchemy:
        handle.instrumentor = _instrument_sqlalchemy(
            resolved, analyzer, tracer_provider, meter_provider, engine=engine, engines=engines
        )
    if app is not None:
        handle.app = handle.add_middleware(app)
    return handle


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


def _console_wanted(console: bool | TextIO | None) -> bool:
    """The ``console`` argument, else ``TENANTWATCH_CONSOLE`` (a bad value warns and counts as off)."""
    if console is not None:
        return console is not False
    raw = os.environ.get(TENANTWATCH_CONSOLE, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw not in _FALSE:
        logger.warning("ignoring %s=%r: expected true or false", TENANTWATCH_CONSOLE, raw)
    return False


def _instrument_sqlalchemy(
    settings: Settings,
    analyzer: Analyzer,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    *,
    engine: Any | None,
    engines: Iterable[Any] | None,
) -> Any | None:
    if _unavailable("sqlalchemy"):
        return None
    try:
        from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor
    except ImportError as exc:
        logger.warning(
            "tenantwatch.configure: the SQLAlchemy instrumentation is off (%s): pip install 'tenantwatch[sqlalchemy]'",
            exc,
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


def install_processor(
    tracer_provider: Any, *, settings: Settings, analyzer: Analyzer, meter_provider: Any | None = None
) -> TenantwatchSpanProcessor | None:
    """Zero-code wiring (the SQLAlchemy instrumentor's ``install_processor=True``): put tenantwatch's span processor in
    front of the processors already registered on an SDK ``tracer_provider`` (see
    :func:`tenantwatch.processors.install`). Besides :func:`configure`, the one place the instrumentation and the
    processor are wired together."""
    from tenantwatch.processors import install

    processor = install(tracer_provider, settings=settings, analyzer=analyzer, meter_provider=meter_provider)
    if processor is not None and _console_wanted(None):  # TENANTWATCH_CONSOLE under opentelemetry-instrument too
        processor.add_finding_listener(ConsoleFindings(None))
    return processor


# --- optional instrumentations ------------------------------------------------------------------------------------

_NEEDS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "sqlalchemy": (
        ("sqlalchemy", "SQLAlchemy"),
        ("opentelemetry.instrumentation.sqlalchemy", "opentelemetry-instrumentation-sqlalchemy"),
    ),
    "asgi": (("opentelemetry.instrumentation.asgi", "opentelemetry-instrumentation-asgi"),),
    "httpx": (("httpx", "httpx"), ("opentelemetry.instrumentation.httpx", "opentelemetry-instrumentation-httpx")),
}
"""Instrumentation -> the (module, distribution) pairs it imports; the extra of the same name installs them."""

_WHAT: Final = {
    "sqlalchemy": "no database statement is watched",
    "asgi": "the application is served without tenantwatch's ASGI middleware (no tenant context from requests)",
    "httpx": "outgoing httpx requests are not instrumented",
}

_APPS_INSTRUMENTED: set[str] = set()
""""asgi" once :func:`configure` (or a handle) instrumented an application in this process."""

_WARNED: set[str] = set()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def missing_instrumentation(name: str) -> str | None:
    """Why tenantwatch's ``name`` instrumentation (``sqlalchemy``, ``asgi``, ``httpx``) cannot run in this
    environment, naming what to install (``... is not installed (pip install 'tenantwatch[sqlalchemy]')``); None
    when it can."""
    missing = [dist for module, dist in _NEEDS[name] if not _installed(module)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return f"{' and '.join(missing)} {verb} not installed (pip install 'tenantwatch[{name}]')"


def _unavailable(name: str) -> bool:
    """True (after ONE warning per process and instrumentation) when ``name``'s extra is not installed."""
    reason = missing_instrumentation(name)
    if reason is None:
        return False
    if name not in _WARNED:
        _WARNED.add(name)
        logger.warning("tenantwatch: %s: %s", _WHAT[name], reason)
    return True


def instrumented() -> frozenset[str]:
    """The tenantwatch instrumentations active in this process now: ``sqlalchemy`` (statements are watched, by
    :func:`configure` or by hand), ``asgi`` (an application was instrumented through :func:`configure` or a handle),
    ``httpx``. An empty set, or one without ``sqlalchemy``, means no database statement is judged; see
    :func:`missing_instrumentation` for why."""
    active = set(_APPS_INSTRUMENTED)
    for name, module, attribute in (
        ("sqlalchemy", "tenantwatch.instrumentation.sqlalchemy", "TenantwatchSQLAlchemyInstrumentor"),
        ("httpx", "opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
    ):
        loaded = sys.modules.get(module)  # not imported: nobody instrumented it
        instrumentor = getattr(loaded, attribute, None) if loaded is not None else None
        if instrumentor is not None:
            with guard(f"asking whether {name} is instrumented", logger=logger):
                if instrumentor().is_instrumented_by_opentelemetry:
                    active.add(name)
    return frozenset(active)
