"""slow_query: statements slower than the threshold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from processor_support import CLEAN
from rule_support import rules

from tenantwatch.config import load_settings
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("501 ms", replace(CLEAN, duration_ms=501.0), ["slow_query"]),
    ("500 ms", replace(CLEAN, duration_ms=500.0), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_slow_query_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_a_key_of_another_rule_is_refused_even_with_that_rules_default_value(tmp_path: Path) -> None:
    """One shared settings type let ``slow_query: {per_table: {}}`` pass because the value equalled the default."""
    from tenantwatch.config import ConfigError

    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  slow_query: {per_table: {}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "rules.slow_query.per_table: 'per_table' is not a slow_query setting (it belongs to large_result)" in str(
        info.value
    )
