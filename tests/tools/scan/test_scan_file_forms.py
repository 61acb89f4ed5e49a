"""What a user feeds ``tenantwatch scan`` besides the file exporter's lines: pretty-printed OTLP/JSON (``jq .``), the
SDK console exporter's output, --since/--until on files, a directory, and the summary that explains the stored count.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from scan_support import LiveRun, live_run, otlp_json_line, write_json

from cli_support import run_cli
from tenantwatch.tools.scan import files as scan_files

RULES = "tenant_tables:\n  notes: organization_id\ndedupe:\n  enabled: false\n"


@pytest.fixture(scope="module")
def run() -> LiveRun:
    return live_run()


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def _scan_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str
) -> tuple[int, dict[str, object], str]:
    code, out, err = run_cli(capsys, monkeypatch, "scan", *argv, "--json")
    return code, json.loads(out) if out.strip() else {}, err


def _counts(document: dict[str, object]) -> Counter[str]:
    return Counter({g["fingerprint"]: g["count"] for g in document["groups"]})  # type: ignore[attr-defined,index]


def test_pretty_printed_otlp_json_is_read_like_the_lines(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pretty = tmp_path / "pretty.json"  # what `jq . traces.json > pretty.json` writes: documents over many lines
    pretty.write_text(
        "\n".join(json.dumps(json.loads(otlp_json_line(run.spans[i : i + 5])), indent=2) for i in range(0, 22, 5))
    )
    jaeger = tmp_path / "jaeger-answer.json"  # a Jaeger /api/v3/traces answer saved as it came, pretty
    jaeger.write_text(json.dumps({"result": json.loads(otlp_json_line(run.spans))}, indent=2) + "\n")
    for path in (pretty, jaeger):
        code, document, err = _scan_json(capsys, monkeypatch, str(path), "--config", str(rules))
        assert code == 0, err
        assert err == ""
        assert document["spans"] == len(run.spans) and _counts(document) == run.findings


def test_pretty_json_above_the_size_cap_is_one_clear_problem(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(json.loads(otlp_json_line(run.spans)), indent=2))
    monkeypatch.setattr(scan_files, "MAX_DOCUMENT_BYTES", 1000)
    code, _, err = _scan_json(capsys, monkeypatch, str(pretty), "--config", str(rules))
    assert code == 2
    assert f"{pretty} line 1: pretty-printed JSON (one document over many lines) larger than 1000 bytes" in err
    assert "jq -c" in err and "protobuf" not in err and err.count("\n") <= 3


def test_console_exporter_output_is_read(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    ConsoleSpanExporter(out=out).export(run.spans)  # OTEL_TRACES_EXPORTER=console: pretty JSON per span
    console = tmp_path / "console.txt"
    console.write_text(out.getvalue())
    code, document, err = _scan_json(capsys, monkeypatch, str(console), "--config", str(rules))
    assert code == 0, err
    assert document["spans"] == len(run.spans) and _counts(document) == run.findings


def test_text_that_stops_being_json_is_one_message_not_thousands(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    ConsoleSpanExporter(out=out).export(run.spans[:3])
    mixed = tmp_path / "app-stdout.txt"  # the console exporter's spans mixed with the app's own prints
    mixed.write_text(out.getvalue() + "INFO app started\n" * 500 + out.getvalue())
    code, document, err = _scan_json(capsys, monkeypatch, str(mixed), "--config", str(rules))
    assert code == 2 and document["spans"] == 3
    lines = err.splitlines()
    assert lines[0].startswith(f"tenantwatch scan: {mixed} line ") and "stops being JSON" in lines[0]
    assert "1 unreadable part(s) skipped" in err and "protobuf" not in err


def test_since_and_until_apply_to_files(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = write_json(tmp_path / "traces.json", run.spans)
    code, document, err = _scan_json(
        capsys, monkeypatch, str(traces), "--config", str(rules), "--since", "2099-01-01T00:00:00Z"
    )
    assert code == 2 and document["spans"] == 0 and "no spans" in err
    assert document["scan"]["outside_window"] == len(run.spans)  # type: ignore[index]
    ends = sorted(span.end_time or 0 for span in run.spans)
    until = datetime.fromtimestamp((ends[0] + 1000) / 1e9, UTC).isoformat().replace("+00:00", "Z")
    code, out, err = run_cli(capsys, monkeypatch, "scan", str(traces), "--config", str(rules), "--until", until)
    kept = sum(1 for end in ends if end <= int(datetime.fromisoformat(until.replace("Z", "+00:00")).timestamp() * 1e9))
    assert 0 < kept < len(run.spans)
    assert f"{kept} spans judged" in out and f"{len(run.spans) - kept} spans left out by --since/--until" in out
    # A gap the filter made is not blamed on windowed rules.
    assert "windowed rules" not in out
    assert "note: scan counts" in out and "spans left out by --attribute/--since/--until are not judged" in out
    code, document, _ = _scan_json(capsys, monkeypatch, str(traces), "--config", str(rules), "--since", "3650d")
    assert code == 0 and document["spans"] == len(run.spans)  # no default window for files


def test_a_directory_is_named_as_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_cli(capsys, monkeypatch, "scan", str(tmp_path))
    assert code == 2
    assert f"{tmp_path}: is a directory; give the trace files in it (for example {tmp_path}/*.json)" in err


def test_table_tells_apart_groups_by_their_message_and_explains_a_count_gap(
    run: LiveRun, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = write_json(tmp_path / "traces.json", run.spans)
    rules = tmp_path / "rules.yaml"  # another threshold than live: the scan counts differ from the stored ones
    rules.write_text(RULES + "rules:\n  repeated_violations:\n    threshold: 50\n")
    code, out, err = run_cli(capsys, monkeypatch, "scan", str(traces), "--config", str(rules))
    assert code == 0, err
    _, document, _ = _scan_json(capsys, monkeypatch, str(traces), "--config", str(rules))
    for number, group in enumerate(document["groups"], 1):  # type: ignore[arg-type]
        assert f"  #{number} {group['rule']}: {group['message']}\n" in out
    assert "repeated_violations: tenant" not in out  # threshold 50: it never fires in this scan, it did live
    assert document["findings"] != document["scan"]["stored_findings"]  # type: ignore[index]
    assert "note: scan counts" in out and "the live run stored" in out and "--config" in out


def test_groups_that_differ_only_by_key_show_their_messages() -> None:
    from tenantwatch.cli.scan import _table
    from tenantwatch.tools.groups import FindingGroup, FindingGroups

    document = FindingGroups().to_json()
    common = {"rule": "repeated_violations", "severity": "high", "code_filepath": "myapp/service.py", "count": 1}
    document["groups"] = [
        FindingGroup(fingerprint="a" * 16, message="tenant '1' has 5 high or critical findings", **common).to_json(),  # type: ignore[arg-type]
        FindingGroup(fingerprint="b" * 16, message="user 'u-1' has 5 high or critical findings", **common).to_json(),  # type: ignore[arg-type]
    ]
    out = io.StringIO()
    _table(FindingGroups.from_json(document), None, out)
    text = out.getvalue()
    assert "  #1 repeated_violations: tenant '1' has 5 high or critical findings\n" in text
    assert "  #2 repeated_violations: user 'u-1' has 5 high or critical findings\n" in text


def test_a_json_line_cut_short_on_line_1_is_still_one_bad_line(
    run: LiveRun, rules: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    traces = write_json(tmp_path / "traces.json", run.spans)
    traces.write_text('{"resourceSpans": [{"resource": {"attrib\n' + traces.read_text())
    code, document, err = _scan_json(capsys, monkeypatch, str(traces), "--config", str(rules))
    assert code == 2 and f"{traces} line 1: not valid JSON" in err
    assert document["spans"] == len(run.spans) and _counts(document) == run.findings
