"""superuser_write: writes by superuser roles."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import CLEAN
from rule_support import ADMIN_INSERT, DEFAULTS, rules

from tenantwatch.config import load_settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("superuser insert", ADMIN_INSERT, ["superuser_write"]),
    ("superuser role matched case-insensitively", replace(ADMIN_INSERT, role="SuperUser"), ["superuser_write"]),
    (
        "superuser write inside unscoped() still flagged",
        replace(ADMIN_INSERT, unscoped_reason="fix"),
        ["superuser_write"],
    ),
    ("superuser read", replace(CLEAN, role="admin"), []),
    ("member write", replace(ADMIN_INSERT, role="member"), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_superuser_write_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_superuser_write_names_user_and_role() -> None:
    (finding,) = evaluate(ADMIN_INSERT, DEFAULTS)
    assert "'root-7'" in finding.message and "'admin'" in finding.message
    assert finding.severity == "high"


def test_custom_superuser_roles() -> None:
    settings = load_settings(environ={}, superuser_roles=["owner"])
    assert rules(replace(ADMIN_INSERT, role="owner"), settings) == ["superuser_write"]
    assert rules(ADMIN_INSERT, settings) == []
