"""Each rule fires exactly when it should, judged from span facts alone (rules are pure functions)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from processor_support import CLEAN, UNFILTERED

from tenantwatch.config import RULE_IDS, Settings, load_settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding, finding_fingerprint
from tenantwatch.processors.rules import RULES, evaluate, rule_by_id
from tenantwatch.processors.rules.large_result import LargeResult

DEFAULTS = Settings()

UPDATE_ALL = SpanFacts(
    operation="UPDATE",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="missing",
    unscoped_writes=("objectives",),
    statement_fingerprint="f00dfeed00000003",
    tenant_id="acme",
    role="member",
)
INSERT_NO_TENANT = replace(UPDATE_ALL, operation="INSERT", statement_fingerprint="f00dfeed00000004")
ADMIN_INSERT = replace(
    CLEAN, operation="INSERT", tenant_values=(), written_tenant_values=("acme",), role="admin", user_id="root-7"
)


def rules(facts: SpanFacts, settings: Settings = DEFAULTS) -> list[str]:
    return [finding.rule for finding in evaluate(facts, settings)]


# --- the catalogue, case by case -------------------------------------------------------------------------------

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("correct filtered select", CLEAN, []),
    ("select without filter", UNFILTERED, ["missing_tenant_filter"]),
    ("missing filter inside unscoped() is tagged, not flagged", replace(UNFILTERED, unscoped_reason="billing"), []),
    (
        "unanalyzable statement: no guessing",
        replace(UNFILTERED, analysis_error="too deep", tenant_filter="unknown"),
        [],
    ),
    ("verdict unknown without error text", replace(UNFILTERED, tenant_filter="unknown"), []),
    ("filter on another tenant", replace(CLEAN, tenant_values=("globex",)), ["cross_tenant"]),
    ("IN list with another tenant", replace(CLEAN, tenant_values=("acme", "globex")), ["cross_tenant"]),
    (
        "written row of another tenant",
        replace(ADMIN_INSERT, role="member", written_tenant_values=("globex",)),
        ["cross_tenant"],
    ),
    ("own tenant written", replace(ADMIN_INSERT, role="member"), []),
    ("numeric tenant compared as text", replace(CLEAN, tenant_id="7", tenant_values=("7",)), []),
    ("other tenant inside unscoped()", replace(CLEAN, tenant_values=("globex",), unscoped_reason="support"), []),
    (
        "other tenant value with no tenant in context is no_tenant_context, not cross_tenant",
        replace(CLEAN, tenant_values=("globex",), tenant_id=None),
        ["no_tenant_context"],
    ),
    ("update without filter", UPDATE_ALL, ["unscoped_write"]),
    ("insert without tenant column", INSERT_NO_TENANT, ["unscoped_write"]),
    ("unscoped write inside unscoped()", replace(UPDATE_ALL, unscoped_reason="migration"), []),
    ("unscoped write, verdict unknown", replace(UPDATE_ALL, analysis_error="parse error"), []),
    ("tenant table with no tenant", replace(CLEAN, tenant_id=None, tenant_values=()), ["no_tenant_context"]),
    ("no tenant but unscoped()", replace(CLEAN, tenant_id=None, unscoped_reason="nightly job"), []),
    (
        "no tenant, no tenant table",
        replace(CLEAN, tenant_id=None, tenant_tables=(), tenant_filter="not_applicable"),
        [],
    ),
    ("superuser insert", ADMIN_INSERT, ["superuser_write"]),
    ("superuser role matched case-insensitively", replace(ADMIN_INSERT, role="SuperUser"), ["superuser_write"]),
    (
        "superuser write inside unscoped() still flagged",
        replace(ADMIN_INSERT, unscoped_reason="fix"),
        ["superuser_write"],
    ),
    ("superuser read", replace(CLEAN, role="admin"), []),
    ("member write", replace(ADMIN_INSERT, role="member"), []),
    ("1001 rows", replace(CLEAN, returned_rows=1001), ["large_result"]),
    ("1000 rows", replace(CLEAN, returned_rows=1000), []),
    ("row count unknown", replace(CLEAN, returned_rows=None), []),
    ("large write is not a large result", replace(ADMIN_INSERT, role="member", returned_rows=5000), []),
    ("501 ms", replace(CLEAN, duration_ms=501.0), ["slow_query"]),
    ("500 ms", replace(CLEAN, duration_ms=500.0), []),
    (
        "test data written",
        replace(ADMIN_INSERT, role="member", test_data=("objectives.title=***@example.***",)),
        ["test_data"],
    ),
    ("request value in the SQL text", replace(CLEAN, request_values_in_sql=("query.q",)), ["injection_signal"]),
    ("request for another tenant", replace(CLEAN, request_tenant="globex"), ["stale_tenant_context"]),
    (
        "tenant context lost in the request",
        replace(CLEAN, tenant_id=None, request_tenant="acme"),
        ["no_tenant_context", "stale_tenant_context"],
    ),
    ("request for the same tenant", replace(CLEAN, request_tenant="acme"), []),
    ("RLS setting of another tenant", replace(CLEAN, rls_tenant="globex"), ["stale_tenant_context"]),
    ("RLS setting missing", replace(CLEAN, rls_tenant=""), ["stale_tenant_context"]),
    ("RLS setting matches", replace(CLEAN, rls_tenant="acme"), []),
    ("unscoped work in another tenant's request", replace(CLEAN, request_tenant="globex", unscoped_reason="job"), []),
    (
        "several rules at once, in catalogue order",
        replace(UNFILTERED, tenant_values=("globex",), returned_rows=5000, duration_ms=900.0),
        ["missing_tenant_filter", "cross_tenant", "large_result", "slow_query"],
    ),
]


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_rule_catalogue(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_every_rule_has_a_positive_and_a_negative_case() -> None:
    fired = {rule for _, _, expected in CASES for rule in expected}
    assert fired == {rule.id for rule in RULES}
    assert {rule.id for rule in RULES} <= set(RULE_IDS)


def test_registry_is_in_catalogue_order_and_rules_describe_themselves() -> None:
    ids = [rule.id for rule in RULES]
    assert ids == [rule_id for rule_id in RULE_IDS if rule_id in ids]
    for rule in RULES:
        assert str(rule).startswith(f"{rule.id}: ")
        assert rule_by_id(rule.id) is rule


# --- what a finding says ---------------------------------------------------------------------------------------


def test_missing_filter_is_one_finding_per_table_naming_scopes() -> None:
    facts = replace(
        UNFILTERED,
        tables=("objectives", "key_results"),
        tenant_tables=("objectives", "key_results"),
        unfiltered=("cte:recent:objectives", "main:objectives", "subquery:1:key_results"),
    )
    found = evaluate(facts, DEFAULTS)
    assert [(f.rule, f.table) for f in found] == [
        ("missing_tenant_filter", "objectives"),
        ("missing_tenant_filter", "key_results"),
    ]
    assert "cte:recent" in found[0].message and "main" in found[0].message
    assert "subquery:1" in found[1].message
    assert all(f.severity == "critical" for f in found)


def test_cross_tenant_message_names_values_and_context_tenant() -> None:
    (finding,) = evaluate(replace(CLEAN, tenant_values=("acme", "globex")), DEFAULTS)
    assert "'globex'" in finding.message and "'acme'" in finding.message
    assert finding.table == "objectives"


def test_unscoped_write_messages_say_what_is_wrong() -> None:
    (update,) = evaluate(UPDATE_ALL, DEFAULTS)
    (insert,) = evaluate(INSERT_NO_TENANT, DEFAULTS)
    assert "UPDATE on objectives has no tenant filter" in update.message
    assert "INSERT into objectives does not set the tenant column" in insert.message


def test_superuser_write_names_user_and_role() -> None:
    (finding,) = evaluate(ADMIN_INSERT, DEFAULTS)
    assert "'root-7'" in finding.message and "'admin'" in finding.message
    assert finding.severity == "high"


def test_fingerprint_is_stable_across_values_and_differs_by_location() -> None:
    one = evaluate(replace(CLEAN, tenant_values=("globex",)), DEFAULTS)[0]
    other_values = evaluate(replace(CLEAN, tenant_values=("initech",), tenant_id="umbrella"), DEFAULTS)[0]
    moved = evaluate(replace(CLEAN, tenant_values=("globex",), code_lineno=99), DEFAULTS)[0]
    assert one.fingerprint == other_values.fingerprint == finding_fingerprint("cross_tenant", CLEAN)
    assert moved.fingerprint != one.fingerprint


# --- configuration: thresholds, per-table overrides, severities, switches --------------------------------------


def test_thresholds_and_per_table_overrides_from_rules_file(rules_file: Callable[[str], Path]) -> None:
    settings = load_settings(
        rules_file(
            """
rules:
  large_result: {threshold: 100, per_table: {audit_log: 50000, Objectives: 10}}
  slow_query: {threshold_ms: 50}
"""
        ),
        environ={},
    )
    assert rules(replace(CLEAN, returned_rows=11), settings) == ["large_result"]  # objectives override: 10
    assert rules(replace(CLEAN, returned_rows=10), settings) == []
    audit = replace(CLEAN, main_table="audit_log", tables=("audit_log",), returned_rows=20_000)
    assert rules(audit, settings) == []
    assert rules(replace(audit, returned_rows=50_001), settings) == ["large_result"]
    assert rules(replace(audit, main_table="public.audit_log", tables=("public.audit_log",)), settings) == []
    plans = replace(CLEAN, main_table="plans", tables=("plans",), returned_rows=101)
    assert rules(plans, settings) == ["large_result"]  # default threshold from the file: 100
    assert rules(replace(CLEAN, duration_ms=51.0), settings) == ["slow_query"]
    (finding,) = evaluate(replace(CLEAN, returned_rows=11), settings)
    assert "threshold for objectives 10" in finding.message


def test_main_table_override_is_more_specific_than_a_joined_tables() -> None:
    settings = load_settings(environ={}, rules={"large_result": {"per_table": {"objectives": 5, "audit_log": 500}}})
    joined = replace(CLEAN, tables=("audit_log", "objectives"), returned_rows=6)
    assert rules(joined, settings) == ["large_result"]
    assert rules(replace(joined, main_table=None), settings) == []  # first table with an override: audit_log


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


def test_custom_superuser_roles() -> None:
    settings = load_settings(environ={}, superuser_roles=["owner"])
    assert rules(replace(ADMIN_INSERT, role="owner"), settings) == ["superuser_write"]
    assert rules(ADMIN_INSERT, settings) == []


# --- a broken rule ---------------------------------------------------------------------------------------------


def test_a_rule_that_raises_is_logged_once_and_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: LargeResult, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        raise RuntimeError("rule bug")

    monkeypatch.setattr(LargeResult, "__call__", broken)
    facts = replace(UNFILTERED, duration_ms=900.0)
    with caplog.at_level(logging.ERROR, logger="tenantwatch.processors.rules"):
        first = rules(facts)
        second = rules(facts)
    assert first == second == ["missing_tenant_filter", "slow_query"]
    logged = [r for r in caplog.records if "large_result" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
