"""The test_data rule and its patterns, from span facts alone: masks, the pattern a mask came from, and the cleanup
statement it suggests (built from table, column and pattern, never from a value)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenantwatch.config import DEFAULT_TEST_DATA_PATTERNS, RulesSettings, Settings
from tenantwatch.core.patterns import TestDataPatterns, fixed_part
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts
from tenantwatch.rules.test_data import SUGGESTION_HEADER, TestDataSettings

INSERT = SpanFacts(
    operation="INSERT",
    main_table="users",
    tables=("users",),
    tenant_tables=("users",),
    tenant_filter="present",
    written_tenant_values=("acme",),
    statement_fingerprint="f00dfeed000000aa",
    tenant_id="acme",
    test_data=("users.email=***@example.***",),
)


def _test_data_findings(facts: SpanFacts, settings: Settings | None = None) -> list[object]:
    return [f for f in evaluate(facts, settings or Settings()) if f.rule == "test_data"]


@pytest.mark.parametrize(
    ("pattern", "fixed"),
    [
        (DEFAULT_TEST_DATA_PATTERNS[0], ".test"),
        (DEFAULT_TEST_DATA_PATTERNS[1], "@example."),
        (DEFAULT_TEST_DATA_PATTERNS[2], "tenant-a"),
        (DEFAULT_TEST_DATA_PATTERNS[3], "550e8400-e29b-41d4-a716-"),
        (r"foo|bar", ""),
        (r"[0-9]+", ""),
    ],
)
def test_fixed_part_is_the_text_the_pattern_spells_out(pattern: str, fixed: str) -> None:
    assert fixed_part(pattern) == fixed


@pytest.mark.parametrize(
    ("value", "mask"),
    [
        ("alice@example.com", "***@example.***"),
        ("build.test", "***.test"),
        ("TENANT-A", "tenant-a"),
        ("my tenant-a org", "***tenant-a***"),
        ("550e8400-e29b-41d4-a716-446655440000", "550e8400-e29b-41d4-a716-***"),
        ("alice@corp.io", None),
        ("contest", None),
        ("tenant-ab", None),
    ],
)
def test_masks_keep_only_the_patterns_fixed_part(value: str, mask: str | None) -> None:
    patterns = TestDataPatterns(DEFAULT_TEST_DATA_PATTERNS)
    assert patterns.mask(value) == mask
    if mask is not None:
        assert patterns.pattern_of(mask) is not None


def test_insert_suggests_a_tenant_scoped_delete_by_pattern() -> None:
    (finding,) = _test_data_findings(INSERT)
    assert finding.severity == "critical"
    assert finding.table == "users"
    assert finding.suggestion is not None
    lines = finding.suggestion.splitlines()
    assert lines[0] == SUGGESTION_HEADER
    assert lines[1] == "DELETE FROM users WHERE organization_id = :tenant AND email ~ '(?i)@example\\.';"
    assert "-- :tenant = 'acme'" in lines


def test_update_suggests_a_select_of_the_rows_to_review() -> None:
    facts = replace(INSERT, operation="UPDATE", test_data=("users.name=***.test", "users.email=***.test"))
    (finding,) = _test_data_findings(facts)
    assert finding.suggestion is not None
    assert "DELETE" not in finding.suggestion
    assert (
        "SELECT * FROM users WHERE organization_id = :tenant AND "
        "(name ~ '(?i)\\y[\\w.-]+\\.test\\y' OR email ~ '(?i)\\y[\\w.-]+\\.test\\y');"
    ) in finding.suggestion


def test_suggestion_uses_the_configured_tenant_column_and_skips_it_on_global_tables() -> None:
    settings = Settings(tenant_tables={"users": "org"})
    (finding,) = _test_data_findings(INSERT, settings)
    assert finding.suggestion is not None
    assert "WHERE org = :tenant AND email ~" in finding.suggestion
    assert "assumed" not in finding.suggestion
    global_table = replace(INSERT, tenant_tables=(), test_data=("countries.name=tenant-a",), main_table="countries")
    (finding,) = _test_data_findings(global_table)
    assert finding.suggestion is not None
    assert "DELETE FROM countries WHERE name ~ '(?i)\\ytenant-a\\y';" in finding.suggestion


def test_an_unknown_column_is_named_not_guessed() -> None:
    (finding,) = _test_data_findings(replace(INSERT, test_data=("$2=***@example.***",)))
    assert finding.suggestion is not None
    assert "DELETE" not in finding.suggestion
    assert "-- $2=***@example.***: column not known; find it in the statement" in finding.suggestion.splitlines()


def test_no_test_data_no_finding_and_the_rule_can_be_switched_off() -> None:
    assert _test_data_findings(replace(INSERT, test_data=())) == []
    off = Settings(rules=RulesSettings(test_data=TestDataSettings(enabled=False)))
    assert _test_data_findings(INSERT, off) == []
    warning = Settings(rules=RulesSettings(test_data=TestDataSettings(severity="warning")))
    assert [f.severity for f in _test_data_findings(INSERT, warning)] == ["warning"]


CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("test data written", INSERT, ["test_data"]),
    ("nothing matched", replace(INSERT, test_data=()), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_test_data_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert [f.rule for f in evaluate(facts, Settings())] == expected
