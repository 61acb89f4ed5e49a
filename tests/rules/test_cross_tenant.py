"""cross_tenant: tenant values of filters and written rows against the context tenant."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import CLEAN
from rule_support import ADMIN_INSERT, DEFAULTS, rules

from tenantwatch.config import Settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("filter on another tenant", replace(CLEAN, tenant_values=("globex",)), ["cross_tenant"]),
    ("IN list with another tenant", replace(CLEAN, tenant_values=("acme", "globex")), ["cross_tenant"]),
    (
        "written row of another tenant",
        replace(ADMIN_INSERT, role="member", written_tenant_values=("globex",)),
        ["cross_tenant"],
    ),
    ("own tenant written", replace(ADMIN_INSERT, role="member"), []),
    ("numeric tenant compared as text", replace(CLEAN, tenant_id="7", tenant_values=("7",)), []),
    (
        "uuid.hex bound, dashed UUID in context",
        replace(
            CLEAN,
            tenant_id="2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10",
            tenant_values=("2f1c6a8e5b7d4c1e9a3f0d2b4c6e8a10", "{2F1C6A8E-5B7D-4C1E-9A3F-0D2B4C6E8A10}"),
        ),
        [],
    ),
    (
        "another UUID, hex bound",
        replace(
            CLEAN, tenant_id="2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10", tenant_values=("9b8a7c6d5e4f4a3b8c2d1e0f9a8b7c6d",)
        ),
        ["cross_tenant"],
    ),
    (
        "int tenant and its text",
        replace(CLEAN, tenant_id="7", tenant_values=(" 7",), written_tenant_values=("07",)),
        [],
    ),
    ("other tenant inside unscoped()", replace(CLEAN, tenant_values=("globex",), unscoped_reason="support"), []),
    (
        "other tenant value with no tenant in context is no_tenant_context, not cross_tenant",
        replace(CLEAN, tenant_values=("globex",), tenant_id=None),
        ["no_tenant_context"],
    ),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_cross_tenant_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_cross_tenant_message_names_values_and_context_tenant() -> None:
    (finding,) = evaluate(replace(CLEAN, tenant_values=("acme", "globex")), DEFAULTS)
    assert "'globex'" in finding.message and "'acme'" in finding.message
    assert finding.table == "objectives"


_HIERARCHY = Settings.model_validate(
    {
        "tenant_keys": {
            "organization": {"columns": ["organization_id"]},
            "team": {"columns": ["team_id"], "parent": "organization"},
        }
    }
)
_TEAM_CONTEXT = replace(CLEAN, tenant_keys=(("team", "t-1"),))


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (replace(_TEAM_CONTEXT, key_values=(("team", ("t-1",)),)), None),
        (
            replace(_TEAM_CONTEXT, key_values=(("team", ("t-2",)),)),
            "filters on team 't-2' but the context team is 't-1'",
        ),
        (
            replace(_TEAM_CONTEXT, written_key_values=(("team", ("t-2",)),)),
            "writes team 't-2' but the context team is 't-1'",
        ),
        (replace(CLEAN, key_values=(("team", ("t-2",)),)), None),  # no team in context: not compared
        (
            replace(_TEAM_CONTEXT, tenant_values=("globex",), key_values=(("team", ("t-1",)),)),
            "filters on organization 'globex' but the context organization is 'acme'",
        ),
    ],
    ids=["own team", "another team", "writes another team", "no team in context", "another organization"],
)
def test_cross_tenant_compares_each_key_with_the_same_key_of_the_context(
    facts: SpanFacts, expected: str | None
) -> None:
    findings = evaluate(facts, _HIERARCHY)
    if expected is None:
        assert not findings
    else:
        (finding,) = findings
        assert finding.rule == "cross_tenant"
        assert finding.message == f"SELECT on objectives {expected}"
