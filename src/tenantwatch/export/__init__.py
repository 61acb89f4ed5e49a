"""Where telemetry goes: the exporters :func:`tenantwatch.configure` builds, and an outage that never hangs the app.

Exporters, per signal, from the standard variables (as the SDK reads them): ``OTEL_TRACES_EXPORTER``,
``OTEL_METRICS_EXPORTER``, ``OTEL_LOGS_EXPORTER`` = ``otlp`` (default), ``console`` (JSON on standard output),
``none``, or a comma list (``otlp,console``); ``otlp_proto_http`` / ``otlp_proto_grpc`` pick the protocol too.
Findings alone, one readable line each: ``configure(console=True)`` or ``TENANTWATCH_CONSOLE=1``
(:mod:`tenantwatch.export.console`).

Delivery, when the collector is down or black-holed:

* each OTLP export call (retries included) takes at most 2 s (``OTEL_EXPORTER_OTLP_TIMEOUT`` and the per-signal
  variables are honoured when set, in seconds as the Python exporters read them);
* after a failed export the signal stops sending for 5 s (doubling up to 60 s): batches are dropped at once
  instead of queueing behind retries, and ONE warning names the endpoint;
* ``handle.force_flush(timeout_millis)`` and ``handle.shutdown(timeout_millis)`` return within their timeout and
  return False if something was not delivered; at interpreter exit the shutdown gets 1 s in all;
* every span, log record and metric point not delivered is counted on ``tenantwatch.export.dropped``
  (labels ``signal`` and ``error.type``).
"""

from __future__ import annotations

from tenantwatch.export._batch import BoundedLogRecordProcessor, BoundedSpanProcessor
from tenantwatch.export._delivery import Drops, Outage
from tenantwatch.export._exporters import (
    DEFAULT_EXPORT_TIMEOUT_SECONDS,
    EXPORTERS,
    Pipelines,
    export_timeout,
    exporter_names,
)
from tenantwatch.export._metrics import BoundedMetricExporter
from tenantwatch.export.console import ConsoleFindings, format_finding

__all__ = [
    "DEFAULT_EXPORT_TIMEOUT_SECONDS",
    "EXPORTERS",
    "BoundedLogRecordProcessor",
    "BoundedMetricExporter",
    "BoundedSpanProcessor",
    "ConsoleFindings",
    "Drops",
    "Outage",
    "Pipelines",
    "export_timeout",
    "exporter_names",
    "format_finding",
]
