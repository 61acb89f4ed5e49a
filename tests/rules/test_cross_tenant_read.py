"""cross_tenant_read: unfiltered reads whose returned rows belong to another tenant (counts from the instrumentation).

The rows themselves are inspected by the SQLAlchemy instrumentation on a real database:
tests/instrumentation/test_cross_tenant_reads.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import UNFILTERED
from rule_support import DEFAULTS, rules

from tenantwatch.config import ConfigError, load_settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

LEAKED = replace(
    UNFILTERED,
    returned_rows=3,
    keyed=(),
    tenant_rows_inspected=3,
    tenant_rows_own=1,
    tenant_rows_other=2,
    tenant_rows_uninspected=0,
    tenant_rows_tables=("objectives",),
    tenant_rows_other_tables=("objectives",),
)
"""A read without filter that returned two rows of another tenant."""

OWN_ONLY = replace(LEAKED, tenant_rows_own=3, tenant_rows_other=0, tenant_rows_other_tables=())

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("rows of another tenant", LEAKED, ["missing_tenant_filter", "cross_tenant_read"]),
    ("only the context tenant's rows", OWN_ONLY, ["missing_tenant_filter"]),
    ("nothing inspected", replace(UNFILTERED, tenant_rows_inspected=None), ["missing_tenant_filter"]),
    ("inside unscoped(reason)", replace(LEAKED, unscoped_reason="support console"), []),
    ("no tenant in context", replace(LEAKED, tenant_id=None), ["missing_tenant_filter", "no_tenant_context"]),
    (
        "unscoped(reason, rules=[missing_tenant_filter]) leaves it on",
        replace(LEAKED, unscoped_reason="export", unscoped_rules=("missing_tenant_filter",)),
        ["cross_tenant_read"],
    ),
    (
        "inherited table with another tenant's row",
        replace(
            LEAKED,
            tenant_filter="inherited",
            unfiltered=(),
            inherited=("join:l:labels:fk_join",),
            tenant_rows_tables=("labels",),
            tenant_rows_other_tables=("labels",),
        ),
        ["cross_tenant_read"],
    ),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_cross_tenant_read_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_finding_is_critical_and_gives_counts_never_values() -> None:
    facts = replace(LEAKED, tenant_rows_inspected=1000, tenant_rows_uninspected=9000, tenant_rows_other=500)
    (finding,) = [f for f in evaluate(facts, DEFAULTS) if f.rule == "cross_tenant_read"]
    assert finding.severity == "critical"
    assert finding.table == "objectives"
    assert "500 row(s) of another tenant" in finding.message
    assert "1000 inspected, 9000 more not inspected" in finding.message


def test_message_says_how_the_row_was_reached() -> None:
    by_key = replace(LEAKED, keyed=("main:objectives",))
    (finding,) = [f for f in evaluate(by_key, DEFAULTS) if f.rule == "cross_tenant_read"]
    assert "a lookup by key without a tenant filter" in finding.message
    inherited = replace(
        LEAKED,
        unfiltered=(),
        inherited=("join:l:labels:fk_join",),
        tenant_rows_tables=("labels",),
        tenant_rows_other_tables=("labels",),
    )
    (finding,) = evaluate(inherited, DEFAULTS)
    assert finding.table == "labels"
    assert "reached through a foreign key" in finding.message


def test_severity_and_switch_from_the_rules_file() -> None:
    settings = load_settings(environ={}, rules={"cross_tenant_read": {"severity": "high", "max_rows": 10}})
    (finding,) = [f for f in evaluate(LEAKED, settings) if f.rule == "cross_tenant_read"]
    assert finding.severity == "high"
    assert settings.rules.cross_tenant_read.max_rows == 10
    off = load_settings(environ={}, rules={"cross_tenant_read": {"enabled": False}})
    assert rules(LEAKED, off) == ["missing_tenant_filter"]


def test_enforce_rules_cannot_list_it() -> None:
    """It judges rows already read: enforce mode could never block it, so saying so is a configuration error."""
    with pytest.raises(ConfigError, match="cross_tenant_read judges rows already read"):
        load_settings(environ={}, mode="enforce", enforce={"rules": ["missing_tenant_filter", "cross_tenant_read"]})
    assert "cross_tenant_read" not in DEFAULTS.enforce.rules


def test_with_a_tenant_hierarchy_it_names_the_key_that_differed() -> None:
    from tenantwatch.config import Settings

    settings = Settings(
        tenant_keys={
            "organization": {"columns": ["organization_id"], "root": "organizations"},
            "team": {"columns": ["team_id"], "parent": "organization", "root": "teams"},
        }
    )
    facts = replace(LEAKED, tenant_keys=(("team", "red"),), tenant_rows_keys=("organization", "team"))
    by_team = replace(facts, tenant_rows_other_keys=("team",))
    (finding,) = [f for f in evaluate(by_team, settings) if f.rule == "cross_tenant_read"]
    assert finding.tenant_key == "team"
    assert "2 row(s) of another team from objectives (no tenant filter)" in finding.message
    by_both = replace(facts, tenant_rows_other_keys=("organization", "team"))
    (finding,) = [f for f in evaluate(by_both, settings) if f.rule == "cross_tenant_read"]
    assert finding.tenant_key == "organization"
    assert "of another organization" in finding.message
    (single,) = [f for f in evaluate(by_team, DEFAULTS) if f.rule == "cross_tenant_read"]
    assert single.tenant_key is None and "of another tenant" in single.message  # one key: as before


def test_with_a_tenant_hierarchy_a_latent_read_lists_the_keys_compared() -> None:
    own = replace(LEAKED, tenant_rows_own=3, tenant_rows_other=0, tenant_rows_other_tables=())
    (finding,) = evaluate(replace(own, tenant_rows_keys=("organization", "team")), DEFAULTS)
    assert finding.rule == "missing_tenant_filter"
    assert "the 3 row(s) it returned were all the context's (organization, team)" in finding.message
    (finding,) = evaluate(own, DEFAULTS)
    assert "the 3 row(s) it returned were all the context tenant's" in finding.message  # one key: as before
