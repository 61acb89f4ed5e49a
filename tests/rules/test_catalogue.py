"""The catalogue as a whole: one stem per rule (module, settings, metadata, test module, doc page), evaluation order,
several rules at once, fingerprints, severities and switches from the rules file, and a rule that raises."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from processor_support import CLEAN, UNFILTERED
from rule_support import ADMIN_INSERT, DEFAULTS, rules

from tenantwatch.config import RULE_IDS, RulesSettings, Settings, load_settings
from tenantwatch.core.findings import Finding, finding_fingerprint
from tenantwatch.core.rule import RuleSettings, all_rules, evaluate, rule_by_id, rules_for
from tenantwatch.facts import SpanFacts
from tenantwatch.rules import CATALOGUE
from tenantwatch.rules.large_result import LargeResult

ROOT = Path(__file__).resolve().parents[2]

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("correct filtered select", CLEAN, []),
    (
        "several rules at once, in catalogue order",
        replace(UNFILTERED, tenant_values=("globex",), returned_rows=5000, duration_ms=900.0),
        ["missing_tenant_filter", "cross_tenant", "large_result", "slow_query"],
    ),
]


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_catalogue_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


# --- one stem per rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_every_rule_has_its_module_test_module_and_doc_page(rule_id: str) -> None:
    module = importlib.import_module(f"tenantwatch.rules.{rule_id}")
    rule = module.RULE
    assert rule.id == rule_id and rule_by_id(rule_id) is rule
    meta = rule.meta
    assert meta.title and meta.summary and meta.remediation and meta.categories and meta.stages
    assert issubclass(meta.settings, RuleSettings) and meta.settings.model_config.get("extra") == "forbid"
    assert RulesSettings.model_fields[rule_id].annotation is meta.settings  # rules.<id> is validated with it
    assert (ROOT / "tests" / "rules" / f"test_{rule_id}.py").is_file()
    page = ROOT / "docs" / "rules" / f"{rule_id}.md"
    assert page.is_file(), page
    assert page.read_text(encoding="utf-8").startswith(f"# {rule_id}")


@pytest.mark.parametrize("rule", rules_for("statement"), ids=lambda r: r.id)
def test_every_statement_rule_has_a_case_where_it_fires_and_one_where_it_does_not(rule: object) -> None:
    rule_id = rule.id
    path = ROOT / "tests" / "rules" / f"test_{rule_id}.py"
    spec = importlib.util.spec_from_file_location(f"_cases_{rule_id}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = module.CASES
    assert any(rule_id in expected for _, _, expected in cases)
    assert any(rule_id not in expected for _, _, expected in cases)


def test_registry_is_the_catalogue_in_order_and_rules_describe_themselves() -> None:
    assert all_rules() == CATALOGUE
    assert [rule.id for rule in CATALOGUE] == list(RULE_IDS)
    assert set(RulesSettings.model_fields) == set(RULE_IDS)
    for rule in CATALOGUE:
        assert str(rule) == f"{rule.id}: {rule.meta.summary}"
    statement_ids = [rule.id for rule in rules_for("statement")]
    assert statement_ids == [i for i in RULE_IDS if i in statement_ids]


# --- fingerprints, severities, switches ------------------------------------------------------------------------


def test_fingerprint_is_stable_across_values_and_differs_by_location() -> None:
    one = evaluate(replace(CLEAN, tenant_values=("globex",)), DEFAULTS)[0]
    other_values = evaluate(replace(CLEAN, tenant_values=("initech",), tenant_id="umbrella"), DEFAULTS)[0]
    moved = evaluate(replace(CLEAN, tenant_values=("globex",), code_lineno=99), DEFAULTS)[0]
    assert one.fingerprint == other_values.fingerprint == finding_fingerprint("cross_tenant", CLEAN)
    assert moved.fingerprint != one.fingerprint


def test_severity_overrides_and_disabled_rules(rules_file: Callable[[str], Path]) -> None:
    settings = load_settings(
        rules_file(
            """
rules:
  missing_tenant_filter: {severity: warning}
  superuser_write: {enabled: false}
"""
        ),
        environ={},
    )
    (finding,) = evaluate(UNFILTERED, settings)
    assert finding.severity == "warning"
    assert rules(ADMIN_INSERT, settings) == []
    assert rules(ADMIN_INSERT) == ["superuser_write"]


def test_default_severities_and_switches_are_the_metadata() -> None:
    for rule in CATALOGUE:
        assert DEFAULTS.severity(rule.id) == rule.meta.severity
        assert DEFAULTS.enabled(rule.id) is rule.meta.enabled
    assert [rule.id for rule in CATALOGUE if not rule.meta.enabled] == ["off_hours_write"]


# --- a broken rule ---------------------------------------------------------------------------------------------


def test_a_rule_that_raises_is_logged_once_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: LargeResult, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(LargeResult, "__call__", broken)
    facts = replace(UNFILTERED, duration_ms=900.0)
    with caplog.at_level(logging.ERROR, logger="tenantwatch.core.rule"):
        first = rules(facts)
        second = rules(facts)
    assert first == second == ["missing_tenant_filter", "slow_query"]
    logged = [r for r in caplog.records if "large_result" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
