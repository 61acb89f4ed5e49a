"""``tenantwatch scan --baseline``: the CI gate on stored traces, with the baseline ``tenantwatch baseline`` writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from scan_support import LiveRun, live_run, write_json

from cli_support import run_cli

RULES = "tenant_tables:\n  notes: organization_id\ndedupe:\n  enabled: false\n"


@pytest.fixture(scope="module")
def run() -> LiveRun:
    return live_run()


@pytest.fixture
def setup(
    run: LiveRun, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """Stored traces, a rules file, and the baseline written from the scan's own findings document."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    traces = write_json(tmp_path / "traces.json", run.spans)
    code, out, err = run_cli(capsys, monkeypatch, "scan", str(traces), "--config", str(rules), "--json")
    assert code == 0, err
    findings = tmp_path / "findings.json"
    findings.write_text(out)
    baseline = tmp_path / "tenantwatch-baseline.yaml"
    code, out, err = run_cli(capsys, monkeypatch, "baseline", str(findings), "--baseline", str(baseline))
    assert code == 0, err
    return {"rules": rules, "traces": traces, "baseline": baseline}


def _scan(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], *extra: str
) -> tuple[int, str, str]:
    return run_cli(
        capsys, monkeypatch, "scan", str(files["traces"]), "--config", str(files["rules"]),
        "--baseline", str(files["baseline"]), *extra,
    )  # fmt: skip


def test_every_known_finding_passes_the_gate(
    run: LiveRun, setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = _scan(capsys, monkeypatch, setup)
    assert code == 0, out + err
    assert f"tenantwatch gate passed: 0 new (0 at warning or above), {len(run.findings)} known" in out


def test_a_finding_missing_from_the_baseline_fails_and_is_named(
    run: LiveRun,
    setup: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    document = yaml.safe_load(setup["baseline"].read_text())
    missing = next(e for e in document["findings"] if e["rule"] == "missing_tenant_filter")
    document["findings"] = [e for e in document["findings"] if e is not missing]
    document["findings"].append(
        {"fingerprint": "0123456789abcdef", "rule": "unscoped_write", "reason": "fixed long ago"}
    )
    setup["baseline"].write_text(yaml.safe_dump(document, sort_keys=False))
    sarif = tmp_path / "gate.sarif"
    code, out, err = _scan(capsys, monkeypatch, setup, "--sarif", str(sarif))
    assert code == 1, out + err
    assert "tenantwatch gate FAILED: 1 new (1 at warning or above)" in out and "1 stale" in out
    assert "missing_tenant_filter" in out.split("tenantwatch gate FAILED")[1]
    assert f"{missing['path']}:{missing['line']}" in out.split("tenantwatch gate FAILED")[1]
    states = {
        r["partialFingerprints"]["tenantwatch/v1"]: r["baselineState"]
        for r in json.loads(sarif.read_text())["runs"][0]["results"]
    }
    assert states[missing["fingerprint"]] == "new"
    assert sorted(set(states.values())) == ["new", "unchanged"]
    # The same verdict as data, and --fail-on raises the bar.
    code, out, err = _scan(capsys, monkeypatch, setup, "--json")
    gate = json.loads(out)["gate"]
    assert code == 1 and gate["failed"] and gate["new"] == [missing["fingerprint"]]
    assert gate["stale"] == ["0123456789abcdef"]
    assert _scan(capsys, monkeypatch, setup, "--fail-on", "never")[0] == 0


def test_a_missing_or_bad_baseline_is_a_usage_error(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup["baseline"].write_text("findings: [1, 2\n")
    code, _, err = _scan(capsys, monkeypatch, setup)
    assert code == 2 and str(setup["baseline"]) in err
    setup["baseline"].unlink()
    code, _, err = _scan(capsys, monkeypatch, setup)
    assert code == 2 and "no such file" in err
