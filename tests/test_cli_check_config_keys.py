"""``tenantwatch check-config`` on a tenant hierarchy: the summary shows the keys, their root tables and where the
tenant tables come from; a bad file names every problem at once, the tenant_keys checks included."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_support import run_cli

_KEYS = """\
tenant_keys:
  organization: {columns: [organization_id], root: organizations}
  team: {columns: [team_id], parent: organization, root: teams}
"""


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_summary_shows_the_key_hierarchy_and_its_root_tables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _err = run_cli(capsys, monkeypatch, "check-config", _file(tmp_path, _KEYS))
    assert code == 0
    assert "  tenant columns     organization_id, team_id\n" in out
    assert (
        "  tenant tables      every table with a tenant column, learned at run time from ORM mappings and the "
        "catalog\n" in out
    )
    assert "  tenant keys        organization > team\n" in out
    assert "  key organization   columns organization_id; root table organizations\n" in out
    assert "  key team           columns team_id; root table teams; parent organization\n" in out


def test_without_discovery_the_summary_says_no_table_is_tenant_scoped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, out, _err = run_cli(capsys, monkeypatch, "check-config", _file(tmp_path, _KEYS + "discover: false\n"))
    assert code == 0
    assert "  tenant tables      none (discover is off: no table is tenant-scoped besides the root tables)\n" in out


def test_one_key_with_a_root_table_shows_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = "tenant_columns: [org_id]\ntenant_roots: {org_id: orgs}\ntenant_tables: {projects: org_id}\n"
    code, out, _err = run_cli(capsys, monkeypatch, "check-config", _file(tmp_path, text))
    assert code == 0
    assert "  tenant tables      projects (org_id); plus every table with a tenant column" in out
    assert "  root tables        orgs (holds org_id)\n" in out
    assert "tenant keys" not in out


def test_every_error_is_named_at_once_tenant_keys_included(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A tenant_columns conflict and a rule typo in one file: both reported, each with its line."""
    text = "tenant_columns: [org_id]\n" + _KEYS + "rules:\n  slow_qeury: {threshold_ms: 100}\n"
    code, _out, err = run_cli(capsys, monkeypatch, "check-config", _file(tmp_path, text))
    assert code == 2
    assert "  rules.slow_qeury: unknown rule 'slow_qeury' (did you mean 'slow_query'?)" in err
    assert (
        "  tenant_columns: tenant_keys declares the tenant columns (here: organization_id, team_id); remove "
        "tenant_columns, or list its columns under a key (line 1, column 1)" in err
    )


def test_every_error_is_named_at_once_in_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json

    text = _KEYS.replace("parent: organization", "parent: organisation") + "mode: watch\n"
    code, out, _err = run_cli(capsys, monkeypatch, "check-config", _file(tmp_path, text), "--json")
    assert code == 2
    paths = [issue["path"] for issue in json.loads(out)["issues"]]
    assert paths == ["mode", "tenant_keys.team.parent"]
