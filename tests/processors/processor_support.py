"""Shared by the processor tests: a real SDK pipeline around the tenantwatch span processor, with in-memory spans,
metrics and log records, and sample facts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors import TenantwatchSpanProcessor
from tenantwatch.processors._enriched import EnrichedSpan
from tenantwatch.processors.detectors import Detectors


@dataclass
class Pipeline:
    """TracerProvider -> TenantwatchSpanProcessor -> SimpleSpanProcessor -> InMemorySpanExporter, plus metrics/logs."""

    provider: TracerProvider
    tracer: Tracer
    processor: TenantwatchSpanProcessor
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def only_span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, spans
        return spans[0]

    def log_records(self) -> list[ReadableLogRecord]:
        return list(self.logs.get_finished_logs())

    def points(self, metric: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of every data point of ``metric`` collected so far."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        if data is None:
            return found
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for m in scope_metrics.metrics:
                    if m.name == metric:
                        found.extend((dict(p.attributes or {}), p) for p in m.data.data_points)
        return found

    def db_span(
        self,
        facts: SpanFacts | None = None,
        *,
        system: str = "postgresql",
        statement: str | None = "SELECT id FROM objectives WHERE organization_id = :tenant",
        duration_ms: float = 2.0,
        extra: dict[str, Any] | None = None,
        name: str = "SELECT tenantwatch",
    ) -> Span:
        """End a db span carrying ``facts`` the way the instrumentation records them, lasting ``duration_ms``."""
        attributes: dict[str, Any] = {A.DB_SYSTEM: system}
        if statement is not None:
            attributes[A.DB_STATEMENT] = statement
        if facts is not None:
            attributes.update(facts.to_attributes())
        attributes.update(extra or {})
        start = time.time_ns()
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, start_time=start, attributes=attributes)
        span.end(end_time=start + int(duration_ms * 1_000_000))
        assert isinstance(span, Span)
        return span


def findings_of(span: ReadableSpan) -> list[dict[str, Any]]:
    """Attributes of the ``tenantwatch.finding`` events of ``span``."""
    return [dict(e.attributes or {}) for e in span.events if e.name == A.FINDING_EVENT]


def assert_untouched(exported: ReadableSpan, span: ReadableSpan) -> None:
    """``exported`` is the SDK's own snapshot of ``span``: not a tenantwatch copy, nothing added."""
    assert not isinstance(exported, EnrichedSpan), "expected the span itself, got tenantwatch's enriched copy"
    assert exported.context == span.context
    assert dict(exported.attributes or {}) == dict(span.attributes or {})
    assert A.FINDINGS not in (exported.attributes or {})
    assert findings_of(exported) == []


def rules_of(span: ReadableSpan) -> list[str]:
    return [str(f[A.RULE]) for f in findings_of(span)]


CLEAN = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="present",
    tenant_values=("acme",),
    statement_fingerprint="f00dfeed00000001",
    returned_rows=3,
    tenant_id="acme",
    user_id="u-1",
    role="member",
    code_function="list_objectives",
    code_filepath="/srv/app/objectives.py",
    code_lineno=42,
)
"""A correct tenant-filtered SELECT: no rule fires."""

UNFILTERED = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="missing",
    unfiltered=("main:objectives",),
    statement_fingerprint="f00dfeed00000002",
    returned_rows=3,
    tenant_id="acme",
    user_id="u-1",
    role="member",
    code_function="list_all",
    code_filepath="/srv/app/objectives.py",
    code_lineno=57,
)
"""A SELECT without a tenant filter: missing_tenant_filter fires (critical)."""


def build_pipeline(
    settings: Settings | None = None, *, clock: Callable[[], float] | None = None, **overrides: Any
) -> Pipeline:
    """A fresh pipeline; ``settings``, or keyword overrides for :func:`load_settings` (environment ignored);
    ``clock`` drives the windowed detectors and the log cooldown."""
    if settings is None:
        settings = load_settings(environ={}, **overrides)
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    log_exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    processor = TenantwatchSpanProcessor(
        SimpleSpanProcessor(exporter),
        settings=settings,
        meter_provider=MeterProvider(metric_readers=[reader]),
        logger_provider=logger_provider,
        clock=clock,
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return Pipeline(provider, provider.get_tracer("test"), processor, exporter, reader, log_exporter)


NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
"""A weekday noon: inside any off-hours window the tests configure."""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def detectors(clock: Clock, **rules: dict[str, Any]) -> Detectors:
    """The windowed detectors with ``rules`` settings, on ``clock``."""
    return Detectors(load_settings(environ={}, rules=rules), clock)


def fired(found: list[Any]) -> list[str]:
    return [f.rule for f in found]
