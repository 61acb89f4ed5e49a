"""The span processor on real SDK spans: what the exporter receives, and that nothing ever raises into the caller."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from processor_support import CLEAN, UNFILTERED, Pipeline, assert_untouched, findings_of, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.core.findings import Finding, finding_fingerprint
from tenantwatch.facts import SpanFacts
from tenantwatch.processors import TenantwatchSpanProcessor
from tenantwatch.processors._enriched import EnrichedSpan
from tenantwatch.rules.slow_query import SlowQuery


class Recorder(SpanProcessor):
    """A downstream processor that records every call it gets."""

    def __init__(self) -> None:
        self.started: list[Span] = []
        self.ended: list[ReadableSpan] = []
        self.flushed: list[int] = []
        self.shut_down = False

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        self.started.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)

    def shutdown(self) -> None:
        self.shut_down = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.flushed.append(timeout_millis)
        return True


def test_clean_db_span_is_forwarded_untouched(pipeline: Pipeline) -> None:
    span = pipeline.db_span(CLEAN)
    assert_untouched(pipeline.only_span(), span)


def test_missing_filter_span_is_forwarded_as_an_enriched_copy(pipeline: Pipeline) -> None:
    span = pipeline.db_span(UNFILTERED, statement="SELECT * FROM objectives")
    exported = pipeline.only_span()
    assert isinstance(exported, EnrichedSpan)
    assert exported.context == span.context
    attributes = exported.attributes or {}
    assert attributes[A.FINDINGS] == ("missing_tenant_filter",)
    assert attributes[A.SEVERITY] == "critical"
    assert attributes[A.DB_STATEMENT] == "SELECT * FROM objectives"  # the original attributes are all there
    assert attributes[A.TENANT_ID] == "acme"
    (event,) = findings_of(exported)
    assert event[A.RULE] == "missing_tenant_filter"
    assert event[A.SEVERITY] == "critical"
    assert event[A.FINGERPRINT] == finding_fingerprint("missing_tenant_filter", UNFILTERED)
    assert event[A.FINDING_TABLE] == "objectives"
    assert "objectives" in str(event[A.MESSAGE])


def test_enriched_copy_keeps_identity_times_links_status_and_events(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline()
    provider = TracerProvider(resource=Resource.create({"service.name": "okr-api"}))
    provider.add_span_processor(pipeline.processor)
    tracer = provider.get_tracer("test.scope", "1.2.3")
    linked = trace.SpanContext(trace_id=0xABC, span_id=0xDEF, is_remote=True)
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER) as parent:
        span = tracer.start_span(
            "SELECT okr",
            kind=SpanKind.CLIENT,
            attributes={A.DB_SYSTEM: "postgresql", **UNFILTERED.to_attributes()},
            links=[Link(linked, {"why": "batch"})],
        )
        span.add_event("fetch", {"rows": 3})
        span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end()
    copy = next(s for s in pipeline.spans() if s.name == "SELECT okr")
    assert isinstance(copy, EnrichedSpan)
    assert copy.context == span.context
    assert copy.parent is not None and copy.parent.span_id == parent.get_span_context().span_id
    assert copy.kind is SpanKind.CLIENT
    assert (copy.start_time, copy.end_time) == (span.start_time, span.end_time)
    assert copy.resource.attributes["service.name"] == "okr-api"
    assert copy.instrumentation_scope is not None
    assert (copy.instrumentation_scope.name, copy.instrumentation_scope.version) == ("test.scope", "1.2.3")
    assert [link.context for link in copy.links] == [linked]
    assert copy.status.status_code is StatusCode.ERROR and copy.status.description == "boom"
    assert [e.name for e in copy.events] == ["fetch", A.FINDING_EVENT]
    assert copy.events[1].timestamp == span.end_time
    server = next(s for s in pipeline.spans() if s.name == "request")
    assert A.FINDINGS not in (server.attributes or {})
    provider.shutdown()


def test_non_db_and_nosql_spans_are_untouched_and_unmeasured(pipeline: Pipeline) -> None:
    with pipeline.tracer.start_as_current_span("GET /objectives", attributes={"http.request.method": "GET"}):
        pass
    pipeline.db_span(system="redis", statement="GET tenant:*", extra={A.TENANT_ID: "acme"})
    assert all(A.FINDINGS not in (s.attributes or {}) for s in pipeline.spans())
    assert len(pipeline.spans()) == 2
    assert pipeline.points(A.METRIC_OPERATION_DURATION) == []


def test_connect_span_is_not_a_statement(pipeline: Pipeline) -> None:
    with pipeline.tracer.start_as_current_span("connect", kind=SpanKind.CLIENT, attributes={A.DB_SYSTEM: "sqlite"}):
        pass
    assert A.FINDINGS not in (pipeline.only_span().attributes or {})
    assert pipeline.points(A.METRIC_OPERATION_DURATION) == []


def test_each_rule_reaches_the_exported_span(pipeline: Pipeline) -> None:
    cases: list[tuple[SpanFacts, float, str]] = [
        (UNFILTERED, 1.0, "missing_tenant_filter"),
        (replace(CLEAN, tenant_values=("globex",)), 1.0, "cross_tenant"),
        (
            replace(CLEAN, operation="DELETE", tenant_filter="missing", unscoped_writes=("objectives",)),
            1.0,
            "unscoped_write",
        ),
        (replace(CLEAN, tenant_id=None, tenant_values=()), 1.0, "no_tenant_context"),
        (replace(CLEAN, operation="UPDATE", role="superuser"), 1.0, "superuser_write"),
        (replace(CLEAN, returned_rows=1500), 1.0, "large_result"),
        (CLEAN, 750.0, "slow_query"),
    ]
    for facts, duration_ms, _ in cases:
        pipeline.db_span(facts, duration_ms=duration_ms)
    pipeline.db_span(CLEAN, duration_ms=499.0)
    expected = [[rule] for _, _, rule in cases] + [[]]
    # the fifth high/critical finding for the same user within the hour is also a repeated violation
    expected[4].append("repeated_violations")
    assert [rules_of(s) for s in pipeline.spans()] == expected


def test_slow_query_uses_the_span_duration(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN, duration_ms=612.0)
    (event,) = findings_of(pipeline.only_span())
    assert event[A.RULE] == "slow_query"
    assert "took 612 ms" in str(event[A.MESSAGE])


def test_analysis_unknown_raises_no_filter_finding(pipeline: Pipeline) -> None:
    facts = replace(UNFILTERED, tenant_filter="unknown", analysis_error="statement too large")
    span = pipeline.db_span(facts)
    assert_untouched(pipeline.only_span(), span)


def test_several_findings_on_one_span_and_highest_severity(pipeline: Pipeline) -> None:
    pipeline.db_span(replace(UNFILTERED, returned_rows=4000), duration_ms=900.0)
    exported = pipeline.only_span()
    assert rules_of(exported) == ["missing_tenant_filter", "large_result", "slow_query"]
    assert (exported.attributes or {})[A.FINDINGS] == ("missing_tenant_filter", "large_result", "slow_query")
    assert (exported.attributes or {})[A.SEVERITY] == "critical"


def test_unscoped_context_recorded_by_instrumentation_is_respected(pipeline: Pipeline) -> None:
    span = pipeline.db_span(replace(UNFILTERED, unscoped_reason="nightly roll-up"))
    assert_untouched(pipeline.only_span(), span)


def test_a_rule_that_raises_never_reaches_the_caller_and_the_span_is_exported(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: SlowQuery, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        raise ZeroDivisionError("rule bug")

    monkeypatch.setattr(SlowQuery, "__call__", broken)
    pipeline.db_span(UNFILTERED, duration_ms=900.0)
    clean = pipeline.db_span(CLEAN, duration_ms=900.0)
    first, second = pipeline.spans()
    assert rules_of(first) == ["missing_tenant_filter"]
    assert_untouched(second, clean)


def test_an_internal_error_forwards_the_original_span(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("metrics bug")

    monkeypatch.setattr(pipeline.processor._metrics, "record_statement", broken)
    span = pipeline.db_span(UNFILTERED)
    assert_untouched(pipeline.only_span(), span)


def test_a_failing_log_pipeline_still_forwards_the_finding(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("log exporter bug")

    monkeypatch.setattr(pipeline.processor._logs, "emit", broken)
    pipeline.db_span(UNFILTERED)
    assert rules_of(pipeline.only_span()) == ["missing_tenant_filter"]
    assert len(pipeline.points(A.METRIC_FINDINGS)) == 1


def test_a_failing_delegate_never_raises_into_the_caller() -> None:
    class Exploding(SpanProcessor):
        def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
            raise RuntimeError("on_start")

        def on_end(self, span: ReadableSpan) -> None:
            raise RuntimeError("on_end")

    provider = TracerProvider()
    provider.add_span_processor(TenantwatchSpanProcessor(Exploding(), settings=Settings()))
    with provider.get_tracer("t").start_as_current_span("SELECT", attributes=UNFILTERED.to_attributes()):
        pass
    provider.shutdown()


def test_on_start_shutdown_and_force_flush_are_forwarded() -> None:
    recorder = Recorder()
    processor = TenantwatchSpanProcessor(recorder, settings=Settings())
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("work") as span:
        pass
    assert recorder.started == [span]
    (ended,) = recorder.ended
    assert_untouched(ended, span)
    assert processor.force_flush(1234) is True
    assert recorder.flushed == [1234]
    provider.shutdown()
    assert recorder.shut_down


def test_a_span_exporter_delegate_is_batched() -> None:
    class Collect(SpanExporter):
        def __init__(self) -> None:
            self.spans: list[ReadableSpan] = []

        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            self.spans.extend(spans)
            return SpanExportResult.SUCCESS

    exporter = Collect()
    provider = TracerProvider()
    provider.add_span_processor(TenantwatchSpanProcessor(exporter, settings=Settings()))
    with provider.get_tracer("t").start_as_current_span("SELECT", attributes=UNFILTERED.to_attributes()):
        pass
    assert provider.force_flush()
    (exported,) = exporter.spans
    assert rules_of(exported) == ["missing_tenant_filter"]
    provider.shutdown()


def test_mode_off_forwards_everything_untouched(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline(mode="off")
    span = pipeline.db_span(UNFILTERED)
    assert_untouched(pipeline.only_span(), span)
    assert pipeline.points(A.METRIC_OPERATION_DURATION) == []


# --- db spans from other instrumentations (statement text only) ------------------------------------------------


@pytest.fixture
def text_pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(tenant_tables={"objectives": "organization_id"}, discover=False)


def test_text_only_db_span_is_analyzed(text_pipeline: Pipeline) -> None:
    text_pipeline.db_span(statement="SELECT id, title FROM objectives", extra={A.TENANT_ID: "acme"})
    exported = text_pipeline.only_span()
    assert rules_of(exported) == ["missing_tenant_filter"]
    attributes = exported.attributes or {}
    assert attributes[A.DB_TENANT_FILTER] == "missing"  # the facts the processor worked out travel with the copy
    assert attributes[A.DB_STATEMENT] == "SELECT id, title FROM objectives"


def test_text_only_db_span_with_tenant_filter_is_clean(text_pipeline: Pipeline) -> None:
    span = text_pipeline.db_span(
        statement="SELECT id FROM objectives WHERE organization_id = %s", extra={A.TENANT_ID: "acme"}
    )
    assert_untouched(text_pipeline.only_span(), span)


def test_text_only_db_span_sees_inline_literal_tenants(text_pipeline: Pipeline) -> None:
    text_pipeline.db_span(
        statement="SELECT id FROM objectives WHERE organization_id = 'globex'", extra={A.TENANT_ID: "acme"}
    )
    assert rules_of(text_pipeline.only_span()) == ["cross_tenant"]


def test_text_only_db_span_takes_the_tenant_from_the_context_it_ended_in(text_pipeline: Pipeline) -> None:
    statement = "SELECT id FROM objectives WHERE organization_id = %s"
    with tenant_context("acme"):
        inside = text_pipeline.db_span(statement=statement)
    with unscoped("support export"):
        unscoped_span = text_pipeline.db_span(statement="SELECT id FROM objectives")
    text_pipeline.db_span(statement=statement)
    first, second, third = text_pipeline.spans()
    assert_untouched(first, inside)
    assert_untouched(second, unscoped_span)
    assert rules_of(third) == ["no_tenant_context"]
