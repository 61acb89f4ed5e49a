"""The demo's in-process exporter: reads findings back from the spans tenantwatch's processor forwards.

It sits where a real deployment has its OTLP exporter, behind :class:`tenantwatch.processors.TenantwatchSpanProcessor`,
so what it sees is exactly what Jaeger or Sentry would receive: the enriched copy of each db span with its
``tenantwatch.finding`` events. Each scripted step runs in its own trace, so a finding is attributed to its step by
trace id, whichever thread exports it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tenantwatch import attributes as A
from tenantwatch.demo.results import DemoFinding

__all__ = ["FindingCollector"]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class FindingCollector(SpanExporter):
    """Collects the findings carried by exported spans, grouped by the step whose trace they belong to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._steps: dict[int, str] = {}
        self._pending: dict[str, list[DemoFinding]] = {}
        self.spans_seen = 0

    def watch(self, trace_id: int, step: str) -> None:
        """Attribute every finding exported in trace ``trace_id`` to ``step``."""
        with self._lock:
            self._steps[trace_id] = step

    def take(self, step: str) -> list[DemoFinding]:
        """Findings collected so far for ``step`` (each returned once)."""
        with self._lock:
            return self._pending.pop(step, [])

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        found: list[tuple[int, DemoFinding]] = []
        for span in spans:
            attrs = span.attributes or {}
            trace_id = span.context.trace_id if span.context is not None else 0
            for event in span.events:
                if event.name != A.FINDING_EVENT:
                    continue
                data = event.attributes or {}
                query = attrs.get(A.DB_QUERY_TEXT, attrs.get(A.DB_STATEMENT))
                finding = DemoFinding(
                    step="",
                    rule=str(data.get(A.RULE, "")),
                    severity=str(data.get(A.SEVERITY, "")),
                    message=str(data.get(A.MESSAGE, "")),
                    table=_text(data.get(A.FINDING_TABLE)),
                    tenant=_text(attrs.get(A.TENANT_ID)),
                    fingerprint=str(data.get(A.FINGERPRINT, "")),
                    query=_text(query),
                )
                found.append((trace_id, finding))
        with self._lock:
            self.spans_seen += len(spans)
            for trace_id, finding in found:
                step = self._steps.get(trace_id, "")
                self._pending.setdefault(step, []).append(replace(finding, step=step))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
