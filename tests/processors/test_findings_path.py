"""The findings path stays cheap without changing what it exports: the copy of a db span with findings is built
from the original already fit to leave the process (statement masked, database errors scrubbed, strings capped),
so nothing passes over the copy's attributes and events a second time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import Link, Status, StatusCode
from processor_support import UNFILTERED, Pipeline, build_pipeline, findings_of, rules_of

from tenantwatch import attributes as A
from tenantwatch.core import buckets as buckets_module
from tenantwatch.core import findings as findings_module
from tenantwatch.core import rule as rule_module
from tenantwatch.processors import _outgoing
from tenantwatch.rules import cross_tenant as cross_tenant_module

DB_ERROR = (
    '(psycopg.errors.CheckViolation) new row violates check constraint "positive"\n'
    "DETAIL:  Failing row contains (7, alice@corp.example).\n"
    "[SQL: SELECT * FROM objectives WHERE owner = 'alice@corp.example']"
)


@pytest.fixture
def fits_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Size of every mapping ``_outgoing`` checked string lengths of."""
    calls: list[int] = []
    fits = _outgoing._fits

    def counting(attributes: Any, limit: int) -> bool:
        calls.append(len(attributes))
        return fits(attributes, limit)

    monkeypatch.setattr(_outgoing, "_fits", counting)
    return calls


def test_a_span_with_findings_is_checked_once_not_again_as_a_copy(fits_calls: list[int]) -> None:
    pipeline = build_pipeline()
    span = pipeline.db_span(UNFILTERED)
    exported = pipeline.only_span()
    assert rules_of(exported) == ["missing_tenant_filter"]
    assert fits_calls == [len(span.attributes or {})]  # the original's attributes, once; not the copy nor its events


def test_the_copy_of_a_span_with_findings_leaves_masked_scrubbed_and_capped() -> None:
    pipeline = build_pipeline(max_string_length=1024)
    statement = "SELECT * FROM objectives WHERE owner = 'alice@corp.example' AND note = '" + "x" * 3000 + "'"
    span = pipeline.tracer.start_span(
        "SELECT objectives",
        attributes={A.DB_SYSTEM: "postgresql", A.DB_STATEMENT: statement, **UNFILTERED.to_attributes()},
    )
    span.record_exception(RuntimeError(DB_ERROR))
    span.set_status(Status(StatusCode.ERROR, DB_ERROR))
    span.end()
    exported = pipeline.only_span()
    assert rules_of(exported) == ["missing_tenant_filter"]
    assert exported.attributes[A.DB_STATEMENT] == "SELECT * FROM objectives WHERE owner = ? AND note = ?"  # type: ignore[index]
    text = repr(dict(exported.attributes or {})) + str(exported.status.description)
    text += repr([dict(event.attributes or {}) for event in exported.events])
    assert "alice@corp.example" not in text
    assert exported.status.status_code is StatusCode.ERROR
    assert [event.name for event in exported.events] == ["exception", A.FINDING_EVENT]
    assert exported.attributes[A.FINDINGS] == ("missing_tenant_filter",)  # type: ignore[index]
    assert exported.attributes[A.SEVERITY] == "critical"  # type: ignore[index]


def test_a_long_finding_message_is_capped_on_the_event() -> None:
    pipeline = build_pipeline(max_string_length=1024)
    table = "t" * 5000
    facts = replace(
        UNFILTERED, main_table=table, tables=(table,), tenant_tables=(table,), unfiltered=(f"main:{table}",)
    )
    pipeline.db_span(facts)
    (finding,) = findings_of(pipeline.only_span())
    for key in (A.MESSAGE, A.FINDING_TABLE):
        value = str(finding[key])
        assert len(value) < 1100 and "…[cut " in value, key


def test_a_call_site_fingerprint_is_hashed_once_and_each_site_keeps_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    digest = findings_module._digest

    def counting(parts: tuple[str, ...]) -> str:
        hashed.append(parts[0])
        return digest(parts)

    monkeypatch.setattr(findings_module, "_digest", counting)
    monkeypatch.setattr(rule_module, "_FINGERPRINTS", {})  # what earlier tests remembered does not count here
    pipeline = build_pipeline()
    for line in (57, 57, 57, 58):
        pipeline.db_span(replace(UNFILTERED, statement_fingerprint="0123456789abcdef", code_lineno=line))
    fingerprints = [finding[A.FINGERPRINT] for span in pipeline.spans() for finding in findings_of(span)]
    assert hashed.count("missing_tenant_filter") == 2  # one SHA-1 per call site, not per finding
    expected = [
        findings_module.finding_fingerprint(
            "missing_tenant_filter", replace(UNFILTERED, statement_fingerprint="0123456789abcdef", code_lineno=line)
        )
        for line in (57, 57, 57, 58)
    ]
    assert fingerprints == expected and fingerprints[0] != fingerprints[3]


def test_each_settings_object_gives_its_own_severity() -> None:
    for severity in ("warning", "high", "warning"):
        pipeline = build_pipeline(rules={"missing_tenant_filter": {"severity": severity}})
        pipeline.db_span(UNFILTERED)
        (finding,) = findings_of(pipeline.only_span())
        assert finding[A.SEVERITY] == severity


def test_the_copy_reports_what_the_sdk_dropped_from_the_original(pipeline: Pipeline) -> None:
    facts = UNFILTERED.to_attributes()
    provider = TracerProvider(span_limits=SpanLimits(max_span_attributes=len(facts) + 1, max_events=1, max_links=1))
    provider.add_span_processor(pipeline.processor)
    links = [Link(trace.SpanContext(trace_id=1, span_id=n, is_remote=True)) for n in (1, 2, 3)]
    span = provider.get_tracer("test").start_span(
        "SELECT okr", attributes={A.DB_SYSTEM: "postgresql", **facts}, links=links
    )
    span.set_attributes({"extra.one": 1, "extra.two": 2})
    for name in ("first", "second"):
        span.add_event(name)
    span.end()
    (copy,) = pipeline.spans()
    assert rules_of(copy) == ["missing_tenant_filter"]
    assert (copy.dropped_attributes, copy.dropped_events, copy.dropped_links) == (2, 1, 2)
    assert [event.name for event in copy.events] == ["second", A.FINDING_EVENT]
    assert len(copy.links) == 1


def test_tenant_values_are_made_canonical_once_per_value_not_per_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []

    def counting(module: Any) -> None:
        original = module.canonical

        def canonical(value: object) -> str:
            seen.append(value)
            return original(value)

        monkeypatch.setattr(module, "canonical", canonical)

    counting(buckets_module)
    counting(cross_tenant_module)
    monkeypatch.setattr(cross_tenant_module, "_CANONICAL", {})
    pipeline = build_pipeline(tenant_label_cap=1, rules={"repeated_violations": {"enabled": False}})
    other = replace(UNFILTERED, tenant_filter="present", unfiltered=(), tenant_values=("globex",))
    for tenant in ("acme", "initech") * 5:
        pipeline.db_span(replace(other, tenant_id=tenant))
    assert sorted(set(map(str, seen))) == ["acme", "globex", "initech"]
    assert len(seen) == 2 + 3  # each tenant's bucket once; each value once in cross_tenant (two tenants, globex)
    assert [rules_of(span) for span in pipeline.spans()] == [["cross_tenant"]] * 10
    buckets = {labels[A.TENANT_BUCKET] for labels, _ in pipeline.points(A.METRIC_OPERATION_DURATION)}
    assert buckets == {"acme", A.OTHER_TENANTS}  # the cap still holds: the second tenant stays in __other__
    counted = {labels[A.TENANT_BUCKET]: point.value for labels, point in pipeline.points(A.METRIC_FINDINGS)}
    assert counted == {"acme": 5, A.OTHER_TENANTS: 5}
