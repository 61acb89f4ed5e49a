"""The rules file's ``tenant_keys`` (a tenant hierarchy, organization ⊃ team): what it derives, what the instrumentor
declares from it, and each bad shape with its message, path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.context import set_tenant_hierarchy, tenant_hierarchy
from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor

_GOOD = """\
tenant_keys:
  organization:
    columns: [organization_id, org_id]
    root: organizations
  team:
    columns: [team_id]
    parent: organization
    root: teams
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _issue(tmp_path: Path, text: str) -> tuple[str, str, int | None]:
    with pytest.raises(ConfigError) as info:
        load_settings(_write(tmp_path, text), environ={})
    (issue,) = info.value.issues
    assert issue.path in str(info.value) and issue.message in str(info.value)
    return issue.path, issue.message, issue.line


def test_keys_derive_the_tenant_columns_and_roots(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, _GOOD), environ={})
    assert settings.tenant_columns == ("organization_id", "org_id", "team_id")  # the root key's columns first
    assert settings.tenant_roots == {"organization_id": "organizations", "team_id": "teams"}
    assert settings.root_key == "organization"
    assert settings.finer_keys == ("team",)
    assert settings.key_of_column("org_id") == "organization"
    assert settings.key_of_column("team_id") == "team"
    again = Settings.model_validate(settings.model_dump())  # what configure(mode=...) does with a settings object
    assert again.tenant_columns == settings.tenant_columns


def test_without_keys_one_key_named_tenant_keeps_the_columns() -> None:
    settings = load_settings(environ={}, tenant_columns=["org_id"], tenant_roots={"org_id": "orgs"})
    assert settings.root_key == "tenant"
    assert settings.finer_keys == ()
    assert settings.tenant_columns == ("org_id",)
    assert settings.tenant_roots == {"org_id": "orgs"}


def test_keys_nest_parents_before_children(tmp_path: Path) -> None:
    text = (
        "tenant_keys:\n"
        "  project: {columns: [project_id], parent: team}\n"
        "  team: {columns: [team_id], parent: organization}\n"
        "  organization: {columns: [organization_id]}\n"
    )
    settings = load_settings(_write(tmp_path, text), environ={})
    assert settings.root_key == "organization"
    assert settings.finer_keys == ("team", "project")


@pytest.mark.parametrize(
    ("text", "path", "message", "line"),
    [
        (
            "tenant_keys:\n  organization: {columns: [organization_id]}\n  team: {columns: [team_id]}\n",
            "tenant_keys",
            "exactly one key must have no parent (the root, tenant.id); 2 have none (organization, team)",
            1,
        ),
        (
            "tenant_keys:\n  a: {columns: [a_id], parent: b}\n  b: {columns: [b_id], parent: a}\n",
            "tenant_keys",
            "exactly one key must have no parent (the root, tenant.id); every key has one (a cycle)",
            1,
        ),
        (
            "tenant_keys:\n  org: {columns: [org_id]}\n  a: {columns: [a_id], parent: b}\n"
            "  b: {columns: [b_id], parent: a}\n",
            "tenant_keys.a.parent",
            "keys a, b are parents of each other (a cycle); every key must lead up to the root",
            3,
        ),
        (
            "tenant_keys:\n  organization: {columns: [organization_id]}\n"
            "  team: {columns: [team_id], parent: organisation}\n",
            "tenant_keys.team.parent",
            "unknown key 'organisation' (did you mean 'organization'?); keys: organization, team",
            3,
        ),
        (
            "tenant_keys:\n  organization: {columns: [organization_id]}\n"
            "  team: {columns: [team_id, organization_id], parent: organization}\n",
            "tenant_keys.team.columns",
            "column 'organization_id' belongs to key 'organization' already; a column holds one key",
            3,
        ),
        (
            "tenant_keys:\n  organization: {columns: [organization_id]}\n"
            "  my-team: {columns: [t], parent: organization}\n",
            "tenant_keys.my-team",
            "'my-team' is not a key name (letters, digits and _)",
            3,
        ),
        (
            "tenant_keys:\n  organization: {columns: [organization id]}\n",
            "tenant_keys.organization.columns",
            "Value error, 'organization id' is not a column name (letters, digits and _)",
            2,
        ),
        (
            "tenant_keys:\n  organization: {columns: []}\n",
            "tenant_keys.organization.columns",
            "Tuple should have at least 1 item after validation, not 0",
            2,
        ),
        (
            "tenant_columns: [tenant_id]\ntenant_keys:\n  organization: {columns: [organization_id]}\n",
            "tenant_columns",
            "tenant_keys declares the tenant columns (here: organization_id); remove tenant_columns, or list its "
            "columns under a key",
            1,
        ),
        (
            "tenant_roots: {organization_id: orgs}\ntenant_keys:\n  organization: {columns: [organization_id]}\n",
            "tenant_roots",
            "tenant_keys declares the root tables (tenant_keys.<key>.root); remove tenant_roots, or move each entry "
            "to the root of its key",
            1,
        ),
        (
            "tenant_keys:\n  organization: {columns: [organization_id], roots: organizations}\n",
            "tenant_keys.organization.roots",
            "unknown key 'roots' (did you mean 'root'?); valid keys at tenant_keys.organization: columns, parent, root",
            2,
        ),
    ],
    ids=[
        "two roots",
        "no root",
        "cycle below the root",
        "unknown parent",
        "column of two keys",
        "bad key name",
        "bad column name",
        "no columns",
        "tenant_columns too",
        "tenant_roots too",
        "unknown field",
    ],
)
def test_a_bad_hierarchy_is_an_error_with_path_and_line(
    tmp_path: Path, text: str, path: str, message: str, line: int
) -> None:
    assert _issue(tmp_path, text) == (path, message, line)


def test_the_same_columns_next_to_the_keys_are_accepted(tmp_path: Path) -> None:
    text = "tenant_columns: [team_id, organization_id]\n" + _GOOD.replace(", org_id", "")
    assert load_settings(_write(tmp_path, text), environ={}).tenant_columns == ("organization_id", "team_id")


def test_the_instrumentor_declares_the_hierarchy_and_resets_it(tmp_path: Path) -> None:
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    settings = load_settings(_write(tmp_path, _GOOD), environ={}, discover=False)
    instrumentor.instrument(settings=settings, install_processor=False)
    try:
        assert tenant_hierarchy() == ("organization", ("team",))
    finally:
        instrumentor.uninstrument()
        held = tenant_hierarchy()
        set_tenant_hierarchy("tenant")
    assert held == ("tenant", ())
