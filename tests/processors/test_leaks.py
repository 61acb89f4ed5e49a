"""What the processor exports stays bounded and private: label caps, string caps, masked statements in log records,
database errors without the values they quote (spans of other instrumentations and the application's own)."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.trace import SpanKind, Status, StatusCode
from processor_support import CLEAN, UNFILTERED, Pipeline, build_pipeline, findings_of

from tenantwatch import attributes as A

DB_ERROR = (
    '(psycopg.errors.CheckViolation) new row for relation "accounts" violates check constraint "positive"\n'
    "DETAIL:  Failing row contains (7, alice@corp.example, sk_live_51Hsecret).\n"
    "[SQL: INSERT INTO accounts (email, api_key) VALUES (%(email)s, 'sk_live_inline')]\n"
    "[parameters: {'email': 'alice@corp.example'}]\n"
    "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
)
SECRETS = ("alice@corp.example", "sk_live_51Hsecret", "sk_live_inline")


def test_table_label_is_capped_like_the_tenant_bucket() -> None:
    pipeline = build_pipeline(table_label_cap=3)
    for index in range(50):
        table = f"t{index}"
        facts = replace(
            UNFILTERED, main_table=table, tables=(table,), tenant_tables=(table,), unfiltered=(f"main:{table}",)
        )
        pipeline.db_span(facts)
    tables = {labels[A.DB_COLLECTION_NAME] for labels, _ in pipeline.points(A.METRIC_OPERATION_DURATION)}
    assert tables == {"t0", "t1", "t2", A.OTHER_TENANTS}
    found = {labels.get(A.DB_COLLECTION_NAME) for labels, _ in pipeline.points(A.METRIC_FINDINGS)} - {None}
    assert found == {"t0", "t1", "t2", A.OTHER_TENANTS}
    assert len(pipeline.points(A.METRIC_OPERATION_DURATION)) == 4


def test_foreign_system_and_operation_labels_are_bounded(pipeline: Pipeline) -> None:
    for index in range(200):
        pipeline.db_span(
            None,
            system=f"system{index}",
            statement=None,
            extra={A.DB_OPERATION_NAME: f"proc_{index}"},
        )
    points = pipeline.points(A.METRIC_OPERATION_DURATION)
    assert len({labels[A.DB_SYSTEM_NAME] for labels, _ in points}) <= 17
    assert len({labels[A.DB_OPERATION_NAME] for labels, _ in points}) <= 33


def test_a_huge_tenant_value_is_cut_on_the_span_the_event_and_the_log_record() -> None:
    pipeline = build_pipeline(max_string_length=1024)
    huge = "9" * 10_000_000
    pipeline.db_span(replace(CLEAN, tenant_values=(huge,), tenant_id="acme"))
    span = pipeline.only_span()
    (value,) = span.attributes[A.DB_TENANT_VALUES]  # type: ignore[index,misc]
    assert value.startswith("9" * 1024) and value.endswith(f"…[cut {10_000_000 - 1024} chars]")
    (finding,) = findings_of(span)
    assert finding[A.RULE] == "cross_tenant"
    assert len(str(finding[A.MESSAGE])) < 1200 and "…[cut " in str(finding[A.MESSAGE])
    (record,) = pipeline.log_records()
    body = str(record.log_record.body)
    assert len(body) < 1200 and "…[cut " in body
    assert sum(len(v) for v in (record.log_record.attributes or {}).values() if isinstance(v, str)) < 20_000


def test_short_strings_leave_untouched_spans_alone(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN)
    span = pipeline.only_span()
    assert type(span).__name__ == "ReadableSpan"


def test_finding_log_records_carry_the_normalized_statement(pipeline: Pipeline) -> None:
    statement = "SELECT * FROM objectives WHERE title = 'hunter2' AND owner = 'bob@corp.example' LIMIT 10"
    pipeline.db_span(UNFILTERED, statement=statement)
    (record,) = pipeline.log_records()
    assert record.log_record.attributes[A.DB_QUERY_TEXT] == (  # type: ignore[index]
        "SELECT * FROM objectives WHERE title = ? AND owner = ? LIMIT ?"
    )


def test_foreign_db_span_statement_and_error_are_scrubbed(pipeline: Pipeline) -> None:
    span = pipeline.tracer.start_span(
        "INSERT app",
        kind=SpanKind.CLIENT,
        attributes={A.DB_SYSTEM: "postgresql", A.DB_STATEMENT: "INSERT INTO accounts VALUES ('sk_live_inline')"},
    )
    span.set_status(Status(StatusCode.ERROR, DB_ERROR))
    span.record_exception(RuntimeError(DB_ERROR))
    span.end()
    (exported,) = pipeline.spans()
    text = repr(dict(exported.attributes or {})) + str(exported.status.description)
    text += repr([dict(e.attributes or {}) for e in exported.events])
    for secret in SECRETS:
        assert secret not in text
    assert exported.attributes[A.DB_STATEMENT] == "INSERT INTO accounts VALUES (?)"  # type: ignore[index]
    assert 'violates check constraint "positive"' in str(exported.status.description)
    assert exported.status.status_code is StatusCode.ERROR


def test_a_request_span_that_recorded_a_database_error_loses_its_values(pipeline: Pipeline) -> None:
    span = pipeline.tracer.start_span("GET /accounts", kind=SpanKind.SERVER)
    span.record_exception(RuntimeError(DB_ERROR))
    span.set_status(Status(StatusCode.ERROR, f"IntegrityError: {DB_ERROR}"))
    span.end()
    (exported,) = pipeline.spans()
    (event,) = exported.events
    message = str((event.attributes or {})["exception.message"])
    stack = str((event.attributes or {})["exception.stacktrace"])
    for secret in SECRETS:
        assert secret not in message + stack + str(exported.status.description)
    assert "[SQL: INSERT INTO accounts (email, api_key) VALUES (%(email)s, ?)]" in message


def test_other_exceptions_keep_their_message(pipeline: Pipeline) -> None:
    span = pipeline.tracer.start_span("work")
    span.record_exception(KeyError("user_id"))
    span.end()
    (exported,) = pipeline.spans()
    assert exported.events[0].attributes["exception.message"] == "'user_id'"  # type: ignore[index]


def test_literals_of_a_judged_db_span_are_masked_in_the_export_not_on_the_span(pipeline: Pipeline) -> None:
    span = pipeline.db_span(CLEAN, statement="SELECT id FROM objectives WHERE title = 'hunter2'")
    exported = pipeline.only_span()
    assert (exported.attributes or {})[A.DB_STATEMENT] == "SELECT id FROM objectives WHERE title = ?"
    assert (span.attributes or {})[A.DB_STATEMENT] == "SELECT id FROM objectives WHERE title = 'hunter2'"
