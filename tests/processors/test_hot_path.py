"""The processor's hot path stays cheap without changing what it exports: per-statement metrics recorded straight
into the SDK's aggregations (same data points as the public API, no SDK ``Histogram.record`` / ``Counter.add`` per
statement once a label set is known), and no copy of a db span's facts to add the request's tenant."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from processor_support import CLEAN, UNFILTERED, Pipeline

from tenantwatch import attributes as A
from tenantwatch.core.direct_metrics import DirectRecorder
from tenantwatch.processors.metrics import DURATION_BUCKETS, ProcessorMetrics

_DURATIONS_MS = (0.4, 2.0, 7.5, 7.5, 30.0, 120.0, 800.0, 3.0, 0.9, 15_000.0)


def _collect(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """One collection: per metric name, its data points by (sorted) attributes."""
    data = reader.get_metrics_data()
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    points[tuple(sorted((point.attributes or {}).items()))] = point
    return found


def _points(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    return _collect(reader)[name]


def _summary(point: Any) -> tuple[Any, ...]:
    if hasattr(point, "bucket_counts"):
        return (point.count, round(point.sum, 9), tuple(point.bucket_counts), point.min, point.max)
    return (point.value,)


@pytest.fixture
def counted_sdk_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """How often the SDK's public ``Histogram.record`` / ``Counter.add`` ran."""
    calls = {"record": 0, "add": 0}
    record, add = Histogram.record, Counter.add

    def counting_record(self: Histogram, *args: Any, **kwargs: Any) -> None:
        calls["record"] += 1
        record(self, *args, **kwargs)

    def counting_add(self: Counter, *args: Any, **kwargs: Any) -> None:
        calls["add"] += 1
        add(self, *args, **kwargs)

    monkeypatch.setattr(Histogram, "record", counting_record)
    monkeypatch.setattr(Counter, "add", counting_add)
    yield calls


def test_repeated_label_sets_skip_the_sdk_record_path(counted_sdk_calls: dict[str, int], pipeline: Pipeline) -> None:
    """Two histogram records per db span went through the SDK's public path every time (10-15 µs each); now only
    the first span of a label set does."""
    for duration in _DURATIONS_MS:
        pipeline.db_span(CLEAN, duration_ms=duration)
        pipeline.db_span(UNFILTERED, duration_ms=duration)
    # CLEAN and UNFILTERED share their labels: one label set, so 2 public histogram records in all, and one public
    # counter add per label set of tenantwatch.findings (missing_tenant_filter, then repeated_violations)
    findings = pipeline.points(A.METRIC_FINDINGS)
    assert counted_sdk_calls == {"record": 2, "add": len(findings)}
    ((_, point),) = pipeline.points(A.METRIC_OPERATION_DURATION)
    assert point.count == 2 * len(_DURATIONS_MS)
    missing = [p.value for labels, p in findings if labels[A.RULE] == "missing_tenant_filter"]
    assert missing == [len(_DURATIONS_MS)]


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_direct_and_public_paths_export_the_same_points(temporality: AggregationTemporality) -> None:
    """Bucket counts, count, sum, min and max (and counter values) equal what the public API exports, over several
    collections, for each temporality."""

    def reader() -> InMemoryMetricReader:
        return InMemoryMetricReader(
            preferred_temporality={Histogram: temporality, Counter: temporality},
        )

    direct_reader, public_reader = reader(), reader()
    direct = ProcessorMetrics(MeterProvider(metric_readers=[direct_reader]), tenant_label_cap=10)
    public = ProcessorMetrics(MeterProvider(metric_readers=[public_reader]), tenant_label_cap=10)
    for recorder in (public._duration_recorder, public._rows_recorder, public._findings_recorder):
        assert recorder.direct
        recorder._enabled = False  # every record of ``public`` through the SDK's Histogram.record / Counter.add

    variants = [CLEAN, replace(CLEAN, tenant_id="globex", main_table="plans"), replace(CLEAN, returned_rows=5000)]
    for collection in range(3):
        for index, duration in enumerate(_DURATIONS_MS):
            facts = replace(variants[(index + collection) % len(variants)], duration_ms=duration)
            for metrics in (direct, public):
                bucket = metrics.tenant_bucket(facts.tenant_id)
                metrics.record_statement(facts, bucket, facts.duration_ms)
        expected_data, direct_data = _collect(public_reader), _collect(direct_reader)  # one collection each
        for name in (A.METRIC_OPERATION_DURATION, A.METRIC_RETURNED_ROWS):
            expected = {k: _summary(p) for k, p in expected_data[name].items()}
            assert {k: _summary(p) for k, p in direct_data[name].items()} == expected
            assert len(expected) == 2  # the third variant differs in its row count only


def test_bucket_boundaries_and_min_max_are_the_advised_ones(pipeline: Pipeline) -> None:
    for duration in _DURATIONS_MS:
        pipeline.db_span(CLEAN, duration_ms=duration)
    (_, point), *_ = pipeline.points(A.METRIC_OPERATION_DURATION)
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS
    assert point.min == pytest.approx(min(_DURATIONS_MS) / 1000)
    assert point.max == pytest.approx(max(_DURATIONS_MS) / 1000)
    assert point.sum == pytest.approx(sum(_DURATIONS_MS) / 1000)
    # 0.4, 0.9 ms | 2.0, 3.0 | 7.5, 7.5 | 30 | 120 | 800 | ... | 15 s
    assert tuple(point.bucket_counts) == (2, 2, 2, 1, 0, 1, 1, 0, 0, 1)


def test_a_view_that_drops_attributes_keeps_the_public_path(counted_sdk_calls: dict[str, int]) -> None:
    """A view the direct path does not model (here: attribute keys) makes every record take the public API, and
    the exported point is still right."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], views=[View(instrument_name=A.METRIC_OPERATION_DURATION, attribute_keys=set())]
    )
    metrics = ProcessorMetrics(provider, tenant_label_cap=10)
    for duration in _DURATIONS_MS:
        metrics.record_statement(CLEAN, "acme", duration)
    points = _points(reader, A.METRIC_OPERATION_DURATION)
    assert list(points) == [()]
    assert next(iter(points.values())).count == len(_DURATIONS_MS)
    # every duration record takes the public path; the row counts (no view) only the first
    assert counted_sdk_calls["record"] == len(_DURATIONS_MS) + 1


def test_a_reader_added_later_sees_later_records() -> None:
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first])
    recorder = DirectRecorder(provider.get_meter("t").create_histogram("h", unit="s"))
    for value in (1.0, 2.0):
        recorder.record(value, {"k": "v"})
    provider.add_metric_reader(second)
    for value in (3.0, 4.0):
        recorder.record(value, {"k": "v"})
    assert [_summary(p)[:2] for p in _points(first, "h").values()] == [(4, 10.0)]
    assert [_summary(p)[:2] for p in _points(second, "h").values()] == [(2, 7.0)]


def test_exemplars_still_point_at_the_sampled_current_span() -> None:
    """Grafana links duration buckets to traces through exemplars: the direct path offers them as the SDK does."""
    reader = InMemoryMetricReader()
    recorder = DirectRecorder(MeterProvider(metric_readers=[reader]).get_meter("t").create_histogram("h", unit="s"))
    tracer = TracerProvider().get_tracer("t")
    recorder.record(0.5, {"k": "v"})  # first: public path
    with tracer.start_as_current_span("request") as span:
        recorder.record(0.002, {"k": "v"})  # direct path
        trace_id = span.get_span_context().trace_id
    (point,) = _points(reader, "h").values()
    assert point.count == 2
    assert [e.trace_id for e in point.exemplars if e.value == 0.002] == [trace_id]
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_db_spans_of_a_request_are_judged_against_its_tenant_without_copying_facts(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request's tenant reaches the rules (stale_tenant_context fires for a db span of another tenant), and a
    clean db span of a request costs no ``dataclasses.replace`` of its facts (≈8 µs each, on every statement)."""
    import tenantwatch.processors.processor as processor_module

    copies: list[str] = []
    real_replace = processor_module.replace

    def counting_replace(obj: Any, /, **changes: Any) -> Any:
        copies.extend(changes)
        return real_replace(obj, **changes)

    monkeypatch.setattr(processor_module, "replace", counting_replace)
    with pipeline.tracer.start_as_current_span(
        "GET /objectives", kind=SpanKind.SERVER, attributes={A.TENANT_ID: "acme"}
    ):
        pipeline.db_span(CLEAN, name="clean")
        pipeline.db_span(replace(CLEAN, tenant_id="globex"), name="stale")
    assert "request_tenant" not in copies
    spans = {span.name: span for span in pipeline.spans()}
    assert A.FINDINGS not in (spans["clean"].attributes or {})
    assert "stale_tenant_context" in (spans["stale"].attributes or {})[A.FINDINGS]


def test_values_the_sdk_rejects_are_still_rejected() -> None:
    reader = InMemoryMetricReader()
    recorder = DirectRecorder(MeterProvider(metric_readers=[reader]).get_meter("t").create_histogram("h", unit="s"))
    for value in (1.0, 2.0, -1.0, float("inf"), float("nan")):
        recorder.record(value, {"k": "v"})
    (point,) = _points(reader, "h").values()
    assert _summary(point)[:2] == (2, 3.0)


def _exemplars(reader: InMemoryMetricReader) -> list[tuple[Any, ...]]:
    """Every exemplar of histogram ``h`` and counter ``c``: value, trace and span id, filtered attributes (the
    timestamp differs between two providers)."""
    found = []
    for name, points in sorted(_collect(reader).items()):
        for labels, point in sorted(points.items()):
            for e in point.exemplars:
                found.append((name, labels, e.value, e.trace_id, e.span_id, dict(e.filtered_attributes or {})))
    return found


@pytest.mark.parametrize("exemplar_filter", ["always_on", "always_off", "trace_based"])
def test_direct_path_offers_the_exemplars_the_public_path_offers(exemplar_filter: str) -> None:
    """Exemplars (under each filter; sampled, unsampled and no current span) are the same data on both paths."""
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, AlwaysOnExemplarFilter, TraceBasedExemplarFilter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    filters = {
        "always_on": AlwaysOnExemplarFilter,
        "always_off": AlwaysOffExemplarFilter,
        "trace_based": TraceBasedExemplarFilter,
    }
    readers = []
    for direct in (True, False):
        random.seed(13)  # same trace ids, and the same picks of the counter's random reservoir, on both paths
        reader = InMemoryMetricReader()
        meter = MeterProvider(metric_readers=[reader], exemplar_filter=filters[exemplar_filter]()).get_meter("t")
        histogram = DirectRecorder(meter.create_histogram("h", unit="s"))
        counter = DirectRecorder(meter.create_counter("c"))
        if not direct:
            histogram._enabled = counter._enabled = False
        readers.append(reader)
        record_h, add_c = histogram.bind({"k": "v"}), counter.bind({"k": "v"})
        sampled = TracerProvider().get_tracer("t")
        unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer("t")
        for tracer in (None, sampled, unsampled, sampled):
            for value in (0.002, 0.3, 7.0, 0.3):
                if tracer is None:
                    record_h(value)
                    add_c(1)
                    continue
                with tracer.start_as_current_span("request"):
                    record_h(value)
                    add_c(1)
    direct_exemplars, public_exemplars = (_exemplars(reader) for reader in readers)
    assert direct_exemplars == public_exemplars
    assert bool(direct_exemplars) is (exemplar_filter != "always_off")


@pytest.mark.parametrize("exemplar_filter", ["always_off", "trace_based"])
def test_no_exemplar_work_when_the_filter_cannot_sample(exemplar_filter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A db span ends with no current span (the trace-based default then samples nothing) or exemplars are off:
    the filter is not asked per record, and no exemplar appears."""
    from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, TraceBasedExemplarFilter

    filter_class = AlwaysOffExemplarFilter if exemplar_filter == "always_off" else TraceBasedExemplarFilter
    asked: list[float] = []
    should_sample = filter_class.should_sample

    def counting(self: Any, value: float, *args: Any) -> bool:
        asked.append(value)
        return should_sample(self, value, *args)

    monkeypatch.setattr(filter_class, "should_sample", counting)
    reader = InMemoryMetricReader()
    metrics = ProcessorMetrics(
        MeterProvider(metric_readers=[reader], exemplar_filter=filter_class()), tenant_label_cap=10
    )
    for duration in _DURATIONS_MS:
        metrics.record_statement(CLEAN, "acme", duration)
    assert asked == [0.0004, 3]  # the first span's two records (public path); none after
    (point,) = _points(reader, A.METRIC_OPERATION_DURATION).values()
    assert point.count == len(_DURATIONS_MS)
    assert not point.exemplars
