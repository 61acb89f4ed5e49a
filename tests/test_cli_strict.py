"""check-config and explain are strict: mistakes in rules files are errors, ``--json`` errors are JSON, and a
statement that cannot be analyzed has its own exit status so a CI gate cannot pass on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import json_lines, run_cli
from tenantwatch.cli import EXIT_FINDINGS, EXIT_OK, EXIT_UNANALYZED, EXIT_USAGE

Capsys = pytest.CaptureFixture[str]


def _write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_check_config_rejects_a_key_of_another_rule(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules:\n  slow_query: {threshold: 5}\n")
    code, out, err = run_cli(capsys, monkeypatch, "check-config", str(rules))
    assert code == EXIT_USAGE
    assert out == ""
    assert "rules.slow_query.threshold: 'threshold' is not a slow_query setting" in err


def test_check_config_unknown_rule_suggests_the_closest(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "rules:\n  large_results: {threshold: 5}\n")
    code, _, err = run_cli(capsys, monkeypatch, "check-config", str(rules))
    assert code == EXIT_USAGE
    assert "unknown rule 'large_results' (did you mean 'large_result'?)" in err
    assert "valid rules: missing_tenant_filter" in err


def test_check_config_yaml_error_names_file_line_and_column(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "mode: monitor\nexclude_tables: [plans\nrules: {}\n")
    code, _, err = run_cli(capsys, monkeypatch, "check-config", str(rules))
    assert code == EXIT_USAGE
    assert f"{rules}:3:" in err
    assert "<unicode string>" not in err


def test_check_config_json_error_is_json_on_stdout(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = _write(tmp_path, "mode: paranoid\nrules:\n  slow_query: {threshold: 5}\n")
    code, out, err = run_cli(capsys, monkeypatch, "check-config", str(rules), "--json")
    assert code == EXIT_USAGE
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["exit_code"] == EXIT_USAGE
    assert doc["file"] == str(rules)
    assert {(i["path"], i["line"]) for i in doc["issues"]} == {("mode", 1), ("rules.slow_query.threshold", 3)}
    assert "rules.slow_query.threshold" in err  # the human text still goes to stderr


def test_check_config_json_for_unreadable_file(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "check-config", str(tmp_path / "absent.yaml"), "--json")
    assert code == EXIT_USAGE
    doc = json.loads(out)
    assert doc["valid"] is False and "cannot read" in doc["error"]


def test_explain_json_config_error_is_json(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = _write(tmp_path, "rules:\n  slow_query: {per_table: {a: 1}}\n")
    code, out, _ = run_cli(capsys, monkeypatch, "explain", "SELECT 1", "--rules", str(rules), "--json")
    assert code == EXIT_USAGE
    (doc,) = json_lines(out)
    assert doc["exit_code"] == EXIT_USAGE
    assert doc["issues"][0]["path"] == "rules.slow_query.per_table"


def test_json_usage_error_is_json(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_cli(capsys, monkeypatch, "explain", "SELECT 1", "--json", "--fail-on", "loud")
    assert code == EXIT_USAGE
    (doc,) = json_lines(out)
    assert "--fail-on" in doc["error"] and doc["exit_code"] == EXIT_USAGE
    assert "usage:" in err


def test_unparseable_sql_has_its_own_exit_status(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """``SELEC * FRM x`` used to exit 0 with "findings none": a CI gate passed on garbage."""
    code, out, _ = run_cli(capsys, monkeypatch, "explain", "SELEC * FRM objectives", "--tenant-table", "objectives")
    assert code == EXIT_UNANALYZED == 3
    assert "tenant filter   unknown" in out
    assert "findings        none" not in out
    code, _, _ = run_cli(
        capsys, monkeypatch, "explain", "SELEC * FRM objectives", "--tenant-table", "objectives", "--fail-on", "never"
    )
    assert code == EXIT_UNANALYZED


def test_unparseable_sql_outranks_findings_and_bad_lines_outrank_both(
    capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    flagged = json.dumps({"sql": "SELECT * FROM objectives", "tenant": "a"})
    garbage = json.dumps({"sql": "SELEC * FRM objectives", "tenant": "a"})
    clean = json.dumps({"sql": "SELECT 1"})
    argv = ("explain", "--tenant-table", "objectives", "--json")
    assert run_cli(capsys, monkeypatch, *argv, stdin=clean)[0] == EXIT_OK
    assert run_cli(capsys, monkeypatch, *argv, stdin=flagged)[0] == EXIT_FINDINGS
    code, out, _ = run_cli(capsys, monkeypatch, *argv, stdin=f"{flagged}\n{garbage}\n{clean}\n")
    assert code == EXIT_UNANALYZED
    assert [d["tenant_filter"] for d in json_lines(out)] == ["missing", "unknown", "not_applicable"]
    assert run_cli(capsys, monkeypatch, *argv, stdin=f"{garbage}\nnot json\n")[0] == EXIT_USAGE


def test_explain_text_mode_survives_undecodable_argument_bytes(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command-line byte that is not UTF-8 arrives as a lone surrogate; the report escapes it."""
    code, out, _ = run_cli(capsys, monkeypatch, "explain", "SELECT * FROM objectives WHERE title = '\udcff'")
    assert code in (EXIT_OK, EXIT_UNANALYZED)
    assert "\\udcff" in out
    out.encode("utf-8")  # what reached stdout is writable to any UTF-8 stream


def test_empty_sections_read_as_defaults(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rules:`` with every entry commented out is null in YAML: it means the defaults, not an error."""
    rules = _write(tmp_path, "rules:\n  # slow_query: {threshold_ms: 5}\nsuppressions:\n  # - {table: x}\n")
    code, out, err = run_cli(capsys, monkeypatch, "check-config", str(rules))
    assert code == EXIT_OK, err
    assert "> 500 ms" in out
