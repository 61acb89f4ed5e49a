"""The request metrics the ASGI middleware records once per request go straight into the SDK's aggregations after
the first request of a label set, and export the same counts and durations."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tenantwatch import attributes as A
from tenantwatch.core.request_metrics import RequestMetrics


def test_request_counter_and_duration_are_exact_with_one_sdk_call_per_label_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    record, add = Histogram.record, Counter.add

    def counting_record(self: Histogram, *args: Any, **kwargs: Any) -> None:
        calls.append(self.name)
        record(self, *args, **kwargs)

    def counting_add(self: Counter, *args: Any, **kwargs: Any) -> None:
        calls.append(self.name)
        add(self, *args, **kwargs)

    monkeypatch.setattr(Histogram, "record", counting_record)
    monkeypatch.setattr(Counter, "add", counting_add)
    reader = InMemoryMetricReader()
    metrics = RequestMetrics(MeterProvider(metric_readers=[reader]), tenant_cap=10, client_cap=10)
    ok = {A.TENANT_BUCKET: "acme", A.HTTP_ROUTE: "/items", A.HTTP_RESPONSE_STATUS_CODE: 200}
    missing = {**ok, A.HTTP_RESPONSE_STATUS_CODE: 404}
    for seconds, labels in [(0.01, ok)] * 5 + [(0.2, missing)] * 2:
        metrics.duration.record(seconds, labels)
        metrics.requests.add(1, labels)

    assert sorted(calls) == sorted([A.METRIC_HTTP_DURATION, A.METRIC_HTTP_REQUESTS] * 2)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (metric.name, point.attributes[A.HTTP_RESPONSE_STATUS_CODE]): point
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        for point in metric.data.data_points
    }
    assert points[A.METRIC_HTTP_REQUESTS, 200].value == 5
    assert points[A.METRIC_HTTP_REQUESTS, 404].value == 2
    assert points[A.METRIC_HTTP_DURATION, 200].count == 5
    assert points[A.METRIC_HTTP_DURATION, 200].sum == pytest.approx(0.05)
    assert points[A.METRIC_HTTP_DURATION, 404].max == pytest.approx(0.2)
