"""``RuleMeta.needs``: evaluate skips a rule whose needed facts are all absent, so each rule's ``needs`` must be
sound: without those facts the rule finds nothing, whatever else the facts say and in either profile."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

import pytest

from tenantwatch.config import load_settings
from tenantwatch.core.rule import evaluate, rules_for
from tenantwatch.facts import SpanFacts

_READ = SpanFacts(
    operation="SELECT",
    main_table="objectives",
    tables=("objectives", "key_results"),
    tenant_tables=("objectives", "key_results"),
    tenant_filter="missing",
    unfiltered=("main:objectives",),
    inherited=("main:key_results:fk objectives",),
    tenant_values=("globex",),
    tenant_id="acme",
    user_id="u-1",
    role="admin",
    statement_fingerprint="f00dfeed000000ff",
    returned_rows=50_000,
    duration_ms=9_000.0,
    tenant_rows_inspected=3,
    tenant_rows_other=2,
    tenant_rows_tables=("objectives",),
    tenant_rows_other_tables=("objectives",),
    request_values_in_sql=("query.q",),
    request_tenant="initech",
    rls_tenant="",
    test_data=("email: bob@example.com",),
)
_WRITE = replace(
    _READ,
    operation="UPDATE",
    unfiltered=(),
    inherited=(),
    unscoped_writes=("objectives",),
    written_tenant_values=("globex",),
    tenant_id=None,
    request_tenant=None,
    rls_tenant="globex",
)
_VARIANTS = (_READ, _WRITE, replace(_READ, tenant_id=None), replace(_WRITE, tenant_id="acme"))
_SETTINGS = (load_settings(environ={}), load_settings(environ={}, profile="strict"))
_NEEDING = [rule for rule in rules_for("statement") if rule.meta.needs]
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(SpanFacts)}


def test_the_rules_that_cannot_fire_without_some_facts_say_so() -> None:
    assert len(_NEEDING) >= 10
    for rule in _NEEDING:
        assert set(rule.meta.needs) <= set(_DEFAULTS), rule.id


@pytest.mark.parametrize("rule", _NEEDING, ids=lambda rule: rule.id)
def test_without_the_facts_it_needs_a_rule_finds_nothing(rule: Any) -> None:
    fired = False
    for settings in _SETTINGS:
        for facts in _VARIANTS:
            fired = fired or bool(rule(facts, settings))
            blank = replace(facts, **{name: _DEFAULTS[name] for name in rule.meta.needs})
            assert rule(blank, settings) == (), (rule.id, facts.operation)
    assert fired, f"no variant makes {rule.id} fire: the check above would prove nothing"


def test_evaluate_does_not_call_a_rule_that_cannot_fire(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[str] = []
    for rule in rules_for("statement"):
        original = type(rule).__call__

        def counting(self: Any, facts: SpanFacts, settings: Any, _original: Any = original) -> Any:
            called.append(self.id)
            return _original(self, facts, settings)

        monkeypatch.setattr(type(rule), "__call__", counting)
    clean = SpanFacts(
        operation="SELECT",
        main_table="objectives",
        tables=("objectives",),
        tenant_tables=("objectives",),
        tenant_filter="present",
        tenant_values=("acme",),
        tenant_id="acme",
        returned_rows=3,
        duration_ms=2.0,
    )
    assert evaluate(clean, load_settings(environ={})) == []
    assert sorted(called) == ["cross_tenant", "large_result", "no_tenant_context", "slow_query"]
