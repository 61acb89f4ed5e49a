"""A metric exporter wrapper that drops (and counts) metric points while the endpoint is down."""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from tenantwatch.export._delivery import Circuit, Drops, quiet_exporter_logs

__all__ = ["BoundedMetricExporter"]

logger = logging.getLogger(__name__)


def _points(data: MetricsData) -> int:
    return sum(
        len(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    )


class BoundedMetricExporter(MetricExporter):
    """Wraps ``exporter``: while its endpoint is down (a recent export failed) exports are dropped at once; every
    metric point not delivered is counted on ``tenantwatch.export.dropped`` (``signal=metrics``)."""

    def __init__(self, exporter: MetricExporter, *, circuit: Circuit, drops: Drops) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self.exporter = exporter
        self._circuit = circuit
        self._drops = drops
        self._lock = threading.Lock()
        self._failures = 0
        self._failures_at_flush = 0

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        points = _points(metrics_data)
        if not self._circuit.allow():
            self._failed("unreachable", points)
            return MetricExportResult.FAILURE
        with quiet_exporter_logs() as held_back:
            try:
                result = self.exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception as exc:
                logger.debug("tenantwatch: metric exporter raised", exc_info=True)
                result, reason = MetricExportResult.FAILURE, f"{type(exc).__name__}: {exc}"[:120]
            else:
                reason = held_back() or "export failed"
        if result is MetricExportResult.SUCCESS:
            self._circuit.success()
            return result
        self._circuit.failure(reason)
        self._failed("export_failed", points)
        return MetricExportResult.FAILURE

    def _failed(self, reason: str, points: int) -> None:
        with self._lock:
            self._failures += 1
        self._drops.add("metrics", reason, points)

    def delivered_since_flush(self) -> bool:
        """True if no export failed since the previous call."""
        with self._lock:
            ok = self._failures == self._failures_at_flush
            self._failures_at_flush = self._failures
        return ok

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis=timeout_millis))

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
