"""stale_tenant_context: statements of another tenant than their request or RLS setting."""

from __future__ import annotations

from dataclasses import replace

import pytest
from opentelemetry.trace import SpanKind
from processor_support import CLEAN, Pipeline, rules_of
from rule_support import request, rules

from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("request for another tenant", replace(CLEAN, request_tenant="globex"), ["stale_tenant_context"]),
    (
        "tenant context lost in the request",
        replace(CLEAN, tenant_id=None, request_tenant="acme"),
        ["no_tenant_context", "stale_tenant_context"],
    ),
    ("request for the same tenant", replace(CLEAN, request_tenant="acme"), []),
    ("RLS setting of another tenant", replace(CLEAN, rls_tenant="globex"), ["stale_tenant_context"]),
    ("RLS setting missing", replace(CLEAN, rls_tenant=""), ["stale_tenant_context"]),
    ("RLS setting matches", replace(CLEAN, rls_tenant="acme"), []),
    (
        "RLS setting is the context UUID in another form",
        replace(
            CLEAN,
            tenant_id="2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10",
            tenant_values=(),
            rls_tenant="2f1c6a8e5b7d4c1e9a3f0d2b4c6e8a10",
        ),
        [],
    ),
    ("unscoped work in another tenant's request", replace(CLEAN, request_tenant="globex", unscoped_reason="job"), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_stale_tenant_context_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_stale_context_db_span_of_another_tenant_inside_a_request(pipeline: Pipeline) -> None:
    request(pipeline, "acme", replace(CLEAN, tenant_id="globex", tenant_values=("globex",)))
    db = next(s for s in pipeline.spans() if s.kind is SpanKind.CLIENT)
    assert "stale_tenant_context" in rules_of(db)


def test_stale_context_lost_tenant_inside_a_request(pipeline: Pipeline) -> None:
    request(pipeline, "acme", replace(CLEAN, tenant_id=None, tenant_values=()))
    db = next(s for s in pipeline.spans() if s.kind is SpanKind.CLIENT)
    assert set(rules_of(db)) == {"no_tenant_context", "stale_tenant_context"}


def test_no_stale_context_for_the_same_tenant_or_outside_requests(pipeline: Pipeline) -> None:
    request(pipeline, "acme", CLEAN)
    request(pipeline, None, CLEAN)
    pipeline.db_span(replace(CLEAN, tenant_id="globex", tenant_values=("globex",)))
    assert all(rules_of(s) == [] for s in pipeline.spans())
