"""core.identity: when the tenant of the ORM instances a statement acts on decides its verdict, and when not."""

from __future__ import annotations

from dataclasses import replace

from tenantwatch.config import Settings
from tenantwatch.core.identity import apply_identity
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

FLUSH_UPDATE = SpanFacts(
    operation="UPDATE",
    main_table="tools",
    tables=("tools",),
    tenant_tables=("tools",),
    tenant_filter="missing",
    unscoped_writes=("tools",),
    statement_fingerprint="0123456789abcdef",
    tenant_id="7",
    identity_kind="write",
    identity_column="tools.org_id",
    identity_tenant_values=("7",),
    identity_tenant_rows=(2,),
)
LAZY_LOAD = SpanFacts(
    operation="SELECT",
    main_table="labels",
    tables=("labels", "recipes_to_labels"),
    tenant_tables=("labels",),
    tenant_filter="missing",
    unfiltered=("main:labels",),
    statement_fingerprint="0123456789abcdee",
    tenant_id="7",
    identity_kind="load",
    identity_column="recipes.org_id",
    identity_tenant_values=("7",),
    identity_tenant_rows=(1,),
)


def _rules(facts: SpanFacts) -> list[str]:
    return [finding.rule for finding in evaluate(facts, Settings())]


def test_a_flush_of_the_context_tenants_instances_is_present_by_identity() -> None:
    judged = apply_identity(FLUSH_UPDATE)
    assert (judged.tenant_filter, judged.identity, judged.unscoped_writes) == ("present", ("main:tools",), ())
    assert _rules(judged) == []
    assert apply_identity(judged) == judged


def test_a_lazy_load_from_the_context_tenants_parent_is_present_by_identity() -> None:
    judged = apply_identity(LAZY_LOAD)
    assert (judged.tenant_filter, judged.identity, judged.unfiltered) == ("present", ("main:labels",), ())
    assert _rules(judged) == []


def test_an_instance_of_unknown_tenant_changes_nothing() -> None:
    facts = replace(FLUSH_UPDATE, identity_unknown_rows=1)
    assert apply_identity(facts) == facts
    assert _rules(apply_identity(facts)) == ["unscoped_write"]


def test_no_tenant_in_context_changes_nothing() -> None:
    facts = replace(LAZY_LOAD, tenant_id=None)
    assert apply_identity(facts) == facts
    assert "missing_tenant_filter" in _rules(apply_identity(facts))


def test_instances_of_another_tenant_are_pinned_and_cross_tenant_only() -> None:
    judged = apply_identity(replace(FLUSH_UPDATE, identity_tenant_values=("7", "8"), identity_tenant_rows=(1, 1)))
    assert judged.identity == ("main:tools",)
    assert _rules(judged) == ["cross_tenant"]


def test_a_write_pins_only_its_own_table() -> None:
    facts = replace(FLUSH_UPDATE, identity_column="other.org_id")
    assert apply_identity(facts) == facts


_TEAMS = Settings.model_validate(
    {
        "tenant_keys": {
            "organization": {"columns": ["org_id"]},
            "team": {"columns": ["team_id"], "parent": "organization"},
        }
    }
)
TEAM_FLUSH = replace(
    FLUSH_UPDATE,
    identity_column="tools.team_id",
    identity_tenant_values=("t-1",),
    identity_tenant_rows=(1,),
    tenant_keys=(("team", "t-1"),),
)


def test_with_a_hierarchy_an_instance_is_compared_with_the_key_of_its_column() -> None:
    assert apply_identity(TEAM_FLUSH, _TEAMS).identity == ("main:tools",)  # team t-1 == context team t-1
    assert list(evaluate(apply_identity(TEAM_FLUSH, _TEAMS), _TEAMS)) == []
    other = replace(TEAM_FLUSH, identity_tenant_values=("t-2",))
    (finding,) = evaluate(apply_identity(other, _TEAMS), _TEAMS)
    assert finding.rule == "cross_tenant"
    assert "of team 't-2'" in finding.message
    assert "context team is 't-1'" in finding.message


def test_with_a_hierarchy_a_context_without_that_key_leaves_the_verdict_alone() -> None:
    facts = replace(TEAM_FLUSH, tenant_keys=())
    assert apply_identity(facts, _TEAMS) == facts
    assert [f.rule for f in evaluate(facts, _TEAMS)] == ["unscoped_write"]


def test_row_tenants_compare_a_team_column_with_the_context_team() -> None:
    from tenantwatch.context import TenantContext
    from tenantwatch.core.row_tenants import context_value_for_column, expected_row_tenant

    context = TenantContext("0f0e0d0c-0000-4000-8000-000000000001", keys=(("team", "t-1"),))
    assert context_value_for_column(context, "check_ins.team_id", _TEAMS) == "t-1"
    assert context_value_for_column(context, "org_id", _TEAMS) == context.tenant_id
    assert context_value_for_column(TenantContext("acme"), "team_id", _TEAMS) is None  # no team: nothing to compare
    assert context_value_for_column(context, "team_id") == context.tenant_id  # one key: the tenant, whatever column
    assert expected_row_tenant(context, "org_id", _TEAMS) == "0f0e0d0c-0000-4000-8000-000000000001"


_ORG_TEAMS = Settings(
    tenant_keys={
        "organization": {"columns": ["org_id"], "root": "organizations"},
        "team": {"columns": ["team_id"], "parent": "organization", "root": "teams"},
    }
)
PROJECT_FLUSH = replace(
    FLUSH_UPDATE,
    main_table="projects",
    tables=("projects",),
    tenant_tables=("projects",),
    unscoped_writes=("projects",),
    tenant_id="acme",
    tenant_keys=(("team", "red"),),
    identity_column="projects.org_id",
    identity_tenant_values=("acme",),
    identity_tenant_rows=(1,),
    identity_key_columns=("projects.team_id",),
    identity_key_values=("blue",),
)
"""A flush of a project of team blue of the context organization, under team red."""


def test_with_a_hierarchy_every_key_column_of_an_instance_is_compared() -> None:
    judged = apply_identity(PROJECT_FLUSH, _ORG_TEAMS)
    assert judged.identity == ("main:projects",)
    (finding,) = evaluate(judged, _ORG_TEAMS)
    assert (finding.rule, finding.severity, finding.tenant_key) == ("cross_tenant", "critical", "team")
    assert "writes 1 row of team 'blue' (ORM instances of projects.team_id) but the context team is 'red'" in (
        finding.message
    )
    assert "organization" not in finding.message  # the organization is the context's


def test_with_a_hierarchy_an_instance_is_the_contexts_only_if_every_key_matches() -> None:
    own = replace(PROJECT_FLUSH, identity_key_values=("red",))
    assert list(evaluate(apply_identity(own, _ORG_TEAMS), _ORG_TEAMS)) == []
    unknown_team = replace(PROJECT_FLUSH, identity_key_values=("",))  # the team attribute was not loaded
    assert list(evaluate(apply_identity(unknown_team, _ORG_TEAMS), _ORG_TEAMS)) == []
    no_team = replace(PROJECT_FLUSH, tenant_keys=())  # the context holds no team: the team is not compared
    assert list(evaluate(apply_identity(no_team, _ORG_TEAMS), _ORG_TEAMS)) == []
    both = replace(
        PROJECT_FLUSH,
        identity_tenant_values=("acme", "globex"),
        identity_tenant_rows=(2, 1),
        identity_key_values=("blue", "green"),
    )
    (finding,) = evaluate(apply_identity(both, _ORG_TEAMS), _ORG_TEAMS)
    assert finding.tenant_key == "organization"  # the coarsest key that differed
    assert "writes 1 row of organization 'globex'" in finding.message
    assert "writes 3 rows of team 'blue', 'green'" in finding.message


def test_a_keys_root_table_column_holds_that_key() -> None:
    from tenantwatch.context import TenantContext
    from tenantwatch.core.row_tenants import context_value_for_column

    context = TenantContext("acme", keys=(("team", "red"),))
    assert context_value_for_column(context, "teams.id", _ORG_TEAMS) == "red"
    assert context_value_for_column(context, "teams.org_id", _ORG_TEAMS) == "acme"
    assert context_value_for_column(context, "organizations.id", _ORG_TEAMS) == "acme"
    assert context_value_for_column(context, "projects.id", _ORG_TEAMS) == "acme"  # not a key column: the root
