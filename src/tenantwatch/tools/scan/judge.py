"""Judging stored spans with the live processor's own code.

:class:`Judge` feeds rebuilt spans to a :class:`~tenantwatch.processors.processor.TenantwatchSpanProcessor` (the
one ``configure()`` installs live) and collects what it finds through
:meth:`~tenantwatch.processors.processor.TenantwatchSpanProcessor.add_finding_listener` into
:class:`~tenantwatch.tools.groups.FindingGroups`. What makes it the same judgement as live:

* the processor's clock is the end time of the span being judged, so the windowed rules (``rapid_write``,
  ``repeated_violations``, ``brute_force``, ...) count over the time the statements really ran, not the scan's;
* spans are replayed in time order: a server span is started (``on_start``) at its start time, so its db spans see
  the request's tenant and route as they did live, and every span ends at its end time. Files and Jaeger pages are
  almost in that order already (spans are exported as they end); a bounded reorder buffer of ``reorder`` spans puts
  them back in order. Spans further out of order than that are judged late (a windowed rule may then count them
  in another window), never lost;
* the processor's metrics and log records go to no-op providers (a scan exports nothing), and it forwards to a
  processor that drops the spans.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from typing import TYPE_CHECKING, Final, cast

from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind

from tenantwatch.config import Settings
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.processor import TenantwatchSpanProcessor
from tenantwatch.tools.groups import FindingGroups

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span

__all__ = ["DEFAULT_REORDER", "Judge"]

logger = logging.getLogger(__name__)

DEFAULT_REORDER: Final = 4096
"""Spans held to restore time order (the memory bound of judging, beside the rules' own bounded windows)."""

_START, _END = 0, 1


class _Drop(SpanProcessor):
    """Where the judged spans go: nowhere (the findings are collected by the listener)."""


class Judge:
    """Judges spans fed in (roughly) time order; :attr:`groups` holds the findings."""

    def __init__(self, settings: Settings, *, reorder: int = DEFAULT_REORDER) -> None:
        self.groups = FindingGroups()
        self.failed = 0
        """Spans the processor could not judge (an internal error; logged)."""
        self._now = 0.0
        self._processor = TenantwatchSpanProcessor(
            _Drop(),
            settings=settings,
            meter_provider=NoOpMeterProvider(),
            logger_provider=NoOpLoggerProvider(),
            clock=lambda: self._now,
        )
        self._processor.add_finding_listener(self._found)
        self._reorder = max(1, reorder)
        self._heap: list[tuple[int, int, int, ReadableSpan]] = []
        self._sequence = itertools.count()

    def _found(self, finding: Finding, facts: SpanFacts, span: ReadableSpan) -> None:
        context = span.context
        service = span.resource.attributes.get("service.name") if span.resource is not None else None
        self.groups.add(
            finding,
            facts,
            time_ns=span.end_time,
            trace_id=f"{context.trace_id:032x}" if context is not None else None,
            service=None if service is None else str(service),
        )

    def feed(self, span: ReadableSpan) -> None:
        """Queue one span; judges the oldest queued ones once more than ``reorder`` are waiting."""
        self.groups.spans += 1
        sequence = next(self._sequence)
        if span.kind is SpanKind.SERVER and span.start_time is not None:
            heapq.heappush(self._heap, (span.start_time, sequence, _START, span))
        heapq.heappush(self._heap, (span.end_time or 0, sequence, _END, span))
        while len(self._heap) > self._reorder:
            self._dispatch(*heapq.heappop(self._heap))

    def finish(self) -> FindingGroups:
        """Judge everything still queued; returns the groups."""
        while self._heap:
            self._dispatch(*heapq.heappop(self._heap))
        return self.groups

    def _dispatch(self, time_ns: int, _sequence: int, what: int, span: ReadableSpan) -> None:
        self._now = time_ns / 1e9
        try:
            if what == _START:
                # on_start only reads kind, context and attributes, which a finished span has as well
                self._processor.on_start(cast("Span", span))
            else:
                self._processor.process(span)
        except Exception:  # one span the processor cannot judge must not end the scan; it is counted and reported
            self.failed += 1
            logger.debug("tenantwatch scan: span %s could not be judged", span.name, exc_info=True)
