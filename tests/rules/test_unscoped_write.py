"""unscoped_write: writes without a tenant filter or tenant column."""

from __future__ import annotations

from dataclasses import replace

import pytest
from rule_support import DEFAULTS, INSERT_NO_TENANT, UPDATE_ALL, rules

from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("update without filter", UPDATE_ALL, ["unscoped_write"]),
    ("insert without tenant column", INSERT_NO_TENANT, ["unscoped_write"]),
    ("unscoped write inside unscoped()", replace(UPDATE_ALL, unscoped_reason="migration"), []),
    ("unscoped write, verdict unknown", replace(UPDATE_ALL, analysis_error="parse error"), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_unscoped_write_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_unscoped_write_messages_say_what_is_wrong() -> None:
    (update,) = evaluate(UPDATE_ALL, DEFAULTS)
    (insert,) = evaluate(INSERT_NO_TENANT, DEFAULTS)
    assert "UPDATE on objectives has no tenant filter" in update.message
    assert "INSERT into objectives does not set the tenant column" in insert.message
