"""slow_query: statements slower than the threshold."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import CLEAN
from rule_support import (
    rules,
)

from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("501 ms", replace(CLEAN, duration_ms=501.0), ["slow_query"]),
    ("500 ms", replace(CLEAN, duration_ms=500.0), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_slow_query_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected
