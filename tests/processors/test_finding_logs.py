"""Each finding becomes one OpenTelemetry log record, correlated with its db span."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry._logs import SeverityNumber
from processor_support import CLEAN, UNFILTERED, Pipeline

from tenantwatch import attributes as A
from tenantwatch.core.findings import finding_fingerprint


def test_critical_finding_is_an_error_record_with_the_details(pipeline: Pipeline) -> None:
    span = pipeline.db_span(UNFILTERED, statement="SELECT * FROM objectives")
    (exported,) = pipeline.spans()
    (record,) = pipeline.log_records()
    log = record.log_record
    assert log.severity_number is SeverityNumber.ERROR
    assert log.severity_text == "ERROR"
    assert log.event_name == A.FINDING_EVENT
    event = next(e for e in exported.events if e.name == A.FINDING_EVENT)
    assert log.body == event.attributes[A.MESSAGE] if event.attributes else False
    assert log.trace_id == span.context.trace_id
    assert log.span_id == span.context.span_id
    assert log.timestamp == span.end_time
    attributes = dict(log.attributes or {})
    assert attributes == {
        A.RULE: "missing_tenant_filter",
        A.SEVERITY: "critical",
        A.FINGERPRINT: finding_fingerprint("missing_tenant_filter", UNFILTERED),
        A.FINDING_TABLE: "objectives",
        A.TENANT_ID: "acme",
        A.ENDUSER_ID: "u-1",
        A.ENDUSER_ROLE: "member",
        A.DB_SYSTEM_NAME: "postgresql",
        A.DB_OPERATION_NAME: "SELECT",
        A.DB_COLLECTION_NAME: "objectives",
        A.DB_QUERY_TEXT: "SELECT * FROM objectives",
        A.DB_FINGERPRINT: UNFILTERED.statement_fingerprint,
        A.DB_RESPONSE_RETURNED_ROWS: 3,
        A.CODE_FUNCTION: "list_all",
        A.CODE_FILEPATH: "/srv/app/objectives.py",
        A.CODE_LINENO: 57,
    }


def test_warning_finding_is_a_warn_record(pipeline: Pipeline) -> None:
    pipeline.db_span(replace(CLEAN, returned_rows=2000))
    (record,) = pipeline.log_records()
    assert record.log_record.severity_number is SeverityNumber.WARN
    assert record.log_record.attributes[A.RULE] == "large_result"


def test_high_finding_is_an_error_record_and_clean_spans_log_nothing(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN)
    assert pipeline.log_records() == []
    pipeline.db_span(replace(CLEAN, operation="DELETE", role="admin"))
    (record,) = pipeline.log_records()
    assert record.log_record.severity_number is SeverityNumber.ERROR
    assert record.log_record.attributes[A.SEVERITY] == "high"


def test_one_record_per_finding(pipeline: Pipeline) -> None:
    pipeline.db_span(replace(UNFILTERED, returned_rows=5000), duration_ms=800.0)
    assert [r.log_record.attributes[A.RULE] for r in pipeline.log_records()] == [
        "missing_tenant_filter",
        "large_result",
        "slow_query",
    ]
