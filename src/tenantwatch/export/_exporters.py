"""Which exporters ``configure()`` builds per signal, and how: ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER``, OTLP
factories with deliberate timeouts, and the bounded processors / readers around them."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.environment_variables import OTEL_LOGS_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
)
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from tenantwatch.export._batch import BoundedLogRecordProcessor, BoundedSpanProcessor
from tenantwatch.export._delivery import Circuit, Drops, Outage
from tenantwatch.export._metrics import BoundedMetricExporter
from tenantwatch.redaction import safe_url

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_SECONDS",
    "EXPORTERS",
    "Pipelines",
    "export_timeout",
    "exporter_names",
    "otlp_log_exporter",
    "otlp_metric_exporter",
    "otlp_span_exporter",
    "signal_endpoint",
]

logger = logging.getLogger(__name__)

EXPORTERS: Final = ("otlp", "console", "none")
"""Exporter names ``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` may list (comma-separated), as the SDK reads them."""

_PROTOCOL_ALIASES: Final = {"otlp_proto_http": "http/protobuf", "otlp_proto_grpc": "grpc"}
"""The SDK's entry-point names for the two OTLP exporters: ``otlp`` with that protocol."""

DEFAULT_EXPORT_TIMEOUT_SECONDS: Final = 2.0
"""Per export call, retries included (the OTLP exporters default to 10 s). Used unless
``OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_TIMEOUT`` or ``OTEL_EXPORTER_OTLP_TIMEOUT`` is set."""

_SIGNAL_VARS: Final = {
    "traces": (OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
    "metrics": (OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_METRICS_TIMEOUT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT),
    "logs": (OTEL_LOGS_EXPORTER, OTEL_EXPORTER_OTLP_LOGS_TIMEOUT, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT),
}
_HTTP_PATHS: Final = {"traces": "v1/traces", "metrics": "v1/metrics", "logs": "v1/logs"}


def exporter_names(signal: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The exporters for ``signal`` from ``OTEL_<SIGNAL>_EXPORTER``: ``otlp`` (default), ``console``, ``none`` (no
    exporter), a comma list of them, or ``otlp_proto_http`` / ``otlp_proto_grpc``. Unknown names log a warning and
    are skipped; if nothing valid is left, the default applies."""
    environ = os.environ if environ is None else environ
    var = _SIGNAL_VARS[signal][0]
    raw = environ.get(var)
    if raw is None or not raw.strip():
        return ("otlp",)
    names: list[str] = []
    unknown: list[str] = []
    for part in raw.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in EXPORTERS and name not in _PROTOCOL_ALIASES:
            unknown.append(name)
            continue
        if name not in names:
            names.append(name)
    if "none" in names and len(names) > 1:
        logger.warning("ignoring 'none' in %s=%r: other exporters are listed too", var, raw)
        names.remove("none")
    chosen: tuple[str, ...] = tuple(names) if names else ("otlp",)
    if unknown:
        logger.warning(
            "ignoring %s in %s=%r: tenantwatch knows %s; exporting %s with: %s",
            ", ".join(repr(n) for n in unknown),
            var,
            raw,
            ", ".join(EXPORTERS),
            signal,
            ", ".join(chosen),
        )
    return () if chosen == ("none",) else chosen


def alias_protocol(name: str) -> str | None:
    """``grpc`` / ``http/protobuf`` for the SDK's ``otlp_proto_*`` names, None for ``otlp``."""
    return _PROTOCOL_ALIASES.get(name)


def export_timeout(signal: str, environ: Mapping[str, str] | None = None) -> float | None:
    """The OTLP exporter timeout (seconds) tenantwatch passes, or None when the environment sets one (the
    exporters then read it themselves, as the SDK documents)."""
    environ = os.environ if environ is None else environ
    if (environ.get(_SIGNAL_VARS[signal][1]) or "").strip() or (environ.get(OTEL_EXPORTER_OTLP_TIMEOUT) or "").strip():
        return None
    return DEFAULT_EXPORT_TIMEOUT_SECONDS


def signal_endpoint(endpoint: str | None, protocol: str, signal: str) -> str | None:
    """``endpoint`` is a base URL (like ``OTEL_EXPORTER_OTLP_ENDPOINT``); HTTP appends the signal's path."""
    if endpoint is None:
        return None
    if protocol == "grpc":
        return endpoint
    return f"{endpoint.rstrip('/')}/{_HTTP_PATHS[signal]}"


def endpoint_for_humans(endpoint: str | None, protocol: str, signal: str, environ: Mapping[str, str]) -> str:
    """The URL the OTLP exporter of ``signal`` sends to, for the outage warning (a password in it as ``***``)."""
    return safe_url(_endpoint(endpoint, protocol, signal, environ))


def _endpoint(endpoint: str | None, protocol: str, signal: str, environ: Mapping[str, str]) -> str:
    if endpoint is not None:
        return endpoint
    specific = (environ.get(_SIGNAL_VARS[signal][2]) or "").strip()
    if specific:
        return specific
    base = (environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or "").strip()
    if protocol == "grpc":
        return base or "http://localhost:4317"
    return f"{(base or 'http://localhost:4318').rstrip('/')}/{_HTTP_PATHS[signal]}"


def otlp_span_exporter(protocol: str, endpoint: str | None, timeout: float | None = None) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        return GrpcSpanExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(endpoint=endpoint, timeout=timeout)


def otlp_metric_exporter(
    protocol: str, endpoint: str | None, timeout: float | None = None, *, session: Any = None
) -> MetricExporter:
    """The OTLP metric exporter for ``protocol``; ``session`` (a ``requests.Session``, OTLP/HTTP only) lets a caller
    see the HTTP answers (``audit --export`` checks that a 200 came from an OTLP receiver)."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        return GrpcMetricExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    if session is not None:
        return HttpMetricExporter(endpoint=endpoint, timeout=timeout, session=session)
    return HttpMetricExporter(endpoint=endpoint, timeout=timeout)


def otlp_log_exporter(protocol: str, endpoint: str | None, timeout: float | None = None) -> LogRecordExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter(endpoint=endpoint, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(endpoint=endpoint, timeout=timeout)


class Pipelines:
    """Builds the exporters of one ``configure()`` call; they share drop counting and the outage warning."""

    def __init__(
        self,
        protocols: Mapping[str, str],
        endpoint: str | None,
        *,
        drops: Drops,
        outage: Outage,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.protocols = protocols
        self.endpoint = endpoint
        self.drops = drops
        self.outage = outage
        self.environ = os.environ if environ is None else environ
        self.span_processors: list[BoundedSpanProcessor] = []
        self.log_processors: list[BoundedLogRecordProcessor] = []
        self.metric_exporters: list[BoundedMetricExporter] = []

    def _otlp(self, signal: str, name: str) -> tuple[str, str | None, float | None, str]:
        protocol = alias_protocol(name) or self.protocols[signal]
        url = signal_endpoint(self.endpoint, protocol, signal)
        shown = endpoint_for_humans(url, protocol, signal, self.environ)
        return protocol, url, export_timeout(signal, self.environ), shown

    def spans(self, exporter: SpanExporter | None = None, *, name: str = "") -> list[SpanProcessor]:
        """Bounded processors for ``exporter`` (given), else for ``OTEL_TRACES_EXPORTER``."""
        built: list[tuple[SpanExporter, str]] = []
        if exporter is not None:
            built.append((exporter, name or type(exporter).__name__))
        else:
            for entry in exporter_names("traces", self.environ):
                if entry == "console":
                    built.append((ConsoleSpanExporter(), "console"))
                else:
                    protocol, url, timeout, shown = self._otlp("traces", entry)
                    built.append((otlp_span_exporter(protocol, url, timeout), shown))
        for span_exporter, shown in built:
            self.span_processors.append(
                BoundedSpanProcessor(span_exporter, endpoint=shown, drops=self.drops, outage=self.outage)
            )
        return list(self.span_processors)

    def logs(self, exporter: LogRecordExporter | None = None) -> list[LogRecordProcessor]:
        """Bounded processors for ``exporter`` (given), else for ``OTEL_LOGS_EXPORTER``."""
        built: list[tuple[LogRecordExporter, str]] = []
        if exporter is not None:
            built.append((exporter, type(exporter).__name__))
        else:
            for entry in exporter_names("logs", self.environ):
                if entry == "console":
                    built.append((ConsoleLogRecordExporter(), "console"))
                else:
                    protocol, url, timeout, shown = self._otlp("logs", entry)
                    built.append((otlp_log_exporter(protocol, url, timeout), shown))
        for log_exporter, shown in built:
            self.log_processors.append(
                BoundedLogRecordProcessor(log_exporter, endpoint=shown, drops=self.drops, outage=self.outage)
            )
        return list(self.log_processors)

    def metrics(self) -> list[MetricReader]:
        """Periodic readers for ``OTEL_METRICS_EXPORTER``, each through a :class:`BoundedMetricExporter`."""
        readers: list[MetricReader] = []
        for entry in exporter_names("metrics", self.environ):
            if entry == "console":
                inner: MetricExporter = ConsoleMetricExporter()
                shown = "console"
            else:
                protocol, url, timeout, shown = self._otlp("metrics", entry)
                inner = otlp_metric_exporter(protocol, url, timeout)
            bounded = BoundedMetricExporter(inner, circuit=Circuit("metrics", shown, self.outage), drops=self.drops)
            self.metric_exporters.append(bounded)
            readers.append(PeriodicExportingMetricReader(bounded))
        return readers
