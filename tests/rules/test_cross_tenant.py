"""cross_tenant: tenant values of filters and written rows against the context tenant."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import CLEAN
from rule_support import ADMIN_INSERT, DEFAULTS, UPDATE_ALL, rules

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


def test_cross_tenant_message_shows_values_canonically() -> None:
    """SQLite binds ``uuid.hex``, the context holds the dashed form: the message shows both dashed (one form per
    tenant, so the reader compares like with like), and two forms of one foreign value are one value."""
    own, other = "2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10", "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    facts = replace(
        CLEAN,
        tenant_id=own.upper().replace("-", ""),
        tenant_values=(other.replace("-", ""), other.upper(), own.replace("-", "")),
        written_tenant_values=(" 42",),
    )
    (finding,) = evaluate(facts, DEFAULTS)
    assert finding.message == (
        f"SELECT on objectives filters on tenant '{other}' and writes tenant '42' but the context tenant is '{own}'"
    )


def test_identity_message_shows_the_context_tenant_canonically() -> None:
    facts = replace(
        UPDATE_BY_KEY,
        tenant_id="2F1C6A8E5B7D4C1E9A3F0D2B4C6E8A10",
        identity_tenant_values=("9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",),
        identity_tenant_rows=(1,),
    )
    (finding,) = evaluate(facts, DEFAULTS)
    assert finding.message.endswith("but the context tenant is '2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10'")


# --- ORM identity: the tenant of the instances a flush writes or a load goes through -----------------------------

UPDATE_BY_KEY = replace(
    UPDATE_ALL,
    main_table="objectives",
    identity=("main:objectives",),
    unscoped_writes=(),
    tenant_filter="present",
    identity_kind="write",
    identity_column="objectives.organization_id",
)


def test_flushed_instances_of_another_tenant_are_cross_tenant_with_their_row_count() -> None:
    facts = replace(UPDATE_BY_KEY, identity_tenant_values=("acme", "globex"), identity_tenant_rows=(3, 2))
    (finding,) = evaluate(facts, DEFAULTS)
    assert finding.rule == "cross_tenant"
    assert finding.severity == "critical"
    assert finding.table == "objectives"
    assert "writes 2 rows of tenant 'globex'" in finding.message
    assert "objectives.organization_id" in finding.message


def test_a_lazy_load_through_another_tenants_parent_is_a_load() -> None:
    facts = replace(
        CLEAN,
        identity_kind="load",
        identity_column="goals.organization_id",
        identity_tenant_values=("globex",),
        identity_tenant_rows=(1,),
    )
    (finding,) = evaluate(facts, DEFAULTS)
    assert "loads through 1 row of tenant 'globex'" in finding.message


def test_instances_of_the_context_tenant_in_another_form_are_not_cross_tenant() -> None:
    tenant = "2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10"
    facts = replace(
        UPDATE_BY_KEY, tenant_id=tenant, identity_tenant_values=(tenant.replace("-", ""),), identity_tenant_rows=(4,)
    )
    assert rules(facts) == []


def test_instances_without_a_tenant_in_context_are_not_judged() -> None:
    facts = replace(UPDATE_BY_KEY, tenant_id=None, identity_tenant_values=("globex",), identity_tenant_rows=(1,))
    assert "cross_tenant" not in rules(facts)


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
