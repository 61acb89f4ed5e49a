"""large_result: reads returning more rows than the (per-table) threshold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from processor_support import CLEAN
from rule_support import ADMIN_INSERT, rules

from tenantwatch.config import load_settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("1001 rows", replace(CLEAN, returned_rows=1001), ["large_result"]),
    ("1000 rows", replace(CLEAN, returned_rows=1000), []),
    ("row count unknown", replace(CLEAN, returned_rows=None), []),
    ("large write is not a large result", replace(ADMIN_INSERT, role="member", returned_rows=5000), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_large_result_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_thresholds_and_per_table_overrides_from_rules_file(rules_file: Callable[[str], Path]) -> None:
    settings = load_settings(
        rules_file(
            """
rules:
  large_result: {threshold: 100, per_table: {audit_log: 50000, Objectives: 10}}
  slow_query: {threshold_ms: 50}
"""
        ),
        environ={},
    )
    assert rules(replace(CLEAN, returned_rows=11), settings) == ["large_result"]  # objectives override: 10
    assert rules(replace(CLEAN, returned_rows=10), settings) == []
    audit = replace(CLEAN, main_table="audit_log", tables=("audit_log",), returned_rows=20_000)
    assert rules(audit, settings) == []
    assert rules(replace(audit, returned_rows=50_001), settings) == ["large_result"]
    assert rules(replace(audit, main_table="public.audit_log", tables=("public.audit_log",)), settings) == []
    plans = replace(CLEAN, main_table="plans", tables=("plans",), returned_rows=101)
    assert rules(plans, settings) == ["large_result"]  # default threshold from the file: 100
    assert rules(replace(CLEAN, duration_ms=51.0), settings) == ["slow_query"]
    (finding,) = evaluate(replace(CLEAN, returned_rows=11), settings)
    assert "threshold for objectives 10" in finding.message


def test_main_table_override_is_more_specific_than_a_joined_tables() -> None:
    settings = load_settings(environ={}, rules={"large_result": {"per_table": {"objectives": 5, "audit_log": 500}}})
    joined = replace(CLEAN, tables=("audit_log", "objectives"), returned_rows=6)
    assert rules(joined, settings) == ["large_result"]
    assert rules(replace(joined, main_table=None), settings) == []  # first table with an override: audit_log
