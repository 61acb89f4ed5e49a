"""Each audit lint fires on a schema built to trip it, on exactly that object, and the correct schema stays silent
(real PostgreSQL, real roles)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from audit_schemas import (
    APP_ROLE,
    BROKEN_TABLES,
    BYPASS_ROLE,
    COMMON,
    GOOD,
    OWNED,
    OWNER_ROLE,
    as_user,
    create_database,
)
from sqlalchemy import create_engine

from tenantwatch.config import load_settings
from tenantwatch.tools.audit import AuditResult, Lint, run_audit

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def good_url(postgres_url: str) -> str:
    return create_database(postgres_url, "tw_audit_good", GOOD)


@pytest.fixture(scope="module")
def broken_url(postgres_url: str) -> str:
    ddl = "\n".join([COMMON, *(ddl for _, ddl in BROKEN_TABLES.values()), OWNED])
    return create_database(postgres_url, "tw_audit_broken", ddl)


def audit(url: str, role: str | None = None, **settings: object) -> AuditResult:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return run_audit(connection, load_settings(environ={}, **settings), source=url, role=role)
    finally:
        engine.dispose()


def found(lints: list[Lint] | tuple[Lint, ...]) -> set[tuple[str, str]]:
    """(lint name, table) of every lint about a table or a policy."""
    out = set()
    for lint in lints:
        if lint.object["type"] == "table":
            out.add((lint.kind.name, lint.object["name"]))
        elif lint.object["type"] == "policy":
            out.add((lint.kind.name, lint.object["table"]))
    return out


@pytest.fixture(scope="module")
def broken(broken_url: str) -> Iterator[AuditResult]:
    yield audit(broken_url, role=APP_ROLE)


def test_the_correct_schema_has_no_lint_and_full_coverage(good_url: str) -> None:
    result = audit(good_url, role=APP_ROLE)
    assert [lint.cache_key for lint in result.lints] == []
    assert sorted(t.name for t in result.snapshot.tenant_tables) == ["archive", "labels", "projects", "tasks"]
    assert result.snapshot.coverage.ratio == 1.0


def test_the_correct_schema_audited_as_the_non_superuser_application_role_itself(good_url: str) -> None:
    """Connecting as the application role (no --role): its own catalog view, no lint."""
    result = audit(as_user(good_url, APP_ROLE))
    assert result.snapshot.role.name == APP_ROLE
    assert not result.snapshot.role.superuser
    assert [lint.cache_key for lint in result.lints] == []


@pytest.mark.parametrize("table", sorted(BROKEN_TABLES))
def test_each_lint_fires_on_exactly_the_table_built_to_trip_it(broken: AuditResult, table: str) -> None:
    expected = BROKEN_TABLES[table][0]
    about = {name for name, on in found(broken.lints) if on == table}
    assert about == {expected}
    fired_on = {on for name, on in found(broken.lints) if name == expected and on != "b_owned"}
    assert fired_on == {t for t, (lint, _) in BROKEN_TABLES.items() if lint == expected}


def test_the_broken_schema_has_nothing_else(broken: AuditResult) -> None:
    expected = {(lint, table) for table, (lint, _) in BROKEN_TABLES.items()} | {("rls_not_forced", "b_owned")}
    assert found(broken.lints) == expected
    assert not [lint for lint in broken.lints if lint.object["type"] == "role"]  # the app role is a plain role


def test_levels_details_and_remediation_say_what_to_do(broken: AuditResult) -> None:
    by_table = {(lint.kind.name, lint.object.get("table", lint.object.get("name"))): lint for lint in broken.lints}
    disabled = by_table["rls_disabled", "b_disabled"]
    assert disabled.kind.level == "ERROR"
    assert disabled.kind.id == "TWA001"
    assert "b_disabled" in disabled.detail
    assert "ALTER TABLE public.b_disabled ENABLE ROW LEVEL SECURITY;" in disabled.remediation
    assert "ALTER TABLE public.b_disabled FORCE ROW LEVEL SECURITY;" in disabled.remediation
    unforced = by_table["rls_not_forced", "b_unforced"]
    assert (unforced.kind.level, unforced.remediation) == (
        "WARN",
        "ALTER TABLE public.b_unforced FORCE ROW LEVEL SECURITY;",
    )
    no_policy = by_table["rls_no_policy", "b_no_policy"]
    assert no_policy.kind.level == "INFO"
    assert no_policy.remediation.startswith("CREATE POLICY tenant_isolation ON public.b_no_policy USING (")
    always = by_table["policy_always_true", "b_or_true"]
    assert always.kind.level == "ERROR"
    assert always.object == {"type": "policy", "schema": "public", "table": "b_or_true", "name": "b_or_true_tenant"}
    assert "always true" in always.detail
    assert always.remediation == (
        "ALTER POLICY b_or_true_tenant ON public.b_or_true "
        "USING (organization_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);"
    )
    insert = by_table["policy_always_true", "b_open_insert"]
    assert "WITH CHECK" in insert.detail and insert.remediation.endswith(
        "WITH CHECK (organization_id = NULLIF(current_setting('app.tenant_id', true), '')::integer);"
    )
    setting = by_table["policy_ignores_tenant", "b_other_setting"]
    assert "does not read the tenant setting" in setting.detail
    column = by_table["policy_ignores_tenant", "b_no_column"]
    assert "compares neither the tenant column nor the tenant setting" in column.detail
    nullable = by_table["tenant_column_nullable", "b_nullable"]
    assert nullable.remediation.endswith("ALTER TABLE public.b_nullable ALTER COLUMN organization_id SET NOT NULL;")
    index = by_table["tenant_column_unindexed", "b_unindexed"]
    assert index.remediation == "CREATE INDEX CONCURRENTLY ON public.b_unindexed (organization_id);"
    fk = by_table["foreign_key_without_tenant", "b_fk_child"]
    assert "(parent_id)" in fk.detail and "b_fk_parent" in fk.detail
    assert fk.remediation.splitlines() == [  # b_fk_parent's primary key is (organization_id, id) already
        "ALTER TABLE public.b_fk_child ADD FOREIGN KEY (organization_id, parent_id) "
        "REFERENCES public.b_fk_parent (organization_id, id);",
        "-- then drop the foreign key on (parent_id)",
    ]


def test_the_rls_setting_of_the_config_is_the_one_policies_must_read(broken_url: str) -> None:
    """With rls.setting app.other, the policy reading app.other is the tenant-scoped one."""
    result = audit(broken_url, role=APP_ROLE, rls={"setting": "app.other"})
    ignoring = {on for name, on in found(result.lints) if name == "policy_ignores_tenant"}
    assert "b_other_setting" not in ignoring
    assert "b_unforced" in ignoring  # reads app.tenant_id, which is not the tenant setting any more


def test_coverage_counts_forced_tables_only(broken: AuditResult) -> None:
    counts = broken.snapshot.coverage.counts()
    tables = len(broken.snapshot.tenant_tables)
    assert tables == len(BROKEN_TABLES) + 2  # b_fk_parent and b_owned
    assert counts == {"forced": tables - 3, "enabled": 2, "disabled": 1}
    assert broken.snapshot.coverage.ratio == pytest.approx((tables - 3) / tables)


def test_an_owner_role_is_told_rls_is_off_for_it(broken_url: str) -> None:
    result = audit(broken_url, role=OWNER_ROLE)
    owned = [lint for lint in result.lints if lint.kind.name == "role_owns_tenant_table"]
    assert [(lint.object["name"], lint.kind.level) for lint in owned] == [("b_owned", "ERROR")]
    assert owned[0].remediation.startswith("ALTER TABLE public.b_owned FORCE ROW LEVEL SECURITY;")


def test_a_bypassrls_role_is_an_error(broken_url: str) -> None:
    result = audit(broken_url, role=BYPASS_ROLE)
    roles = [
        (lint.kind.name, lint.object["name"], lint.remediation)
        for lint in result.lints
        if lint.object["type"] == "role"
    ]
    assert roles == [("role_bypasses_rls", BYPASS_ROLE, f"ALTER ROLE {BYPASS_ROLE} NOBYPASSRLS;")]


def test_a_superuser_is_one_error_not_one_per_table(broken_url: str) -> None:
    result = audit(broken_url, role="postgres")
    assert [lint.kind.name for lint in result.lints if lint.object["type"] == "role"] == ["role_is_superuser"]
    assert [lint for lint in result.lints if lint.kind.name == "role_owns_tenant_table"] == []
    superuser = next(lint for lint in result.lints if lint.kind.name == "role_is_superuser")
    assert (superuser.kind.level, superuser.object) == ("ERROR", {"type": "role", "name": "postgres"})
