"""Batching processors for spans and log records whose flush and shutdown keep their timeout.

The SDK's ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` (1.45) export on the caller's thread in
``force_flush``, ignore its timeout and return True whatever the exporter answered; with the collector down, 2,000
spans took 33-50 s to "flush". Here one worker thread does every export; ``force_flush`` and ``shutdown`` only wait
for it, at most their timeout, and report whether everything was delivered. While the endpoint is down
(:class:`~tenantwatch.export._delivery.Circuit`), batches are dropped at once instead of each waiting for the
exporter's retries; every item not delivered is counted on ``tenantwatch.export.dropped``.
"""

from __future__ import annotations

import collections
import copy
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tenantwatch.core.guard import guard
from tenantwatch.export._delivery import Circuit, Drops, Outage, bounded_call, quiet_exporter_logs

__all__ = ["BoundedBatcher", "BoundedLogRecordProcessor", "BoundedSpanProcessor"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_QUEUE_SIZE: Final = 2048
MAX_EXPORT_BATCH_SIZE: Final = 512
SCHEDULE_DELAY_MILLIS: Final = 5000
"""The SDK's defaults; ``OTEL_BSP_*`` (spans) and ``OTEL_BLRP_*`` (log records) override them, as in the SDK."""
DEFAULT_TIMEOUT_MILLIS: Final = 2_000


def _env_number(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(float(raw))
    except ValueError:
        value = 0
    if value <= 0:
        logger.warning("ignoring %s=%r: expected a positive number; using %d", name, raw, default)
        return default
    return value


def _batching(prefix: str) -> dict[str, Any]:
    """Queue size, batch size and schedule delay from ``OTEL_BSP_*`` / ``OTEL_BLRP_*``."""
    queue = _env_number(f"{prefix}_MAX_QUEUE_SIZE", MAX_QUEUE_SIZE)
    batch = min(_env_number(f"{prefix}_MAX_EXPORT_BATCH_SIZE", MAX_EXPORT_BATCH_SIZE), queue)
    delay = _env_number(f"{prefix}_SCHEDULE_DELAY", SCHEDULE_DELAY_MILLIS) / 1000
    return {"max_queue_size": queue, "max_export_batch_size": batch, "schedule_delay": delay}


class BoundedBatcher(Generic[T]):
    """A queue, one worker thread, and flush/shutdown that wait at most their timeout.

    ``export(batch)`` returns True when the batch was delivered. Counts: ``accepted`` items entered the queue,
    ``settled`` left it (delivered or dropped); ``force_flush`` waits until everything accepted before the call has
    settled, and is True only if nothing was dropped since the previous flush.
    """

    def __init__(
        self,
        signal: str,
        export: Callable[[Sequence[T]], bool],
        shutdown_exporter: Callable[[], object],
        *,
        drops: Drops,
        circuit: Circuit,
        max_queue_size: int = MAX_QUEUE_SIZE,
        max_export_batch_size: int = MAX_EXPORT_BATCH_SIZE,
        schedule_delay: float = SCHEDULE_DELAY_MILLIS / 1000,
    ) -> None:
        self.signal = signal
        self._export = export
        self._shutdown_exporter = shutdown_exporter
        self._drops = drops
        self._circuit = circuit
        self._max_queue = max_queue_size
        self._max_batch = max_export_batch_size
        self._delay = schedule_delay
        self._cond = threading.Condition()
        self._queue: collections.deque[T] = collections.deque()
        self._oldest = 0.0
        """When the oldest queued item arrived (monotonic): it is exported at the latest ``schedule_delay`` later."""
        self._accepted = 0
        self._settled = 0
        self._dropped = 0
        self._dropped_at_flush = 0
        self._flush_target = 0
        self._in_flight = 0
        self._stopping = False
        self._stopped = False
        self._abandoned = False
        self.delivered = True
        """After :meth:`shutdown`: whether everything since the previous flush was delivered."""
        self._worker = threading.Thread(target=self._run, name=f"tenantwatch-export-{signal}", daemon=True)
        self._worker.start()

    # --- producer side ---------------------------------------------------------------------------------------

    def emit(self, item: T) -> None:
        with self._cond:
            if self._stopping:
                self._drop_locked("shutdown", 1)
                return
            if len(self._queue) >= self._max_queue:
                self._drop_locked("queue_full", 1)
                return
            self._queue.append(item)
            self._accepted += 1
            if len(self._queue) == 1:
                self._oldest = time.monotonic()
                self._cond.notify_all()  # the worker may be waiting with no deadline
            elif len(self._queue) >= self._max_batch:
                self._cond.notify_all()

    def _drop_locked(self, reason: str, count: int) -> None:
        self._dropped += count
        self._drops.add(self.signal, reason, count)

    # --- worker ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with guard(f"the {self.signal} export worker", outcome="it stopped", logger=logger, level=logging.ERROR):
                self._loop()
        finally:
            otel_context.detach(token)

    def _due(self) -> bool:
        return bool(
            self._stopping
            or len(self._queue) >= self._max_batch
            or self._settled < self._flush_target
            or (self._queue and time.monotonic() >= self._oldest + self._delay)
        )

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    timeout = max(self._oldest + self._delay - time.monotonic(), 0.005) if self._queue else None
                    self._cond.wait(timeout)
                if not self._queue:
                    if self._stopping:
                        return
                    continue
                urgent = self._stopping or self._settled < self._flush_target
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                self._in_flight = len(batch)
                self._oldest = time.monotonic()
            delivered, reason = self._deliver(batch, probe=not urgent)
            with self._cond:
                if self._abandoned:
                    return
                self._in_flight = 0
                self._settled += len(batch)
                if not delivered:
                    self._drop_locked(reason, len(batch))
                self._cond.notify_all()

    def _deliver(self, batch: list[T], *, probe: bool) -> tuple[bool, str]:
        circuit = self._circuit
        if not circuit.allow(probe=probe):
            return False, "unreachable"
        with quiet_exporter_logs() as held_back:
            try:
                delivered = bool(self._export(batch))
            except Exception as exc:
                delivered = False
                logger.debug("tenantwatch: %s exporter raised", self.signal, exc_info=True)
                reason = f"{type(exc).__name__}: {exc}"[:120]
            else:
                reason = held_back() or "export failed"
        if delivered:
            circuit.success()
            return True, ""
        circuit.failure(reason)
        return False, "export_failed"

    # --- flush and shutdown --------------------------------------------------------------------------------------

    def force_flush(self, timeout_millis: float = DEFAULT_TIMEOUT_MILLIS) -> bool:
        """Wait (at most ``timeout_millis``) until everything emitted so far is exported; True if it all was
        delivered and nothing was dropped since the previous flush."""
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        with self._cond:
            if self._stopped:
                return False
            target = self._accepted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            while self._settled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            delivered = self._settled >= target and self._dropped == self._dropped_at_flush
            self._dropped_at_flush = self._dropped
            return delivered

    def shutdown(self, timeout_millis: float = DEFAULT_TIMEOUT_MILLIS) -> bool:
        """Export what is queued (at most ``timeout_millis``), then stop; what is left is dropped and counted.
        True if everything since the previous flush was delivered. Idempotent (later calls return False)."""
        deadline = time.monotonic() + max(timeout_millis, 0) / 1000
        with self._cond:
            if self._stopping:
                return False
            self._stopping = True
            self._cond.notify_all()
        self._worker.join(max(deadline - time.monotonic(), 0))
        with self._cond:
            abandoned, stuck = self._worker.is_alive(), 0
            if abandoned:
                self._abandoned = True
                stuck = self._in_flight
                self._drop_locked("shutdown", len(self._queue) + self._in_flight)
                self._queue.clear()
            self._stopped = True
            delivered = self._dropped == self._dropped_at_flush
            self._dropped_at_flush = self._dropped
            self.delivered = delivered
        if abandoned and stuck:
            # An export that did not return within the whole shutdown: the endpoint does not answer. Say so once
            # (and let the other signals skip that host) rather than exit silently.
            self._circuit.failure(f"no answer within {timeout_millis / 1000:.1f}s")
        bounded_call(self._shutdown_exporter, max(deadline - time.monotonic(), 0.05), name=f"{self.signal}-exporter")
        return delivered


class BoundedSpanProcessor(SpanProcessor):
    """A batching span processor over ``exporter`` whose ``force_flush``/``shutdown`` keep their timeout."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        endpoint: str = "",
        drops: Drops | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.exporter = exporter
        self.batcher: BoundedBatcher[ReadableSpan] = BoundedBatcher(
            "traces",
            lambda batch: exporter.export(batch) is SpanExportResult.SUCCESS,
            exporter.shutdown,
            drops=drops or Drops(),
            circuit=Circuit("traces", endpoint or type(exporter).__name__, outage or Outage()),
            **_batching("OTEL_BSP"),
        )

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and span.context.trace_flags.sampled:
            self.batcher.emit(span)

    def force_flush(self, timeout_millis: int = DEFAULT_TIMEOUT_MILLIS) -> bool:
        return self.batcher.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: int = DEFAULT_TIMEOUT_MILLIS) -> None:
        self.batcher.shutdown(timeout_millis)


class BoundedLogRecordProcessor(LogRecordProcessor):
    """A batching log record processor over ``exporter`` whose ``force_flush``/``shutdown`` keep their timeout."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        endpoint: str = "",
        drops: Drops | None = None,
        outage: Outage | None = None,
    ) -> None:
        self.exporter = exporter
        self.batcher: BoundedBatcher[ReadableLogRecord] = BoundedBatcher(
            "logs",
            lambda batch: exporter.export(batch) is LogRecordExportResult.SUCCESS,
            exporter.shutdown,
            drops=drops or Drops(),
            circuit=Circuit("logs", endpoint or type(exporter).__name__, outage or Outage()),
            **_batching("OTEL_BLRP"),
        )

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        # As the SDK's batch processor does: a shallow copy without the (possibly large) context.
        api_record = copy.copy(log_record.log_record)
        api_record.context = otel_context.Context()
        self.batcher.emit(
            ReadableLogRecord(
                log_record=api_record,
                resource=log_record.resource if log_record.resource is not None else Resource.create({}),
                instrumentation_scope=log_record.instrumentation_scope,
                limits=log_record.limits,
            )
        )

    def force_flush(self, timeout_millis: int = DEFAULT_TIMEOUT_MILLIS) -> bool:
        return self.batcher.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: int = DEFAULT_TIMEOUT_MILLIS) -> None:
        self.batcher.shutdown(timeout_millis)
