"""missing_tenant_filter: the statement rule that reads the scope walk's `missing` verdicts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import UNFILTERED
from rule_support import DEFAULTS, rules

from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("select without filter", UNFILTERED, ["missing_tenant_filter"]),
    ("missing filter inside unscoped() is tagged, not flagged", replace(UNFILTERED, unscoped_reason="billing"), []),
    (
        "unanalyzable statement: no guessing",
        replace(UNFILTERED, analysis_error="too deep", tenant_filter="unknown"),
        [],
    ),
    ("verdict unknown without error text", replace(UNFILTERED, tenant_filter="unknown"), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_missing_tenant_filter_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_missing_filter_is_one_finding_per_table_naming_scopes() -> None:
    facts = replace(
        UNFILTERED,
        tables=("objectives", "key_results"),
        tenant_tables=("objectives", "key_results"),
        unfiltered=("cte:recent:objectives", "main:objectives", "subquery:1:key_results"),
    )
    found = evaluate(facts, DEFAULTS)
    assert [(f.rule, f.table) for f in found] == [
        ("missing_tenant_filter", "objectives"),
        ("missing_tenant_filter", "key_results"),
    ]
    assert "cte:recent" in found[0].message and "main" in found[0].message
    assert "subquery:1" in found[1].message
    assert all(f.severity == "critical" for f in found)
