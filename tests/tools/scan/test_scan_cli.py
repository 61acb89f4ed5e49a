"""``tenantwatch scan`` on the command line: the table, --json, --sarif, Jaeger links, and the exit codes."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
from scan_support import LiveRun, live_run, write_json, write_proto

from cli_support import run_cli
from tenantwatch.tools.groups import FindingGroups

RULES = "tenant_tables:\n  notes: organization_id\ndedupe:\n  enabled: false\n"


@pytest.fixture(scope="module")
def run() -> LiveRun:
    return live_run()


@pytest.fixture
def files(run: LiveRun, tmp_path: Path) -> dict[str, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    return {
        "rules": rules,
        "json": write_json(tmp_path / "traces.json", run.spans),
        "proto": write_proto(tmp_path / "traces.pb", run.spans),
    }


def test_table_shows_each_group_with_count_location_and_jaeger_links(
    run: LiveRun, files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_cli(
        capsys,
        monkeypatch,
        "scan",
        str(files["json"]),
        "--config",
        str(files["rules"]),
        "--jaeger-ui",
        "http://jaeger.local:16686",
    )
    assert code == 0, err
    assert "missing_tenant_filter" in out and "repeated_violations" in out and "no_tenant_context" in out
    assert "critical" in out
    missing = next(fp for fp, rule in run.rules.items() if rule == "missing_tenant_filter")
    trace = next(f"{s.context.trace_id:032x}" for s in run.spans if "SELECT id, body FROM notes" in str(s.attributes))
    assert f"http://jaeger.local:16686/trace/{trace}" in out
    assert "test_scan_cli.py" not in out and "scan_support.py:" in out  # the statement's code location
    assert f"{len(run.spans)} spans judged, {sum(run.findings.values())} findings in {len(run.findings)} " in out
    assert "not counted again" in out
    assert missing  # the group exists live


def test_json_is_the_groups_document_with_the_live_counts(
    run: LiveRun, files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "scan", str(files["proto"]), "--config", str(files["rules"]), "--json")
    assert code == 0
    document = json.loads(out)
    groups = FindingGroups.from_json(document)
    assert Counter({g.fingerprint: g.count for g in groups}) == run.findings
    assert groups.spans == len(run.spans)
    assert document["scan"]["problem_count"] == 0 and document["scan"]["stored_findings"] == sum(run.findings.values())


def test_sarif_file_and_fail_on(
    run: LiveRun,
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sarif = tmp_path / "out.sarif"
    args = ["scan", str(files["json"]), "--config", str(files["rules"]), "--sarif", str(sarif)]
    code, _, _ = run_cli(capsys, monkeypatch, *args, "--fail-on", "critical")
    assert code == 1
    log = json.loads(sarif.read_text())
    results = log["runs"][0]["results"]
    assert {r["partialFingerprints"]["tenantwatch/v1"] for r in results} == set(run.findings)
    assert all(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith(".py")
        for r in results
        if r["ruleId"] == "missing_tenant_filter"
    )
    code, _, _ = run_cli(capsys, monkeypatch, *args, "--fail-on", "never")
    assert code == 0
    # Locations are relative to --root (the repository code scanning maps them to).
    here = Path(__file__).resolve().parent
    run_cli(capsys, monkeypatch, *args, "--root", str(here))
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(sarif.read_text())["runs"][0]["results"] if r.get("locations")}  # fmt: skip
    assert "scan_support.py" in uris


def test_fail_on_below_the_highest_severity_only(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "warn.yaml"  # every finding demoted to warning: --fail-on high passes, warning fails
    rules.write_text(
        RULES
        + "rules:\n"
        + "".join(
            f"  {r}: {{severity: warning}}\n"
            for r in (
                "missing_tenant_filter",
                "cross_tenant",
                "cross_tenant_read",
                "repeated_violations",
                "unscoped_write",
                "no_tenant_context",
            )
        )
    )
    base = ["scan", str(files["json"]), "--config", str(rules)]
    assert run_cli(capsys, monkeypatch, *base, "--fail-on", "high")[0] == 0
    assert run_cli(capsys, monkeypatch, *base, "--fail-on", "warning")[0] == 1


def test_bad_lines_exit_2_and_the_good_lines_still_print(
    run: LiveRun, files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = files["json"].read_text().splitlines()
    text.insert(1, '{"resourceSpans": [oops')
    files["json"].write_text("\n".join(text) + "\n")
    code, out, err = run_cli(capsys, monkeypatch, "scan", str(files["json"]), "--config", str(files["rules"]), "--json")
    assert code == 2
    assert f"{files['json']} line 2: not valid JSON" in err
    assert Counter({g["fingerprint"]: g["count"] for g in json.loads(out)["groups"]}) == run.findings


def test_empty_source_is_loud_unless_allowed(
    tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("")
    code, out, err = run_cli(capsys, monkeypatch, "scan", str(empty), "--config", str(files["rules"]))
    assert code == 2 and "no spans" in err and "0 spans judged" in out
    code, _, _ = run_cli(capsys, monkeypatch, "scan", str(empty), "--config", str(files["rules"]), "--allow-empty")
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give trace files"),
        (["missing.json"], "no such file"),
        (["--jaeger", "http://127.0.0.1:9"], "--jaeger needs --service"),
        (["--jaeger", "localhost:16686", "--service", "x"], "http:// or https://"),
        (["--jaeger", "http://127.0.0.1:9", "--service", "x", "--since", "yesterday"], "neither a duration"),
        (["--jaeger", "http://127.0.0.1:9", "--service", "x", "--attribute", "novalue"], "KEY=VALUE"),
        (["--jaeger", "http://127.0.0.1:9", "--service", "x"], "cannot reach Jaeger"),
        (["x.json", "--service", "x"], "apply to --jaeger only"),
        (["-"], "stdin, which is a terminal"),
        (["-", "-"], "can be given once"),
    ],
)
def test_usage_and_input_errors_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.json").write_text("")
    code, _, err = run_cli(capsys, monkeypatch, "scan", *argv)
    assert code == 2
    assert message in err


def test_bad_rules_file_exits_2_naming_the_field(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text("large_result_rows: many\n")
    code, _, err = run_cli(capsys, monkeypatch, "scan", str(files["json"]), "--config", str(rules))
    assert code == 2 and "bad.yaml" in err


def test_progress_on_request_and_quiet(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, err = run_cli(capsys, monkeypatch, "scan", str(files["json"]), "--config", str(files["rules"]), "--progress")
    assert err.rstrip().endswith("scan: 22 spans, 15 findings in 5 groups, 43.7 kB of 43.7 kB") or (
        "\rscan: 22 spans, 15 findings in 5 groups, " in err and " of " in err
    ), err
    _, _, err = run_cli(capsys, monkeypatch, "scan", str(files["json"]), "--config", str(files["rules"]), "--quiet")
    assert err == ""


def test_help_has_examples(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(capsys, monkeypatch, "scan", "--help")
    assert code == 0 and "examples:" in out and "--jaeger http://" in out


def test_stored_text_is_shown_as_text_not_markup_or_escape_sequences(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    span = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "SELECT",
        "kind": 3,
        "startTimeUnixNano": "1764000000000000000",
        "endTimeUnixNano": "1764000000001000000",
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "postgresql"}},
            {"key": "db.statement", "value": {"stringValue": "SELECT * FROM notes"}},
            {"key": "tenant.id", "value": {"stringValue": "acme"}},
            {"key": "code.filepath", "value": {"stringValue": "/srv/[bold]app\x1b[2J.py"}},
            {"key": "code.lineno", "value": {"intValue": "7"}},
        ],
    }
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}) + "\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    code, out, _ = run_cli(capsys, monkeypatch, "scan", str(path), "--config", str(rules))
    assert code == 0
    assert "/srv/[bold]app\\x1b[2J.py:7" in out
    assert "\x1b" not in out


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_leaves_early_still_gets_the_exit_code_and_problems_on_stderr(run: LiveRun) -> None:
    from tenantwatch.cli.scan import emit
    from tenantwatch.tools.scan import ReadStats, scan_sources

    stats = ReadStats()
    stats.problem("t.json", "line 3", "not valid JSON")
    groups = scan_sources([], None, stats=stats)
    stderr = io.StringIO()
    common = {"json_output": False, "sarif": None, "jaeger_ui": None, "stdout": _ClosedPipe(), "stderr": stderr}
    assert emit(groups, stats, fail_on="never", **common) == 2  # type: ignore[arg-type]
    assert "t.json line 3: not valid JSON" in stderr.getvalue()
