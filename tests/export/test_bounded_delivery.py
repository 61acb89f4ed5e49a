"""configure()'s export pipelines when the exporter fails or hangs: flush and shutdown keep their timeout and
say False, one warning names the endpoint, and every item not delivered is counted on tenantwatch.export.dropped."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantwatch import attributes as A
from tenantwatch._configure import TenantwatchHandle, configure
from tenantwatch.export._delivery import Circuit, Outage


class FailingExporter(SpanExporter):
    """An exporter whose collector is down: every export fails (and says why, as the OTLP exporters do)."""

    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        logging.getLogger("opentelemetry.exporter.otlp.common.http").warning(
            "Transient error Connection refused encountered while exporting spans batch, retrying in 1.00s."
        )
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


class HangingExporter(SpanExporter):
    """A black-holed collector: export blocks until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(30)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.release.set()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def _handle(exporter: SpanExporter, reader: InMemoryMetricReader) -> TenantwatchHandle:
    return configure(
        set_global=False,
        instrument_sqlalchemy=False,
        span_exporter=exporter,
        metric_reader=reader,
        log_exporter=InMemoryLogRecordExporter(),
    )


@pytest.fixture
def stopped() -> Iterator[list[TenantwatchHandle]]:
    handles: list[TenantwatchHandle] = []
    yield handles
    for handle in handles:
        handle.shutdown(500)


def _spans(handle: TenantwatchHandle, count: int) -> None:
    tracer = handle.tracer_provider.get_tracer("app")
    for index in range(count):
        with tracer.start_as_current_span(f"work {index}"):
            pass


def _dropped(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    data = reader.get_metrics_data()
    found: dict[tuple[str, str], int] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == A.METRIC_EXPORT_DROPPED:
                    for point in metric.data.data_points:
                        attributes: Any = point.attributes
                        found[(attributes[A.EXPORT_SIGNAL], attributes[A.ERROR_TYPE])] = int(point.value)  # type: ignore[attr-defined]
    return found


def test_flush_says_false_when_the_export_failed_and_counts_the_drops(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle]
) -> None:
    handle = _handle(FailingExporter(), reader)
    stopped.append(handle)
    _spans(handle, 3)
    assert handle.force_flush(2000) is False
    assert _dropped(reader) == {("traces", "export_failed"): 3}
    assert handle.drops.totals() == {"traces": 3}


def test_a_healthy_exporter_flushes_true_and_drops_nothing(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle]
) -> None:
    exporter = InMemorySpanExporter()
    handle = _handle(exporter, reader)
    stopped.append(handle)
    _spans(handle, 3)
    assert handle.force_flush(2000) is True
    assert len(exporter.get_finished_spans()) == 3
    assert _dropped(reader) == {}
    assert handle.shutdown(2000) is True


def test_after_a_failure_batches_are_dropped_at_once_with_one_warning(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = FailingExporter()
    handle = _handle(exporter, reader)
    stopped.append(handle)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            _spans(handle, 2)
            assert handle.force_flush(2000) is False
    assert exporter.calls == 1  # the endpoint is down: no new attempt for the next batches
    assert _dropped(reader) == {("traces", "export_failed"): 2, ("traces", "unreachable"): 4}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "FailingExporter" in warnings[0].getMessage()
    assert "connection refused" in warnings[0].getMessage()  # why, taken from the exporter's held-back message
    assert "Transient error" not in caplog.text  # the exporter's own retry lines never reach the app's logs


def test_flush_and_shutdown_keep_their_timeout_when_the_export_hangs(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = HangingExporter()
    handle = _handle(exporter, reader)
    _spans(handle, 600)  # a full batch (512) goes out at once and hangs; the rest waits behind it
    assert exporter.entered.wait(5)
    started = time.monotonic()
    assert handle.force_flush(300) is False
    assert time.monotonic() - started < 1.0
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert handle.shutdown(600) is False
    assert time.monotonic() - started < 1.5
    assert _dropped(reader).get(("traces", "shutdown")) == 600
    assert "no answer within" in caplog.text  # the silent hang is reported once at shutdown


def test_the_circuit_probes_again_after_its_cooldown_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    outage = Outage()
    circuit = Circuit("traces", "http://collector:4318/v1/traces", outage, cooldown=5.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO):
        circuit.failure("connection refused")
        assert not circuit.allow()
        assert outage.is_down("http://collector:4318/v1/logs")  # the same host, for the other signals' flushes
        now[0] += 5.0
        assert circuit.allow()  # a probe is due
        assert not circuit.allow(probe=False)  # but a flush does not wait for it
        circuit.failure("connection refused")
        now[0] += 5.0
        assert not circuit.allow()  # the cooldown doubled
        now[0] += 5.0
        assert circuit.allow()
        circuit.success()
    assert not outage.is_down("http://collector:4318/v1/logs")
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot deliver" in m for m in messages) == 1
    assert any("delivered to http://collector:4318/v1/traces again" in m for m in messages)


def test_a_lone_span_goes_out_after_the_schedule_delay_without_a_flush(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # the SDK's variable, honoured
    exporter = InMemorySpanExporter()
    handle = _handle(exporter, reader)
    stopped.append(handle)
    time.sleep(0.3)  # the worker is idle, waiting with no deadline
    _spans(handle, 1)
    deadline = time.monotonic() + 3
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(exporter.get_finished_spans()) == 1


def test_a_full_queue_drops_and_counts(
    reader: InMemoryMetricReader, stopped: list[TenantwatchHandle], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "5")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "5")
    exporter = HangingExporter()
    handle = _handle(exporter, reader)
    stopped.append(handle)
    _spans(handle, 5)  # one batch, in flight and hanging
    assert exporter.entered.wait(5)
    _spans(handle, 8)  # five fit in the queue behind it
    assert _dropped(reader) == {("traces", "queue_full"): 3}
