"""injection_signal: request values in the SQL text, attack patterns in requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from processor_support import CLEAN
from rule_support import DEFAULTS, rules

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("request value in the SQL text", replace(CLEAN, request_values_in_sql=("query.q",)), ["injection_signal"]),
    ("bound parameters only: no request value in the text", CLEAN, []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_injection_signal_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


# --- stage request: attack patterns the middleware recorded on the server span ----------------------------------


def judge(attributes: Mapping[str, Any], **settings: Any) -> list[Finding]:
    from tenantwatch.processors.requests import judge_request, request_facts

    chosen = load_settings(environ={}, **settings) if settings else DEFAULTS
    return judge_request(attributes, request_facts(attributes), chosen)


def test_attack_patterns_on_a_request_are_one_finding_naming_route_and_patterns() -> None:
    attributes = {A.HTTP_ATTACK_PATTERNS: ("sqli:query.q", "xss:query.name"), A.HTTP_ROUTE: "/search"}
    (finding,) = judge(attributes)
    assert (finding.rule, finding.severity) == ("injection_signal", "high")
    assert finding.message == "request to /search carries attack patterns: sqli:query.q, xss:query.name"


def test_request_fingerprint_is_route_and_pattern_kinds_not_values() -> None:
    one = judge({A.HTTP_ATTACK_PATTERNS: ("sqli:query.q",), A.HTTP_ROUTE: "/search"})[0]
    other_field = judge({A.HTTP_ATTACK_PATTERNS: ("sqli:query.term",), A.HTTP_ROUTE: "/search"})[0]
    other_route = judge({A.HTTP_ATTACK_PATTERNS: ("sqli:query.q",), A.HTTP_ROUTE: "/export"})[0]
    assert one.fingerprint == other_field.fingerprint != other_route.fingerprint


def test_request_stage_off_with_the_rule_and_silent_without_patterns() -> None:
    attributes = {A.HTTP_ATTACK_PATTERNS: ("sqli:query.q",)}
    assert judge(attributes, rules={"injection_signal": {"enabled": False}}) == []
    assert judge({A.HTTP_ATTACK_PATTERNS: ()}) == []
