"""The baseline file and ``tenantwatch baseline``: written from findings documents, updated keeping reasons,
checked for empty reasons, and every bad file or document named with its line (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import run_cli
from tenantwatch.cli import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from tenantwatch.core.findings import Finding, finding_fingerprint
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.gate import Baseline, BaselineError
from tenantwatch.tools.groups import FindingGroups

Capsys = pytest.CaptureFixture[str]


def _document(root: Path, path: Path, *places: tuple[str, int]) -> Path:
    """A findings document with one missing_tenant_filter per (function, line) in ``root/app/views.py``."""
    groups = FindingGroups()
    for function, line in places:
        facts = SpanFacts(
            statement="SELECT objectives.id FROM objectives",
            statement_fingerprint="stmt-1",
            code_filepath=str(root / "app" / "views.py"),
            code_lineno=line,
            code_function=function,
        )
        fingerprint = finding_fingerprint("missing_tenant_filter", facts)
        groups.add(Finding("missing_tenant_filter", "critical", "no filter", fingerprint, table="objectives"), facts)
    path.write_text(json.dumps(groups.to_json()))
    return path


def test_writes_an_entry_per_finding_with_an_empty_reason_and_check_fails_until_reviewed(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    findings = _document(tmp_path, tmp_path / "f.json", ("list_all", 12), ("export", 40))
    code, out, err = run_cli(capsys, monkeypatch, "baseline", str(findings))
    assert code == EXIT_OK, err
    assert "tenantwatch-baseline.yaml: 2 entries: 2 added, 0 moved, 0 kept, 0 stale" in out
    assert "2 entries have no reason yet" in out
    baseline = Baseline.load(tmp_path / "tenantwatch-baseline.yaml")
    assert {(e.path, e.line, e.function, e.rule, e.table) for e in baseline.entries} == {
        ("app/views.py", 12, "list_all", "missing_tenant_filter", "objectives"),
        ("app/views.py", 40, "export", "missing_tenant_filter", "objectives"),
    }
    assert {e.statement for e in baseline.entries} == {"SELECT objectives.id FROM objectives"}

    code, out, _ = run_cli(capsys, monkeypatch, "baseline", "--check")
    assert code == EXIT_FINDINGS
    assert "2 of 2 entries have an empty reason" in out
    written = (tmp_path / "tenantwatch-baseline.yaml").read_text().splitlines()
    first_reason = written.index("  reason: ''") + 1
    assert f"line {first_reason}: missing_tenant_filter at app/views.py:12 in list_all" in out  # where to write it


def test_update_keeps_reasons_follows_moved_lines_and_prunes_only_with_prune(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_cli(capsys, monkeypatch, "baseline", str(_document(tmp_path, tmp_path / "1.json", ("a", 1), ("b", 2))))
    path = tmp_path / "tenantwatch-baseline.yaml"
    path.write_text(path.read_text().replace("reason: ''", "reason: accepted by ana"))
    second = _document(tmp_path, tmp_path / "2.json", ("a", 5), ("c", 3))  # a moved, b fixed, c new
    code, out, _ = run_cli(capsys, monkeypatch, "baseline", str(second))
    assert code == EXIT_OK
    assert "3 entries: 1 added, 1 moved, 0 kept, 1 stale kept (--prune drops them)" in out
    entries = {e.function: e for e in Baseline.load(path).entries}
    assert (entries["a"].line, entries["a"].reason) == (5, "accepted by ana")
    assert entries["b"].reason == "accepted by ana" and entries["c"].reason == ""
    code, out, _ = run_cli(capsys, monkeypatch, "baseline", str(second), "--prune")
    assert "2 entries: 0 added, 0 moved, 2 kept, 1 stale pruned" in out
    assert {e.function for e in Baseline.load(path).entries} == {"a", "c"}


def test_check_with_findings_gates_them(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_cli(capsys, monkeypatch, "baseline", str(_document(tmp_path, tmp_path / "1.json", ("a", 1))))
    path = tmp_path / "tenantwatch-baseline.yaml"
    path.write_text(path.read_text().replace("reason: ''", "reason: fine"))
    same = _document(tmp_path, tmp_path / "same.json", ("a", 1))
    assert run_cli(capsys, monkeypatch, "baseline", "--check", str(same))[0] == EXIT_OK
    code, out, _ = run_cli(
        capsys, monkeypatch, "baseline", "--check", str(_document(tmp_path, tmp_path / "n.json", ("z", 9)))
    )
    assert code == EXIT_FINDINGS
    assert "CRITICAL missing_tenant_filter table=objectives at app/views.py:9 in z" in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("findings:\n- rule: x\n", ":2:3: findings.0: fingerprint is required"),
        ("findings:\n- fingerprint: a\n  rule: x\n  linee: 3\n", ":4:3: findings.0.linee: unknown field 'linee'"),
        ("findings:\n- fingerprint: a\n  rule: x\n  severity: bad\n", ":4:3: findings.0.severity: unknown severity"),
        ("findings:\n- fingerprint: a\n  rule: x\n- fingerprint: a\n  rule: y\n", "fingerprint a is listed twice"),
        ("findings: [\n", "not valid YAML"),
        ("- a\n", "a baseline must be a mapping"),
        ("format: other\n", ":1:1: format: expected 'tenantwatch.baseline'"),
    ],
)
def test_a_bad_baseline_is_named_with_file_and_line(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    with pytest.raises(BaselineError) as raised:
        Baseline.load(path)
    assert str(path) in str(raised.value) and expected in str(raised.value)
    code, _, err = run_cli(capsys, monkeypatch, "baseline", "--check", "--baseline", str(path))
    assert code == EXIT_USAGE and expected in err


def test_bad_inputs_exit_2_saying_why(tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, monkeypatch, "baseline")
    assert code == EXIT_USAGE and "give the findings documents" in err
    (tmp_path / "x.json").write_text("{")
    code, _, err = run_cli(capsys, monkeypatch, "baseline", "x.json")
    assert code == EXIT_USAGE and "x.json:1:2: not JSON" in err
    (tmp_path / "y.json").write_text('{"format": "something"}')
    code, _, err = run_cli(capsys, monkeypatch, "baseline", "y.json")
    assert code == EXIT_USAGE and "not a tenantwatch findings document" in err
    code, _, err = run_cli(capsys, monkeypatch, "baseline", "--check")
    assert code == EXIT_USAGE and "cannot read baseline" in err
    assert not (tmp_path / "tenantwatch-baseline.yaml").exists()


def test_help_shows_examples(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "baseline", "--help")
    assert code == EXIT_OK
    assert "pytest --tenantwatch=tenantwatch-baseline.yaml" in out and "exit codes: 0" in out


def test_a_baseline_given_as_the_findings_document_is_named_as_such(
    tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = _document(tmp_path, tmp_path / "findings.json", ("list_all", 12))
    assert run_cli(capsys, monkeypatch, "baseline", str(document))[0] == EXIT_OK
    written = (tmp_path / "tenantwatch-baseline.yaml").read_text()
    code, out, err = run_cli(capsys, monkeypatch, "baseline", "tenantwatch-baseline.yaml")
    assert code == EXIT_USAGE, out + err
    assert (
        "tenantwatch-baseline.yaml is a baseline file, not a findings document: give the JSON from `tenantwatch scan "
        "--json` or `pytest --tenantwatch-findings FILE`" in err
    )
    assert "not JSON" not in err
    assert (tmp_path / "tenantwatch-baseline.yaml").read_text() == written  # left as it was
