"""Policy expressions as PostgreSQL stores them (deparsed ``pg_policies.qual``), judged by their parse tree."""

from __future__ import annotations

import pytest

from tenantwatch.tools.audit.policies import judge_expression

COLUMNS = frozenset({"organization_id", "team_id"})
SETTINGS = frozenset({"app.tenant_id", "app.team_id"})
SETTING = "(current_setting('app.tenant_id'::text, true))::integer"


@pytest.mark.parametrize(
    "expression",
    [
        f"(organization_id = {SETTING})",
        f"({SETTING} = organization_id)",
        "(organization_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer)",
        "(organization_id = COALESCE(current_setting('app.tenant_id'::text, true), ''::text))",
        "(organization_id = ANY (string_to_array(current_setting('app.tenant_id'::text), ','::text)))",
        f"((organization_id = {SETTING}) AND (status <> 'archived'::text))",
        f"(((organization_id = {SETTING}) AND a) OR ((organization_id = {SETTING}) AND b))",
        "(team_id = (current_setting('app.team_id'::text, true))::uuid)",
        f"(public.items.organization_id = {SETTING})",
    ],
)
def test_tenant_scoped(expression: str) -> None:
    assert judge_expression(expression, COLUMNS, SETTINGS).verdict == "scoped"


@pytest.mark.parametrize(
    "expression",
    [None, "", "true", "(1 = 1)", "(organization_id = organization_id)", f"((organization_id = {SETTING}) OR true)"],
)
def test_always_true(expression: str | None) -> None:
    verdict = judge_expression(expression, COLUMNS, SETTINGS)
    assert verdict.verdict == "always_true"
    assert verdict.problem == "is always true: every row passes"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("(owner = CURRENT_USER)", "compares neither the tenant column nor the tenant setting"),
        (
            "(organization_id = (current_setting('app.other'::text))::integer)",
            "does not read the tenant setting (it reads 'app.other': if that is the application's tenant setting, "
            "declare it as rls.setting in the rules file, --config)",
        ),
        ("(organization_id IS NOT NULL)", "does not read the tenant setting"),
        ("(organization_id = app.current_tenant())", "does not read the tenant setting"),
        (f"(owner = {SETTING})", "does not compare the tenant column"),
        (
            f"((organization_id = {SETTING}) OR (visibility = 'public'::text))",
            "reads the tenant column and setting, but not as a comparison ANDed at its top",
        ),
        (
            f"(organization_id <> {SETTING})",
            "reads the tenant column and setting, but not as a comparison ANDed at its top",
        ),
        (
            "(organization_id = ((current_setting('app.tenant_id'::text))::integer + organization_id))",
            "reads the tenant column and setting, but not as a comparison ANDed at its top",
        ),
    ],
)
def test_not_tenant_scoped_says_what_is_missing(expression: str, problem: str) -> None:
    verdict = judge_expression(expression, COLUMNS, SETTINGS)
    assert (verdict.verdict, verdict.problem) == ("unscoped", problem)


def test_an_expression_that_does_not_parse_is_reported_not_raised() -> None:
    verdict = judge_expression("organization_id = (", COLUMNS, SETTINGS)
    assert verdict.verdict == "unparsable"
    assert verdict.problem.startswith("could not be parsed (syntax error")


def test_an_oversized_expression_is_not_parsed() -> None:
    verdict = judge_expression("(" + " AND ".join(["true"] * 30_000) + ")", COLUMNS, SETTINGS)
    assert verdict.verdict == "unparsable"


def test_a_setting_of_another_name_is_named_with_the_fix() -> None:
    """An app whose policies read ``app.tenant`` (not the configured setting) is told which one it read and where to
    declare it, instead of being asked to rewrite a working policy."""
    verdict = judge_expression("(organization_id = (current_setting('app.tenant'::text))::integer)", COLUMNS, SETTINGS)
    assert verdict.verdict == "unscoped" and verdict.other_settings == ("app.tenant",)
    assert "it reads 'app.tenant'" in verdict.problem and "rls.setting" in verdict.problem
