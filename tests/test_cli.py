"""The ``tenantwatch`` command line: explain, check-config, version, and their exit codes."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tenantwatch.cli import main
from tenantwatch.version import __version__

# --- helpers ---------------------------------------------------------------------------------------------------


class _Stdin(io.StringIO):
    """stdin double: JSON lines, or an interactive terminal with nothing piped."""

    def __init__(self, text: str = "", *, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture(autouse=True)
def _no_rules_file_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests control configuration; a TENANTWATCH_* variable of the developer's shell must not leak in."""
    for name in list(os.environ):
        if name.startswith("TENANTWATCH_"):
            monkeypatch.delenv(name)


def _run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str | None = None,
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", _Stdin(stdin or "", tty=stdin is None))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _rules(obj: dict[str, Any]) -> list[str]:
    return [finding["rule"] for finding in obj["findings"]]


def _write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


# --- explain: argument form ------------------------------------------------------------------------------------


def test_explain_argument_reports_missing_filter_per_scope(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The human report names the scope, table and verdict, and the finding with severity; exit code 1."""
    code, out, _ = _run(
        capsys,
        monkeypatch,
        "explain",
        "SELECT id FROM objectives WHERE organization_id = 'acme' OR true",
        "--tenant-table",
        "objectives",
        "--tenant",
        "acme",
    )
    assert code == 1
    assert "operation       SELECT" in out
    assert "tenant tables   objectives (organization_id)" in out
    assert "tenant filter   missing" in out
    scope_lines = [line.split() for line in out.splitlines() if line.startswith("    main")]
    assert scope_lines and scope_lines[0][:4] == ["main", "objectives", "read", "missing"]
    assert "CRITICAL" in out and "missing_tenant_filter [objectives]" in out


def test_explain_argument_with_named_param_is_clean(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = _run(
        capsys,
        monkeypatch,
        "explain",
        "SELECT id FROM objectives WHERE organization_id = :org AND status = 'open'",
        "--tenant-table",
        "objectives",
        "--tenant",
        "acme",
        "--param",
        "org=acme",
    )
    assert code == 0
    assert "tenant filter   present" in out
    assert "tenant values   acme" in out
    assert "findings        none" in out


def test_explain_text_shows_tenant_values_canonically(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UUID bound as ``uuid.hex`` (SQLite) and a dashed context: the text shows one form, the canonical one."""
    own, other = uuid.UUID(int=0x2F1C6A8E5B7D4C1E9A3F0D2B4C6E8A10), uuid.UUID(int=0x9B8A7C6D5E4F4A3B8C2D1E0F9A8B7C6D)
    sql = "SELECT id FROM objectives WHERE organization_id IN (?, ?)"
    args = ("explain", sql, "--tenant-table", "objectives", "--tenant", str(own).upper(), "--param", own.hex)
    code, out, _ = _run(capsys, monkeypatch, *args, "--param", str(own))
    assert code == 0
    assert f"tenant values   {own}\n" in out
    assert f"context         tenant={own} " in out
    code, out, _ = _run(capsys, monkeypatch, *args, "--param", other.hex)
    assert code == 1
    assert f"tenant values   {own}, {other}\n" in out
    assert f"filters on tenant '{other}' but the context tenant is '{own}'" in out


def test_explain_argument_positional_params_resolve_cross_tenant(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``?`` placeholders take bare --param values in order; a value of another tenant is cross_tenant."""
    code, out, _ = _run(
        capsys,
        monkeypatch,
        "explain",
        "SELECT id FROM objectives WHERE status = ? AND organization_id = ?",
        "--tenant-table",
        "objectives",
        "--tenant",
        "acme",
        "--param",
        "open",
        "--param",
        "globex",
        "--json",
    )
    assert code == 1
    (obj,) = _json_lines(out)
    assert obj["tenant_values"] == ["globex"]
    assert _rules(obj) == ["cross_tenant"]
    assert obj["findings"][0]["severity"] == "critical"
    assert "globex" in obj["findings"][0]["message"]


def test_explain_fail_on_raises_the_bar(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning-level finding is printed but does not fail with --fail-on high."""
    argv = [
        "explain",
        "SELECT id FROM objectives WHERE organization_id = :org",
        "--tenant-table",
        "objectives",
        "--tenant",
        "acme",
        "--param",
        "org=acme",
        "--returned-rows",
        "5000",
        "--json",
    ]
    code, out, _ = _run(capsys, monkeypatch, *argv)
    assert code == 1
    assert _rules(_json_lines(out)[0]) == ["large_result"]
    code, out, _ = _run(capsys, monkeypatch, *argv, "--fail-on", "high")
    assert code == 0
    assert _rules(_json_lines(out)[0]) == ["large_result"]


def test_explain_mixed_param_styles_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _run(capsys, monkeypatch, "explain", "SELECT 1", "--param", "org=acme", "--param", "globex")
    assert code == 2
    assert out == ""
    assert "--param" in err


def test_explain_without_sql_on_a_terminal_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _run(capsys, monkeypatch, "explain")
    assert code == 2
    assert "JSON lines" in err


# --- explain: JSON lines on stdin ------------------------------------------------------------------------------

_LINES = [
    # correct: named parameter, context tenant matches
    {"sql": "SELECT * FROM invoices WHERE organization_id = :org", "params": {"org": "acme"}, "tenant": "acme"},
    # IN list bound as one expanding parameter: one value belongs to another tenant
    {
        "sql": "SELECT * FROM invoices WHERE organization_id IN (%(orgs)s)",
        "params": {"orgs": ["acme", "globex"]},
        "tenant": "acme",
        "role": "member",
    },
    # positional parameters, unscoped UPDATE
    {"sql": "UPDATE invoices SET status = ? WHERE status = ?", "params": ["void", "draft"], "tenant": "acme"},
    # superuser write, otherwise correct
    {
        "sql": "UPDATE invoices SET status = 'paid' WHERE id = $1 AND organization_id = $2",
        "params": [7, "acme"],
        "tenant": "acme",
        "user": "support-7",
        "role": "superuser",
    },
    # a CTE that forgets the filter while the outer query has one
    {
        "sql": "WITH recent AS (SELECT id FROM invoices ORDER BY id DESC LIMIT 5) "
        "SELECT i.* FROM invoices i JOIN recent r ON r.id = i.id WHERE i.organization_id = 'acme'",
        "tenant": "acme",
    },
    # tagged, not flagged
    {"sql": "SELECT organization_id, count(*) FROM invoices GROUP BY 1", "unscoped": "billing roll-up"},
]


def test_explain_stdin_json_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One JSON object per input line, in order, with verdict details and findings [{rule, severity, message}]."""
    stdin = "\n".join(json.dumps(line) for line in _LINES) + "\n"
    code, out, _ = _run(capsys, monkeypatch, "explain", "--tenant-table", "invoices", "--json", stdin=stdin)
    assert code == 1
    objs = _json_lines(out)
    assert [o["input"] for o in objs] == [1, 2, 3, 4, 5, 6]
    for obj in objs:
        assert {"sql", "operation", "tables", "tenant_tables", "tenant_filter", "scopes", "context"} <= obj.keys()
        for finding in obj["findings"]:
            assert {"rule", "severity", "message"} <= finding.keys()
            assert finding["message"]

    ok, in_list, update, superuser, cte, rollup = objs
    assert ok["findings"] == []
    assert ok["tenant_filter"] == "present"
    assert ok["tenant_values"] == ["acme"]
    assert ok["tenant_tables"] == [{"table": "invoices", "column": "organization_id"}]

    assert _rules(in_list) == ["cross_tenant"]
    assert in_list["tenant_values"] == ["acme", "globex"]
    assert in_list["context"] == {"tenant": "acme", "user": None, "role": "member", "unscoped": None}

    assert update["operation"] == "UPDATE"
    assert _rules(update) == ["unscoped_write"]
    assert [(s["role"], s["verdict"]) for s in update["scopes"]] == [("write", "missing")]

    assert superuser["tenant_filter"] == "present"
    assert superuser["tenant_values"] == ["acme"]
    assert _rules(superuser) == ["superuser_write"]
    assert superuser["findings"][0]["severity"] == "high"

    assert cte["tenant_filter"] == "partial"
    missing = [s for s in cte["scopes"] if s["verdict"] == "missing"]
    assert [(s["scope"], s["table"]) for s in missing] == [("cte:recent", "invoices")]
    assert _rules(cte) == ["missing_tenant_filter"]

    assert rollup["tenant_filter"] == "missing"
    assert rollup["context"]["unscoped"] == "billing roll-up"
    assert rollup["findings"] == []


def test_explain_stdin_flags_are_defaults_for_every_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--tenant applies to lines that do not say otherwise; a line's own "tenant" wins."""
    lines = [
        {"sql": "SELECT * FROM invoices WHERE organization_id = :o", "params": {"o": "globex"}},
        {"sql": "SELECT * FROM invoices WHERE organization_id = :o", "params": {"o": "globex"}, "tenant": "globex"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines)
    code, out, _ = _run(
        capsys, monkeypatch, "explain", "-", "--tenant-table", "invoices", "--tenant", "acme", "--json", stdin=stdin
    )
    assert code == 1
    first, second = _json_lines(out)
    assert first["context"]["tenant"] == "acme"
    assert _rules(first) == ["cross_tenant"]
    assert second["context"]["tenant"] == "globex"
    assert second["findings"] == []


def test_explain_bad_lines_are_reported_and_skipped(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad line gets an {"error"} object naming its line; good lines around it are still explained; exit 2."""
    good = json.dumps({"sql": "SELECT * FROM invoices WHERE organization_id = 'acme'", "tenant": "acme"})
    stdin = "\n".join(
        [
            good,
            "{not json",
            "",
            json.dumps(["SELECT 1"]),
            json.dumps({"params": [1]}),
            json.dumps({"sql": "SELECT 1", "params": "acme"}),
            json.dumps({"sql": "SELECT 1", "returned_rows": "many"}),
            good,
        ]
    )
    code, out, err = _run(capsys, monkeypatch, "explain", "--tenant-table", "invoices", "--json", stdin=stdin)
    assert code == 2
    objs = _json_lines(out)
    assert [o["input"] for o in objs] == [1, 2, 4, 5, 6, 7, 8]
    errors = {o["input"]: o["error"] for o in objs if "error" in o}
    assert set(errors) == {2, 4, 5, 6, 7}
    assert "not valid JSON" in errors[2]
    assert "JSON object" in errors[4]
    assert '"sql"' in errors[5]
    assert '"params"' in errors[6]
    assert '"returned_rows"' in errors[7]
    assert all(message.startswith(f"line {n}:") for n, message in errors.items())
    assert objs[0]["findings"] == [] and objs[-1]["findings"] == []
    assert "line 2:" in err and "line 7:" in err


def test_explain_bad_line_in_text_mode(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = "{oops\n" + json.dumps({"sql": "SELECT * FROM invoices", "tenant": "acme"}) + "\n"
    code, out, err = _run(capsys, monkeypatch, "explain", "--tenant-table", "invoices", stdin=stdin)
    assert code == 2
    assert "line 1: not valid JSON" in err
    assert "missing_tenant_filter" in out


# --- explain: rules file and database catalog ------------------------------------------------------------------


def test_explain_loads_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tenant tables, thresholds, severities and suppressions come from --rules."""
    rules = _write(
        tmp_path,
        "rules.yaml",
        """
tenant_tables: {legacy_orders: org}
rules:
  large_result: {threshold: 10, severity: high}
suppressions:
  - {rule: missing_tenant_filter, table: legacy_orders, reason: "reviewed in SEC-12"}
""",
    )
    lines = [
        {"sql": "SELECT * FROM legacy_orders WHERE org = :org", "params": {"org": "acme"}, "tenant": "acme"},
        {"sql": "SELECT * FROM legacy_orders WHERE org = :org", "params": {"org": "acme"}, "returned_rows": 11},
        {"sql": "SELECT * FROM legacy_orders", "tenant": "acme"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines)
    code, out, _ = _run(capsys, monkeypatch, "explain", "--rules", str(rules), "--json", stdin=stdin)
    clean, large, suppressed = _json_lines(out)
    assert clean["tenant_tables"] == [{"table": "legacy_orders", "column": "org"}]
    assert clean["findings"] == []
    large_findings = [f for f in large["findings"] if f["rule"] == "large_result"]
    assert large_findings and large_findings[0]["severity"] == "high"
    assert "threshold 10" in large_findings[0]["message"]
    assert suppressed["findings"] == []
    assert [(s["rule"], s["reason"]) for s in suppressed["suppressed"]] == [
        ("missing_tenant_filter", "reviewed in SEC-12")
    ]
    assert code == 1  # the large result


def test_explain_enforce_mode_says_what_would_be_blocked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In enforce mode a critical finding blocks the statement; a warning does not."""
    rules = _write(tmp_path, "rules.yaml", "mode: enforce\ntenant_tables: {invoices: organization_id}\n")
    lines = [
        {"sql": "DELETE FROM invoices WHERE status = 'draft'", "tenant": "acme"},
        {"sql": "SELECT * FROM invoices WHERE organization_id = 'acme'", "tenant": "acme", "duration_ms": 900},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines)
    code, out, _ = _run(capsys, monkeypatch, "explain", "--rules", str(rules), "--json", stdin=stdin)
    assert code == 1
    delete, slow = _json_lines(out)
    assert _rules(delete) == ["unscoped_write"]
    assert delete["enforce_would_block"] is True
    assert _rules(slow) == ["slow_query"]
    assert slow["enforce_would_block"] is False
    code, out, _ = _run(
        capsys,
        monkeypatch,
        "explain",
        "INSERT INTO invoices (organization_id, number) VALUES (:org, 'X-1')",
        "--rules",
        str(rules),
        "--tenant",
        "acme",
        "--param",
        "org=globex",
    )
    assert code == 1
    assert "written values  globex" in out
    assert "enforce mode    would BLOCK this statement" in out


def test_explain_warns_when_no_tenant_table_is_known(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without rules, catalog or --tenant-table every table reads as global: say so instead of a silent pass."""
    code, out, err = _run(capsys, monkeypatch, "explain", "SELECT * FROM invoices", "--tenant", "acme")
    assert code == 0
    assert "tenant filter   not_applicable" in out
    assert "no tenant-scoped tables are known" in err


def test_explain_rules_file_from_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules.yaml", "tenant_tables: {legacy_orders: org}\n")
    monkeypatch.setenv("TENANTWATCH_RULES_FILE", str(rules))
    code, out, _ = _run(capsys, monkeypatch, "explain", "SELECT * FROM legacy_orders", "--tenant", "t1", "--json")
    assert code == 1
    assert _rules(_json_lines(out)[0]) == ["missing_tenant_filter"]


def test_explain_bad_rules_file_exits_2_with_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules.yaml", "rules:\n  large_result: {threshold: -5}\n  no_such_rule: {}\n")
    code, out, err = _run(capsys, monkeypatch, "explain", "SELECT 1", "--rules", str(rules))
    assert code == 2
    assert out == ""
    assert "rules.large_result.threshold" in err
    assert "rules.no_such_rule" in err


def test_explain_learns_tenant_tables_from_sqlite_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--database-url reads the catalog: tables with organization_id are tenant-scoped, the others are not."""
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE projects (id INTEGER PRIMARY KEY, organization_id TEXT, name TEXT)")
        conn.execute("CREATE TABLE countries (code TEXT PRIMARY KEY, name TEXT)")
    lines = [
        {"sql": "SELECT p.name, c.name FROM projects p JOIN countries c ON c.code = p.name", "tenant": "acme"},
        {"sql": "SELECT name FROM countries", "tenant": "acme"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines)
    code, out, err = _run(capsys, monkeypatch, "explain", "--database-url", f"sqlite:///{db}", "--json", stdin=stdin)
    assert code == 1
    projects, countries = _json_lines(out)
    assert projects["tables"] == ["projects", "countries"]
    assert projects["tenant_tables"] == [{"table": "projects", "column": "organization_id"}]
    assert _rules(projects) == ["missing_tenant_filter"]
    assert countries["tenant_filter"] == "not_applicable"
    assert countries["findings"] == []
    assert err == ""

    code, out, err = _run(
        capsys, monkeypatch, "explain", "SELECT name FROM projects", "--database-url", f"sqlite+aiosqlite:///{db}"
    )
    assert code == 1  # an async driver URL works too: the catalog is read through the sync driver
    assert "learned 1 tenant table(s) from the sqlite catalog" in err
    assert "missing_tenant_filter" in out


def test_explain_unreachable_database_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.db"
    code, _, err = _run(capsys, monkeypatch, "explain", "SELECT 1", "--database-url", f"sqlite:///{missing}")
    assert code == 2
    assert "no SQLite database" in err
    assert not missing.exists()
    code, _, err = _run(capsys, monkeypatch, "explain", "SELECT 1", "--database-url", "not a url")
    assert code == 2
    assert "--database-url" in err


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A per-test schema with one tenant table (tenant_id) and one global table."""
    schema = f"cli_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"CREATE TABLE {schema}.cli_orders (id int PRIMARY KEY, tenant_id text, total int)"))
        conn.execute(text(f"CREATE TABLE {schema}.cli_currencies (code text PRIMARY KEY)"))
    try:
        yield postgres_url, schema
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_explain_learns_tenant_tables_from_postgres(
    driver: str, pg_schema: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog of a real PostgreSQL says which tables are tenant-scoped (an async driver URL works too)."""
    url, schema = pg_schema
    lines = [
        {
            "sql": f"SELECT o.total, c.code FROM {schema}.cli_orders o CROSS JOIN {schema}.cli_currencies c "
            "WHERE o.tenant_id = %(t)s",
            "params": {"t": "acme"},
            "tenant": "acme",
        },
        {
            "sql": f"DELETE FROM {schema}.cli_orders WHERE total < $1",
            "params": [10],
            "tenant": "acme",
        },
    ]
    stdin = "\n".join(json.dumps(line) for line in lines)
    driver_url = url.replace("postgresql+psycopg://", f"postgresql+{driver}://")
    assert driver_url.startswith(f"postgresql+{driver}://")
    code, out, _ = _run(capsys, monkeypatch, "explain", "--database-url", driver_url, "--json", stdin=stdin)
    assert code == 1
    scoped, delete = _json_lines(out)
    assert scoped["tables"] == ["cli_orders", "cli_currencies"]  # the analyzer reports bare table names
    assert scoped["tenant_tables"] == [{"table": "cli_orders", "column": "tenant_id"}]
    assert scoped["tenant_filter"] == "present"
    assert scoped["tenant_values"] == ["acme"]
    assert scoped["findings"] == []
    assert delete["operation"] == "DELETE"
    assert _rules(delete) == ["unscoped_write"]


# --- check-config ----------------------------------------------------------------------------------------------


def test_check_config_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(
        tmp_path,
        "rules.yaml",
        """
mode: enforce
tenant_tables: {legacy_orders: org}
rules:
  superuser_write: {enabled: false}
  slow_query: {threshold_ms: 250}
suppressions:
  - {table: plans, reason: global}
""",
    )
    code, out, err = _run(capsys, monkeypatch, "check-config", str(rules))
    assert code == 0, err
    assert f"{rules}: OK" in out
    assert "enforce" in out
    assert "legacy_orders (org)" in out
    assert "superuser_write" in out
    assert "> 250 ms" in out

    code, out, _ = _run(capsys, monkeypatch, "check-config", str(rules), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True
    assert doc["settings"]["mode"] == "enforce"


def test_check_config_names_the_environment_that_overrides_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules.yaml", "mode: monitor\n")
    monkeypatch.setenv("TENANTWATCH_MODE", "enforce")
    code, out, _ = _run(capsys, monkeypatch, "check-config", str(rules))
    assert code == 0
    assert "mode               monitor" in out  # the file is what is checked
    assert "override this file at run time: TENANTWATCH_MODE" in out


def test_check_config_invalid_names_every_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(
        tmp_path,
        "rules.yaml",
        """
mode: paranoid
rules:
  slow_query: {threshold_ms: 0}
suppressions:
  - {reason: "matches nothing"}
""",
    )
    code, out, err = _run(capsys, monkeypatch, "check-config", str(rules))
    assert code == 2
    assert out == ""
    for path in ("mode", "rules.slow_query.threshold_ms", "suppressions.0"):
        assert f"  {path}" in err


def test_check_config_unreadable_and_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = _run(capsys, monkeypatch, "check-config", str(tmp_path / "absent.yaml"))
    assert code == 2
    assert "cannot read" in err
    bad_yaml = _write(tmp_path, "bad.yaml", "rules: [unclosed\n")
    code, _, err = _run(capsys, monkeypatch, "check-config", str(bad_yaml))
    assert code == 2
    assert "not valid YAML" in err
    code, _, err = _run(capsys, monkeypatch, "check-config")
    assert code == 2
    assert "TENANTWATCH_RULES_FILE" in err


def test_check_config_reads_env_rules_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules.yaml", "exclude_tables: [plans]\n")
    monkeypatch.setenv("TENANTWATCH_RULES_FILE", str(rules))
    code, out, _ = _run(capsys, monkeypatch, "check-config")
    assert code == 0
    assert "excluded tables    plans" in out


# --- version and usage -----------------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(capsys, monkeypatch, "version")[:2] == (0, f"tenantwatch {__version__}\n")
    assert _run(capsys, monkeypatch, "--version")[:2] == (0, f"tenantwatch {__version__}\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(capsys, monkeypatch)[0] == 2
    assert _run(capsys, monkeypatch, "frobnicate")[0] == 2
    code, _, err = _run(capsys, monkeypatch, "explain", "SELECT 1", "--fail-on", "loud")
    assert code == 2
    assert "--fail-on" in err


@pytest.mark.parametrize(("bound", "expected_code"), [(uuid.UUID(int=7).hex, 0), (uuid.UUID(int=8).hex, 1)])
def test_explain_compares_uuid_tenants_canonically(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bound: str, expected_code: int
) -> None:
    """The statement binds ``uuid.hex``, the context holds the dashed form: the same tenant is not cross_tenant."""
    code, out, _ = _run(
        capsys,
        monkeypatch,
        "explain",
        "SELECT id FROM objectives WHERE organization_id = ?",
        "--tenant-table",
        "objectives",
        "--tenant",
        str(uuid.UUID(int=7)),
        "--param",
        bound,
        "--json",
    )
    (obj,) = _json_lines(out)
    assert code == expected_code
    assert _rules(obj) == ([] if expected_code == 0 else ["cross_tenant"])
