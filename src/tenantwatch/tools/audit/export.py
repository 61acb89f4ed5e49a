"""``audit --export``: the RLS coverage gauges sent once over OTLP, with the standard ``OTEL_EXPORTER_OTLP_*``
variables (endpoint, headers, protocol, timeout), and a clear failure when nothing was delivered.

The gauges are recorded by :class:`tenantwatch.core.rls_metrics.RlsCoverageGauges` (what the instrumentation records
on first connect), collected by an in-memory reader and handed to the OTLP exporter in one call, so its result is
known: a collector that is down is an error, not a silent success. ``OTEL_SERVICE_NAME`` names the service
(default ``tenantwatch-audit``); ``OTEL_RESOURCE_ATTRIBUTES`` are added as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_SERVICE_NAME,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExporter, MetricExportResult
from opentelemetry.sdk.resources import Resource

from tenantwatch.core.rls_metrics import RlsCoverageGauges
from tenantwatch.export._delivery import quiet_exporter_logs
from tenantwatch.export._exporters import endpoint_for_humans, export_timeout, otlp_metric_exporter
from tenantwatch.redaction import hide_url_secrets
from tenantwatch.sql.rls_coverage import RlsCoverage

__all__ = ["DEFAULT_SERVICE_NAME", "ExportFailedError", "export_coverage"]

DEFAULT_SERVICE_NAME: Final = "tenantwatch-audit"
_PROTOCOLS: Final = ("grpc", "http/protobuf")


class ExportFailedError(Exception):
    """The gauges were not delivered (message says where to and why)."""


def _protocol(environ: Mapping[str, str]) -> str:
    for var in (OTEL_EXPORTER_OTLP_METRICS_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL):
        raw = (environ.get(var) or "").strip().lower()
        if raw:
            if raw not in _PROTOCOLS:
                raise ExportFailedError(f"{var}={raw!r}: expected one of {', '.join(_PROTOCOLS)}")
            return raw
    return "http/protobuf"


def export_coverage(
    coverage: RlsCoverage,
    *,
    environ: Mapping[str, str] | None = None,
    exporter: MetricExporter | None = None,
) -> str:
    """Send the coverage gauges of ``coverage`` once; returns where they went. ``exporter`` replaces the OTLP
    exporter (tests). Raises :class:`ExportFailedError`."""
    environ = os.environ if environ is None else environ
    protocol = _protocol(environ)
    target = endpoint_for_humans(None, protocol, "metrics", environ)
    if coverage.ratio is None:
        raise ExportFailedError("no tenant table: there is no coverage to export")
    attributes = {} if (environ.get(OTEL_SERVICE_NAME) or "").strip() else {"service.name": DEFAULT_SERVICE_NAME}
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create(attributes), metric_readers=[reader], shutdown_on_exit=False)
    try:
        RlsCoverageGauges(provider).record(coverage)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    if data is None:  # pragma: no cover - the gauges were just recorded
        raise ExportFailedError("nothing was recorded")
    try:
        answers: list[str] = []
        if exporter is None:
            session = _watching_session(answers) if protocol != "grpc" else None
            exporter = otlp_metric_exporter(protocol, None, export_timeout("metrics", environ), session=session)
        with quiet_exporter_logs() as held_back:  # the exporter's own log line becomes the reason below
            result = exporter.export(data)
            reason = held_back()
    except Exception as exc:
        raise ExportFailedError(f"exporting to {target} failed: {hide_url_secrets(str(exc))}") from exc
    finally:
        if exporter is not None:
            exporter.shutdown()
    if result is not MetricExportResult.SUCCESS:
        raise ExportFailedError(_failure(target, reason))
    for content_type in answers:  # a 200 from something that is not an OTLP receiver (a web UI) received nothing
        if content_type.split(";")[0].strip().lower() in _NOT_OTLP:
            raise ExportFailedError(
                f"{target} answered HTTP 200 with {content_type.split(';')[0]}, not an OTLP response: is that the "
                "collector's OTLP/HTTP port (4318)? Nothing was received"
            )
    return target


_NOT_OTLP: Final = frozenset({"text/html", "text/plain", "text/xml", "application/xhtml+xml"})


def _watching_session(answers: list[str]) -> Any:
    """A ``requests.Session`` that appends the Content-Type of every HTTP answer to ``answers``."""
    import requests

    session = requests.Session()

    def remember(response: Any, *args: Any, **kwargs: Any) -> Any:
        answers.append(str(response.headers.get("Content-Type", "")))
        return response

    session.hooks["response"].append(remember)
    return session


def _failure(target: str, reason: str | None) -> str:
    """Why nothing was delivered, by what happened: the collector answered (and refused), or could not be reached."""
    answered = re.fullmatch(r"HTTP (\d{3})", reason or "")
    if answered is None:
        return f"exporting to {target} failed ({reason + ': ' if reason else ''}is the collector running?)"
    path = urlsplit(target).path or "/"
    if answered.group(1) == "404":
        return f"the collector at {target} answered HTTP 404 for {path} (no metrics pipeline on that path?)"
    return f"the collector at {target} answered HTTP {answered.group(1)} for {path}: the export was refused"
