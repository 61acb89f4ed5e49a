"""Suppressions from the rules file keep findings off spans, metrics and logs, and are counted on their own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from opentelemetry.trace import SpanKind
from processor_support import CLEAN, UNFILTERED, Pipeline, assert_untouched, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.core.findings import finding_fingerprint
from tenantwatch.core.rule import evaluate
from tenantwatch.core.suppressions import is_suppressed, matching_suppression


def _pipeline(make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path], yaml: str) -> Pipeline:
    return make_pipeline(load_settings(rules_file(yaml), environ={}))


def test_suppressed_by_fingerprint(make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]) -> None:
    fingerprint = finding_fingerprint("missing_tenant_filter", UNFILTERED)
    pipeline = _pipeline(make_pipeline, rules_file, f'suppressions: [{{fingerprint: "{fingerprint}", reason: SEC-12}}]')
    span = pipeline.db_span(UNFILTERED)
    moved = pipeline.db_span(replace(UNFILTERED, code_lineno=99))  # same bug elsewhere: a different fingerprint
    first, second = pipeline.spans()
    assert_untouched(first, span)
    assert rules_of(second) == ["missing_tenant_filter"]
    assert moved.context == second.context
    assert pipeline.log_records()[0].log_record.attributes[A.FINGERPRINT] != fingerprint


def test_suppressed_by_table_only_for_that_table(
    make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]
) -> None:
    pipeline = _pipeline(
        make_pipeline, rules_file, "suppressions: [{rule: missing_tenant_filter, table: Objectives, reason: global}]"
    )
    facts = replace(
        UNFILTERED,
        tables=("objectives", "key_results"),
        tenant_tables=("objectives", "key_results"),
        unfiltered=("main:objectives", "join:kr:key_results"),
    )
    pipeline.db_span(facts)
    exported = pipeline.only_span()
    assert rules_of(exported) == ["missing_tenant_filter"]
    assert [e.attributes[A.FINDING_TABLE] for e in exported.events if e.attributes] == ["key_results"]


def test_suppressed_by_rule_keeps_other_rules(
    make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]
) -> None:
    pipeline = _pipeline(make_pipeline, rules_file, "suppressions: [{rule: slow_query, reason: batch host}]")
    pipeline.db_span(UNFILTERED, duration_ms=900.0)
    clean = pipeline.db_span(CLEAN, duration_ms=900.0)
    first, second = pipeline.spans()
    assert rules_of(first) == ["missing_tenant_filter"]
    assert_untouched(second, clean)


def test_suppressed_by_route_of_the_request(
    make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]
) -> None:
    pipeline = _pipeline(make_pipeline, rules_file, 'suppressions: [{route: "/admin/*", reason: "cross-tenant"}]')
    for route in ("/admin/reports", "/api/objectives"):
        with pipeline.tracer.start_as_current_span("GET", kind=SpanKind.SERVER, attributes={A.HTTP_ROUTE: route}):
            pipeline.db_span(UNFILTERED)
    admin_db, _, api_db, _ = pipeline.spans()
    assert rules_of(admin_db) == []
    assert rules_of(api_db) == ["missing_tenant_filter"]
    (record,) = pipeline.log_records()
    assert record.log_record.attributes[A.HTTP_ROUTE] == "/api/objectives"


def test_route_on_the_db_span_itself(make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]) -> None:
    pipeline = _pipeline(make_pipeline, rules_file, 'suppressions: [{route: "/admin/*"}]')
    span = pipeline.db_span(UNFILTERED, extra={A.HTTP_ROUTE: "/admin/users"})
    assert_untouched(pipeline.only_span(), span)


def test_suppressed_findings_are_counted_not_reported(
    make_pipeline: Callable[..., Pipeline], rules_file: Callable[[str], Path]
) -> None:
    pipeline = _pipeline(make_pipeline, rules_file, "suppressions: [{table: objectives}]")
    pipeline.db_span(UNFILTERED)
    pipeline.db_span(UNFILTERED)
    assert pipeline.log_records() == []
    assert pipeline.points(A.METRIC_FINDINGS) == []
    ((labels, point),) = pipeline.points(A.METRIC_SUPPRESSED_FINDINGS)
    assert labels == {A.RULE: "missing_tenant_filter", A.SEVERITY: "critical", A.DB_COLLECTION_NAME: "objectives"}
    assert point.value == 2


def test_every_field_of_a_suppression_must_match(rules_file: Callable[[str], Path]) -> None:
    settings = load_settings(
        rules_file("suppressions: [{rule: cross_tenant, table: objectives, route: '/admin/*'}]"), environ={}
    )
    facts = replace(CLEAN, tenant_values=("globex",))
    (finding,) = evaluate(facts, settings)
    assert not is_suppressed(finding, facts, settings)  # no route known
    assert is_suppressed(finding, replace(facts, route="/admin/export"), settings)
    assert not is_suppressed(finding, replace(facts, route="/api/export"), settings)
    suppression = matching_suppression(finding, replace(facts, route="/admin/x"), settings)
    assert suppression is not None and suppression.rule == "cross_tenant"
