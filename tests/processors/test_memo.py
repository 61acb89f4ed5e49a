"""A db span that repeats one judged clean before is judged from memory: same verdicts, same exports, same metrics;
only the rules that read the duration run again. Spans with findings, another request tenant, changed attributes or
another tenant hierarchy are judged in full."""

from __future__ import annotations

import ast
import inspect
import math
from dataclasses import fields, replace
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from processor_support import CLEAN, UNFILTERED, Pipeline, build_pipeline, findings_of, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import set_tenant_hierarchy
from tenantwatch.core.rule import Rule, measured_quiet_up_to, rules_for
from tenantwatch.facts import SpanFacts, with_duration
from tenantwatch.processors._memo import VerdictMemo


def _memo(pipeline: Pipeline) -> VerdictMemo:
    memo = pipeline.processor._memo
    assert isinstance(memo, VerdictMemo)
    return memo


def _seen_facts(pipeline: Pipeline) -> list[SpanFacts]:
    seen: list[SpanFacts] = []
    pipeline.processor.add_finding_listener(lambda finding, facts, span: seen.append(facts))
    return seen


def test_a_repeated_clean_span_is_judged_from_memory_and_exported_the_same(pipeline: Pipeline) -> None:
    for _ in range(5):
        pipeline.db_span(CLEAN)
    memo = _memo(pipeline)
    assert (memo.hits, len(memo)) == (4, 1)
    exported = pipeline.spans()
    assert len(exported) == 5
    assert all(findings_of(span) == [] and A.FINDINGS not in (span.attributes or {}) for span in exported)
    assert len({tuple(sorted((span.attributes or {}).items())) for span in exported}) == 1
    (point,) = [p for _, p in pipeline.points(A.METRIC_OPERATION_DURATION)]
    assert point.count == 5
    (rows,) = [p for _, p in pipeline.points(A.METRIC_RETURNED_ROWS)]
    assert (rows.count, rows.sum) == (5, 15)


def test_the_duration_is_still_judged_on_every_repeat() -> None:
    pipeline = build_pipeline(rules={"slow_query": {"threshold_ms": 100}})
    seen = _seen_facts(pipeline)
    pipeline.db_span(CLEAN, duration_ms=2.0)
    pipeline.db_span(CLEAN, duration_ms=2.0)
    pipeline.db_span(CLEAN, duration_ms=450.0)
    assert _memo(pipeline).hits == 2
    assert [rules_of(span) for span in pipeline.spans()] == [[], [], ["slow_query"]]
    (facts,) = seen
    assert facts.duration_ms == pytest.approx(450.0)
    expected = SpanFacts.from_attributes(pipeline.spans()[2].attributes, duration_ms=facts.duration_ms)
    assert facts == expected  # the remembered facts, with this span's duration: what a full read gives


def test_a_slow_first_span_is_remembered_for_its_other_rules() -> None:
    """slow_query is the only finding: the other rules' clean verdict is remembered, and a fast repeat is clean."""
    pipeline = build_pipeline(rules={"slow_query": {"threshold_ms": 100}})
    pipeline.db_span(CLEAN, duration_ms=450.0)
    pipeline.db_span(CLEAN, duration_ms=2.0)
    assert _memo(pipeline).hits == 1
    assert [rules_of(span) for span in pipeline.spans()] == [["slow_query"], []]


def test_a_fast_clean_repeat_is_recorded_with_its_own_duration(pipeline: Pipeline) -> None:
    """Below every measured rule's threshold a clean repeat is not copied, and the metrics still get its duration."""
    for duration in (2.0, 3.0, 4.0):
        pipeline.db_span(CLEAN, duration_ms=duration)
    assert _memo(pipeline).hits == 2
    (point,) = [p for _, p in pipeline.points(A.METRIC_OPERATION_DURATION)]
    assert (point.count, point.sum) == (3, pytest.approx(0.009))
    assert (point.min, point.max) == (pytest.approx(0.002), pytest.approx(0.004))


def test_a_windowed_finding_on_a_fast_repeat_carries_the_spans_own_duration() -> None:
    """A clean write judged from memory that a window then flags is published with this span's facts."""
    pipeline = build_pipeline(rules={"rapid_write": {"threshold": 3}})
    seen: list[tuple[str, float | None]] = []
    pipeline.processor.add_finding_listener(lambda finding, facts, span: seen.append((finding.rule, facts.duration_ms)))
    write = replace(CLEAN, operation="INSERT", returned_rows=1, written_tenant_values=("acme",), tenant_values=())
    for duration in (2.0, 3.0, 4.0, 5.0):
        pipeline.db_span(write, duration_ms=duration, statement="INSERT INTO objectives (organization_id) VALUES (:t)")
    assert _memo(pipeline).hits == 3
    assert [rules_of(span) for span in pipeline.spans()] == [[], [], [], ["rapid_write"]]
    assert seen == [("rapid_write", pytest.approx(5.0))]


def test_a_repeated_span_with_findings_is_judged_from_memory_and_still_counted_each_time(pipeline: Pipeline) -> None:
    for _ in range(3):
        pipeline.db_span(UNFILTERED)
    assert _memo(pipeline).hits == 2
    assert [rules_of(span) for span in pipeline.spans()] == [["missing_tenant_filter"]] * 3
    (point,) = [p for labels, p in pipeline.points(A.METRIC_FINDINGS) if labels[A.RULE] == "missing_tenant_filter"]
    assert point.value == 3
    assert len(pipeline.log_records()) == 1  # the cooldown holds the repeats, as without the memo


class _Forgetful(VerdictMemo):
    """A memo that never finds anything: the processor as it was before it remembered."""

    def get(self, key: Any) -> Any:
        return None


def _run(memo: bool, rules: dict[str, Any]) -> Pipeline:
    pipeline = build_pipeline(rules=rules)
    if not memo:
        pipeline.processor._memo = _Forgetful()
    slow = 450.0
    for facts, duration in [
        (CLEAN, 2.0),
        (CLEAN, 2.0),
        (CLEAN, slow),
        (UNFILTERED, 2.0),
        (UNFILTERED, slow),
        (UNFILTERED, 2.0),
        (replace(CLEAN, tenant_values=("globex",)), 2.0),
        (replace(CLEAN, tenant_values=("globex",)), slow),
    ]:
        pipeline.db_span(facts, duration_ms=duration)
    with pipeline.tracer.start_as_current_span("GET /b", kind=SpanKind.SERVER, attributes={A.TENANT_ID: "globex"}):
        pipeline.db_span(CLEAN)
        pipeline.db_span(CLEAN, duration_ms=slow)
    return pipeline


def _exported(pipeline: Pipeline) -> list[Any]:
    return [
        (
            span.name,
            sorted((span.attributes or {}).items()),
            [(event.name, sorted((event.attributes or {}).items())) for event in span.events],
            span.status.status_code,
        )
        for span in pipeline.spans()
    ]


def _metric_values(pipeline: Pipeline) -> list[Any]:
    found = []
    for name in (A.METRIC_FINDINGS, A.METRIC_RETURNED_ROWS):
        for labels, point in pipeline.points(name):
            value = point.value if hasattr(point, "value") else (point.count, point.sum, tuple(point.bucket_counts))
            found.append((name, sorted(labels.items()), value))
    durations = sorted((sorted(labels.items()), p.count) for labels, p in pipeline.points(A.METRIC_OPERATION_DURATION))
    return [*sorted(found, key=repr), durations]


def test_what_leaves_the_process_is_the_same_as_without_the_memo() -> None:
    """Spans, finding events (rule order included), metrics and log records: equal with and without memory."""
    rules = {"slow_query": {"threshold_ms": 100}}
    remembered, judged = _run(True, rules), _run(False, rules)
    assert _memo(remembered).hits >= 4
    assert _memo(judged).hits == 0
    assert _exported(remembered) == _exported(judged)
    assert _metric_values(remembered) == _metric_values(judged)
    assert [str(r.log_record.body) for r in remembered.log_records()] == [
        str(r.log_record.body) for r in judged.log_records()
    ]
    assert ["missing_tenant_filter", "slow_query"] in [rules_of(span) for span in remembered.spans()]


def test_another_request_tenant_is_judged_again(pipeline: Pipeline) -> None:
    """The same db span is clean inside a request of its own tenant and stale inside another tenant's request."""
    with pipeline.tracer.start_as_current_span("GET /a", kind=SpanKind.SERVER, attributes={A.TENANT_ID: "acme"}):
        pipeline.db_span(CLEAN, name="own")
    with pipeline.tracer.start_as_current_span("GET /b", kind=SpanKind.SERVER, attributes={A.TENANT_ID: "globex"}):
        pipeline.db_span(CLEAN, name="other")
    with pipeline.tracer.start_as_current_span("GET /a", kind=SpanKind.SERVER, attributes={A.TENANT_ID: "acme"}):
        pipeline.db_span(CLEAN, name="own again")
    spans = {span.name: span for span in pipeline.spans() if span.kind is SpanKind.CLIENT}
    assert rules_of(spans["own"]) == []
    assert rules_of(spans["other"]) == ["stale_tenant_context"]
    assert rules_of(spans["own again"]) == []
    assert _memo(pipeline).hits == 1


@pytest.mark.parametrize(
    "change",
    [
        {"tenant_values": ("globex",)},  # cross_tenant
        {"role": "superuser", "operation": "UPDATE"},  # superuser_write
        {"returned_rows": 50_000},  # large_result
        {"tenant_id": None},  # no_tenant_context
    ],
)
def test_any_changed_fact_is_judged_in_full(pipeline: Pipeline, change: dict[str, Any]) -> None:
    pipeline.db_span(CLEAN)
    pipeline.db_span(replace(CLEAN, **change))
    assert _memo(pipeline).hits == 0
    first, second = pipeline.spans()
    assert rules_of(first) == []
    assert rules_of(second) != []


def test_a_trailing_fetch_duration_is_not_part_of_the_key(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN, extra={A.DB_FETCH_DURATION: 0.25})
    pipeline.db_span(CLEAN, extra={A.DB_FETCH_DURATION: 0.75})
    assert _memo(pipeline).hits == 1
    assert [(span.attributes or {})[A.DB_FETCH_DURATION] for span in pipeline.spans()] == [0.25, 0.75]


def test_a_long_statement_is_still_capped_on_every_repeat() -> None:
    """Whether the attributes are fit to export is remembered with the facts: a repeat is capped like the first."""
    pipeline = build_pipeline(max_string_length=64)
    statement = "SELECT id FROM objectives WHERE organization_id = :tenant AND " + " AND ".join(
        f"c{i} = :p{i}" for i in range(30)
    )
    for _ in range(3):
        pipeline.db_span(CLEAN, statement=statement)
    assert _memo(pipeline).hits == 2
    exported = [str((span.attributes or {})[A.DB_STATEMENT]) for span in pipeline.spans()]
    assert len(set(exported)) == 1
    assert len(exported[0]) < len(statement)
    assert "cut" in exported[0]


def test_a_statement_literal_is_masked_on_every_repeat(pipeline: Pipeline) -> None:
    for _ in range(2):
        pipeline.db_span(CLEAN, statement="SELECT id FROM objectives WHERE organization_id = 'acme'")
    assert _memo(pipeline).hits == 1
    assert [(span.attributes or {})[A.DB_STATEMENT] for span in pipeline.spans()] == [
        "SELECT id FROM objectives WHERE organization_id = ?"
    ] * 2


def test_a_new_tenant_hierarchy_forgets_what_was_remembered(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN)
    try:
        set_tenant_hierarchy("organization", ["team"])
        pipeline.db_span(CLEAN)
        pipeline.db_span(CLEAN)
    finally:
        set_tenant_hierarchy("tenant")
    assert _memo(pipeline).hits == 1  # the third span, remembered under the new hierarchy


def test_unhashable_attribute_values_are_judged_in_full() -> None:
    memo = VerdictMemo()
    key = memo.key({A.DB_TENANT_FILTER: "present", "custom.list": ["a", "b"]}, None)
    assert memo.get(key) is None
    memo.put(key, CLEAN, True)
    assert memo.get(key) is None
    assert len(memo) == 0


def test_the_memo_is_bounded() -> None:
    memo = VerdictMemo(size=3)
    for index in range(10):
        memo.put(memo.key({A.DB_TENANT_FILTER: "present", A.CODE_LINENO: index}, None), CLEAN, True)
        assert len(memo) <= 3


def test_with_duration_copies_every_field() -> None:
    """Every field set to a value of its own: the copy equals ``dataclasses.replace`` and shares nothing mutable."""
    values: dict[str, Any] = {}
    for index, field in enumerate(fields(SpanFacts)):
        default = getattr(SpanFacts(), field.name)
        values[field.name] = (f"v{index}",) if isinstance(default, tuple) else index
    facts = SpanFacts(**values)
    copy = with_duration(facts, 12.5)
    assert copy == replace(facts, duration_ms=12.5)
    assert copy is not facts
    assert facts.duration_ms != 12.5


def _reads_duration(rule: object) -> bool:
    source = ast.parse(inspect.getsource(inspect.getmodule(rule)))  # type: ignore[arg-type]
    return any(isinstance(node, ast.Attribute) and node.attr == "duration_ms" for node in ast.walk(source))


@pytest.mark.parametrize("rule", rules_for("statement"), ids=lambda rule: rule.id)
def test_only_measured_rules_read_the_duration(rule: Any) -> None:
    """The memo's premise: a statement rule that reads ``duration_ms`` says so (``RuleMeta.measured``), so the
    processor runs it on every span, remembered or not."""
    assert _reads_duration(rule) == rule.meta.measured


@pytest.mark.parametrize("rule", (*rules_for("stream"), *rules_for("findings")), ids=lambda rule: rule.id)
def test_windowed_rules_do_not_read_the_duration(rule: Any) -> None:
    """The windows see a fast clean repeat's remembered facts, which carry the first span's duration."""
    assert not _reads_duration(rule)


def test_measured_rules_say_how_fast_a_statement_is_quiet() -> None:
    assert measured_quiet_up_to(Settings()) == 500.0
    assert measured_quiet_up_to(Settings.model_validate({"rules": {"slow_query": {"threshold_ms": 80}}})) == 80.0
    assert measured_quiet_up_to(Settings.model_validate({"rules": {"slow_query": {"enabled": False}}})) == math.inf
    assert Rule().quiet_up_to(Settings()) == -math.inf  # a measured rule that does not say: judged every time


def test_where_nothing_repeats_the_memo_steps_aside_and_tries_again_later() -> None:
    from tenantwatch.processors import _memo

    memo = VerdictMemo()
    for index in range(_memo.PROBE):  # every span a new one: no lookup hits
        key = memo.key({A.DB_TENANT_FILTER: "present", A.CODE_LINENO: index}, None)
        assert memo.get(key) is None
        memo.put(key, CLEAN, True)
    assert memo.pauses == 1
    assert len(memo) == 0  # forgotten: no memory held while it cannot help
    attributes = {A.DB_TENANT_FILTER: "present", A.CODE_LINENO: -1}
    for _ in range(_memo.PAUSE):
        assert memo.key(attributes, None) is None  # no key built, no lookup, nothing stored
    key = memo.key(attributes, None)
    assert key is not None
    memo.put(key, CLEAN, True)
    assert memo.get(memo.key(attributes, None)) is not None


def test_a_repeating_stream_keeps_the_memo_on() -> None:
    from tenantwatch.processors import _memo

    memo = VerdictMemo()
    for index in range(3 * _memo.PROBE):
        key = memo.key({A.DB_TENANT_FILTER: "present", A.CODE_LINENO: index % 100}, None)
        if memo.get(key) is None:
            memo.put(key, CLEAN, True)
    assert memo.pauses == 0
    assert memo.hits == 3 * _memo.PROBE - 100
