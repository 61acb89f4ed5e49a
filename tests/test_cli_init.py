"""``tenantwatch init``: a commented starter rules file with the tenant tables of a real database."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from cli_support import json_lines, run_cli
from tenantwatch.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from tenantwatch.config import RULE_IDS, load_settings

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE projects (id INTEGER PRIMARY KEY, organization_id TEXT, name TEXT)")
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, tenant_id TEXT, total INT)")
        conn.execute("CREATE TABLE plans (id INTEGER PRIMARY KEY, name TEXT)")
    return f"sqlite:///{db}"


def test_init_writes_the_tenant_tables_of_a_sqlite_database(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = tmp_path / "rules.yaml"
    code, out, err = run_cli(capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", str(out_file))
    assert code == EXIT_OK, err
    assert out == ""
    assert f"wrote {out_file}: 2 tenant table(s) from the sqlite catalog" in err
    settings = load_settings(out_file, environ={})
    assert settings.tenant_tables == {"invoices": "tenant_id", "projects": "organization_id"}
    body = out_file.read_text(encoding="utf-8")
    assert "suppressions:" in body and "# - {fingerprint:" in body  # where suppressions go
    assert "slow_query: {threshold_ms: 500" in body  # defaults shown

    code, out, _ = run_cli(capsys, monkeypatch, "check-config", str(out_file))
    assert code == EXIT_OK and f"{out_file}: OK" in out
    code, out, _ = run_cli(
        capsys, monkeypatch, "explain", "SELECT * FROM invoices", "--rules", str(out_file), "--tenant", "a", "--json"
    )
    assert code == EXIT_FINDINGS
    assert [f["rule"] for f in json_lines(out)[0]["findings"]] == ["missing_tenant_filter"]


def test_init_never_overwrites_without_force(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = tmp_path / "rules.yaml"
    out_file.write_text("mode: enforce\n", encoding="utf-8")
    code, _, err = run_cli(capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", str(out_file))
    assert code == EXIT_USAGE
    assert "exists: pass --force" in err
    assert out_file.read_text(encoding="utf-8") == "mode: enforce\n"
    code, _, _ = run_cli(capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", str(out_file), "--force")
    assert code == EXIT_OK
    assert load_settings(out_file, environ={}).mode == "monitor"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rules.yaml")] == []  # no temporary left


def test_init_default_output_is_rules_yaml_in_the_current_directory(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert run_cli(capsys, monkeypatch, "init", "--database-url", sqlite_url)[0] == EXIT_OK
    assert load_settings(work / "rules.yaml", environ={}).tenant_tables


def test_init_to_stdout_with_custom_tenant_column(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli(
        capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", "-", "--tenant-column", "tenant_id"
    )
    assert code == EXIT_OK
    data = yaml.safe_load(out)
    assert data["tenant_columns"] == ["tenant_id"]
    assert data["tenant_tables"] == {"invoices": "tenant_id"}


def test_init_with_no_tenant_table_still_writes_a_valid_file_and_says_so(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_file = tmp_path / "rules.yaml"
    code, _, err = run_cli(
        capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", str(out_file), "--tenant-column", "org"
    )
    assert code == EXIT_OK
    assert "no table has a tenant column (org)" in err
    assert load_settings(out_file, environ={}).tenant_columns == ("org",)


def test_init_refuses_a_missing_database(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "init", "--database-url", f"sqlite:///{tmp_path / 'nope.db'}")
    assert code == EXIT_USAGE
    assert "no SQLite database" in err
    assert not (tmp_path / "rules.yaml").exists()


def test_every_default_shown_in_the_starter_file_is_the_real_default(
    tmp_path: Path, sqlite_url: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting a rule line of the starter file changes nothing: the values shown are the defaults."""
    code, out, _ = run_cli(capsys, monkeypatch, "init", "--database-url", sqlite_url, "-o", "-")
    assert code == EXIT_OK
    uncommented = re.sub(r"(?m)^  # (\w+: \{)", r"  \1", out)
    shown = re.findall(r"(?m)^  (\w+): \{", uncommented)
    assert sorted(shown) == sorted(RULE_IDS)
    path = tmp_path / "uncommented.yaml"
    path.write_text(uncommented, encoding="utf-8")
    explicit = load_settings(path, environ={})
    defaults = load_settings(environ={}, tenant_tables=explicit.tenant_tables)
    for rule in RULE_IDS:
        assert explicit.enabled(rule) == defaults.enabled(rule), rule
        assert explicit.severity(rule) == defaults.severity(rule), rule
    assert explicit.large_result_threshold == defaults.large_result_threshold
    assert explicit.slow_query_ms == defaults.slow_query_ms


@pytest.fixture
def pg_tenant_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    schema = f"init_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"CREATE TABLE {schema}.init_orders (id int PRIMARY KEY, organization_id int, total int)"))
        conn.execute(text(f"CREATE TABLE {schema}.init_currencies (code text PRIMARY KEY)"))
    try:
        yield postgres_url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.mark.postgres
def test_init_writes_the_tenant_tables_of_a_postgres_database(
    tmp_path: Path, pg_tenant_schema: tuple[str, str], capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, schema = pg_tenant_schema
    out_file = tmp_path / "rules.yaml"
    code, _, err = run_cli(capsys, monkeypatch, "init", "--database-url", url, "-o", str(out_file))
    assert code == EXIT_OK, err
    settings = load_settings(out_file, environ={})
    assert settings.tenant_tables.get(f"{schema}.init_orders") == "organization_id"
    assert not any("init_currencies" in table for table in settings.tenant_tables)
    password = re.match(r"[^:]+://[^:@]+:([^@]+)@", url)
    if password:
        assert password.group(1) not in out_file.read_text(encoding="utf-8")
    code, out, _ = run_cli(
        capsys,
        monkeypatch,
        "explain",
        f"DELETE FROM {schema}.init_orders WHERE total < 3",
        "--rules",
        str(out_file),
        "--tenant",
        "7",
        "--json",
    )
    assert code == EXIT_FINDINGS
    assert [f["rule"] for f in json_lines(out)[0]["findings"]] == ["unscoped_write"]
