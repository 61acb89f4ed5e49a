"""``tenantwatch explain`` with a tenant hierarchy: ``--key team=t-1``, the rules file's ``tenant_keys``, which key
protects each (scope, table) and which key ``cross_tenant`` compares."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import json_lines, run_cli

_RULES = """\
tenant_keys:
  organization: {columns: [organization_id], root: organizations}
  team: {columns: [team_id], parent: organization, root: teams}
tenant_tables: {users: organization_id, team_preferences: team_id}
"""
_OTHER_TEAM = "SELECT theme FROM team_preferences WHERE team_preferences.team_id = 't-2'"


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(_RULES, encoding="utf-8")
    return str(path)


def test_another_team_is_cross_tenant_naming_the_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", _OTHER_TEAM, "--rules", rules, "--tenant", "acme", "--key", "team=t-1"
    )
    assert code == 1
    assert "main  team_preferences  read   present  team_id = value [key team]" in out
    assert "key team        filters t-2; context t-1" in out
    assert "context         tenant=acme team=t-1 user=- role=-" in out
    assert (
        "CRITICAL cross_tenant [team_preferences]: SELECT on team_preferences filters on team 't-2' but the "
        "context team is 't-1'" in out
    )


def test_the_json_names_the_protecting_key_and_the_comparison(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    sql = "SELECT * FROM users WHERE users.organization_id = 'acme' AND users.name = 'x'"
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", _OTHER_TEAM, sql, "--rules", rules, "--tenant", "acme", "--key", "team=t-1",
        "--json",
    )  # fmt: skip
    assert code == 1
    team, users = json_lines(out)
    assert team["scopes"][0]["key"] == "team"
    assert team["key_values"] == {"team": ["t-2"]}
    assert team["compared"] == [{"key": "team", "context": "t-1", "values": ["t-2"], "written_values": []}]
    assert team["context"]["keys"] == {"team": "t-1"}
    assert [f["rule"] for f in team["findings"]] == ["cross_tenant"]
    assert users["scopes"][0]["key"] == "organization"
    assert users["compared"] == [{"key": "organization", "context": "acme", "values": ["acme"], "written_values": []}]
    assert users["findings"] == []


def test_without_the_team_in_context_a_team_value_is_not_compared(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    code, out, _err = run_cli(capsys, monkeypatch, "explain", _OTHER_TEAM, "--rules", rules, "--tenant", "acme")
    assert code == 0
    assert "key team        filters t-2; no value in context: not compared" in out
    assert "findings        none" in out


def test_json_lines_carry_their_own_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    lines = (
        '{"sql": "SELECT * FROM team_preferences WHERE team_id = :t", "params": {"t": "t-1"}, '
        '"tenant": "acme", "keys": {"team": "t-1"}}\n'
        '{"sql": "SELECT * FROM team_preferences WHERE team_id = :t", "params": {"t": "t-1"}, '
        '"tenant": "acme", "keys": {"team": "t-9"}}\n'
    )
    code, out, _err = run_cli(capsys, monkeypatch, "explain", "--rules", rules, "--json", stdin=lines)
    assert code == 1
    same, other = json_lines(out)
    assert same["findings"] == []
    assert [f["rule"] for f in other["findings"]] == ["cross_tenant"]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("region=eu", "--key 'region=eu': unknown tenant key 'region'; the rules file declares: team"),
        ("organization=acme", "--key 'organization=acme': organization is the root key; give its value as --tenant"),
        ("team", "--key 'team': expected KEY=VALUE, e.g. team=t-1"),
    ],
)
def test_a_bad_key_flag_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str, flag: str, message: str
) -> None:
    code, _out, err = run_cli(capsys, monkeypatch, "explain", _OTHER_TEAM, "--rules", rules, "--key", flag)
    assert code == 2
    assert message in err


def test_a_key_without_tenant_keys_in_the_rules_file_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _out, err = run_cli(capsys, monkeypatch, "explain", "SELECT 1", "--key", "team=t-1")
    assert code == 2
    assert "unknown tenant key 'team'; the rules file has no tenant_keys" in err


def test_the_shipped_okr_rules_scope_key_results_by_its_team_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/rules.yaml declares ``key_results: organization_id``; its ``team_id`` still protects it and is
    compared with the context's team."""
    shipped = str(Path(__file__).resolve().parents[1] / "examples" / "rules.yaml")
    sql = "SELECT key_results.id, key_results.title FROM key_results WHERE key_results.team_id = 't-1'"
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", shipped, "--tenant", "acme", "--key", "team=t-1"
    )
    assert code == 0
    assert "main  key_results  read   present  team_id = value [key team]" in out
    assert "findings        none" in out
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", shipped, "--tenant", "acme", "--key", "team=t-2"
    )
    assert code == 1
    assert "filters on team 't-1' but the context team is 't-2'" in out
    assert "missing_tenant_filter" not in out


def test_key_rows_show_values_canonically(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    team, other = "2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10", "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
    sql = f"SELECT theme FROM team_preferences WHERE team_preferences.team_id = '{other.replace('-', '')}'"
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", rules, "--tenant", "acme", "--key", f"team={team.upper()}"
    )
    assert code == 1
    assert f"key team        filters {other}; context {team}" in out
    assert f"context         tenant=acme team={team} user=- role=-" in out
    assert f"filters on team '{other}' but the context team is '{team}'" in out


_KEYS_ONLY = """\
tenant_keys:
  organization: {columns: [organization_id], root: organizations}
  team: {columns: [team_id], parent: organization, root: teams}
"""


@pytest.fixture
def keys_only(tmp_path: Path) -> str:
    """The README's tenant_keys snippet as the whole rules file: no tenant_tables, no database."""
    path = tmp_path / "keys.yaml"
    path.write_text(_KEYS_ONLY, encoding="utf-8")
    return str(path)


def test_a_keys_only_file_judges_a_table_the_statement_names_the_key_column_of(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys_only: str
) -> None:
    """No silent pass: ``projects.team_id`` shows projects is team-scoped, so another team's id is cross_tenant,
    and the output and stderr say the table was assumed from the statement."""
    sql = "SELECT * FROM projects WHERE projects.team_id = 't-2'"
    code, out, err = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", keys_only, "--tenant", "acme", "--key", "team=t-1"
    )
    assert code == 1
    assert "tenant tables   projects (team_id, assumed: statement 1 names it)" in out
    assert "main  projects  read   present  team_id = value [key team]" in out
    assert "CRITICAL cross_tenant [projects]: SELECT on projects filters on team 't-2' but the context team is" in out
    assert "no tenant-scoped tables are known (tenant_keys names only root tables)" in err
    assert "statement 1 names the tenant column of projects (team_id): assumed tenant-scoped" in err


def test_an_assumed_table_is_judged_in_the_later_inputs_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys_only: str
) -> None:
    """Like discovery, a table once known stays known: the list query without its filter is then flagged."""
    lines = (
        '{"sql": "SELECT * FROM projects p WHERE p.organization_id = :o", "params": {"o": "acme"}}\n'
        '{"sql": "SELECT * FROM projects"}\n'
        '{"sql": "SELECT * FROM plans"}\n'
    )
    code, out, _err = run_cli(
        capsys, monkeypatch, "explain", "--rules", keys_only, "--tenant", "acme", "--json", stdin=lines
    )
    assert code == 1
    scoped, unscoped, plans = json_lines(out)
    assert scoped["tenant_tables"] == [{"table": "projects", "column": "organization_id", "assumed_from": 1}]
    assert scoped["findings"] == []
    assert [(f["rule"], f["severity"]) for f in unscoped["findings"]] == [("missing_tenant_filter", "critical")]
    assert plans["tenant_filter"] == "not_applicable"  # nothing names a tenant column of plans


def test_with_discover_false_nothing_is_assumed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With discovery off the declared tables are all there is: explain mirrors the application, and warns."""
    path = tmp_path / "rules.yaml"
    path.write_text(_KEYS_ONLY + "discover: false\n", encoding="utf-8")
    sql = "SELECT * FROM projects WHERE projects.team_id = 't-2'"
    code, out, err = run_cli(
        capsys, monkeypatch, "explain", sql, "--rules", str(path), "--tenant", "acme", "--key", "team=t-1"
    )
    assert code == 0
    assert "tenant filter   not_applicable" in out
    assert "no tenant-scoped tables are known (tenant_keys names only root tables), so a table reads as global;" in err


def test_a_long_key_label_keeps_its_value_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rules: str
) -> None:
    """``key organization`` is 16 characters: it must not run into its value."""
    sql = "SELECT * FROM users WHERE users.organization_id = 'acme'"
    code, out, _err = run_cli(capsys, monkeypatch, "explain", sql, "--rules", rules, "--tenant", "acme")
    assert code == 0
    assert "  key organization  filters acme; context acme" in out
