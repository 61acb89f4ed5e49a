"""no_tenant_context: tenant-scoped statements with no tenant in context."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import CLEAN
from rule_support import rules

from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("tenant table with no tenant", replace(CLEAN, tenant_id=None, tenant_values=()), ["no_tenant_context"]),
    ("no tenant but unscoped()", replace(CLEAN, tenant_id=None, unscoped_reason="nightly job"), []),
    (
        "no tenant, no tenant table",
        replace(CLEAN, tenant_id=None, tenant_tables=(), tenant_filter="not_applicable"),
        [],
    ),
    (
        "a tenant hierarchy's finer key alone is a tenant context",
        replace(CLEAN, tenant_id=None, tenant_values=(), tenant_keys=(("team", "t-1"),)),
        [],
    ),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_no_tenant_context_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected
