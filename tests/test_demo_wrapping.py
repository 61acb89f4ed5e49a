"""Demo output wraps instead of cutting: on an 80-column terminal every table column stays readable, and piped
output (with or without --plain) carries every finding whole."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import Event, ReadableSpan
from rich.console import Console

from tenantwatch import attributes as A
from tenantwatch.demo import STEPS, DemoFinding, DemoResult, StepResult
from tenantwatch.demo.app import _LiveFindings
from tenantwatch.demo.display import LiveReporter

_LONG_MESSAGE = (
    "SELECT reads objectives without a tenant filter in scope main: it can see rows of every tenant; context tenant "
    "'acme'; the scopes cte:recent, subquery:1 and union:2 read it too, and the statement returned 1500 rows of "
    "three tenants, which makes it an observed leak rather than a latent one"
)


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""The live display's cursor movements."""


def _words_present(text: str, words: str) -> list[str]:
    """The words of ``words`` missing from ``text`` (a word cut by an ellipsis or a zero-width column is missing)."""
    return [word for word in words.split() if word not in text]


@pytest.mark.parametrize("width", [80, 100, 160])
def test_live_tables_keep_every_column_readable(width: int) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=width, color_system=None)
    reporter = LiveReporter(console, pace_s=0)
    results: list[StepResult] = []
    findings: list[DemoFinding] = []
    for step in STEPS:
        found = []
        if step.expected_rule:
            finding = DemoFinding(
                step=step.name,
                rule=step.expected_rule,
                severity="critical",
                message=_LONG_MESSAGE,
                table="objectives",
                tenant=step.tenant,
                fingerprint="0123456789abcdef",
                query="SELECT 1",
            )
            reporter.finding(finding)
            found.append(finding)
            findings.append(finding)
        results.append(StepResult(step=step, rows=1, findings=found))
    reporter.finished(DemoResult(steps=results))
    out = _ANSI.sub("", buffer.getvalue())
    final = out[out.rindex("tenantwatch findings") :]
    assert "…" not in final
    assert max(len(line) for line in final.splitlines()) <= width
    for finding in findings:
        assert finding.step in final and finding.rule in final
        assert finding.tenant is not None and finding.tenant in final
    assert _words_present(final, _LONG_MESSAGE) == []
    for step in STEPS:
        assert step.name in final
        assert _words_present(final, step.title) == []
    assert final.count(" yes ") == len(STEPS)


def _span(message: str) -> ReadableSpan:
    event = Event(A.FINDING_EVENT, {A.RULE: "missing_tenant_filter", A.SEVERITY: "critical", A.MESSAGE: message})
    return ReadableSpan(name="SELECT okr", attributes={A.TENANT_ID: "2"}, events=[event])


def test_app_findings_wrap_on_an_80_column_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    _LiveFindings(buffer, console).export([_span(_LONG_MESSAGE)])
    out = buffer.getvalue()
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert len(out.splitlines()) > 1  # wrapped, not cut
    assert _words_present(out, _LONG_MESSAGE) == []
    assert out.splitlines()[0].split()[:2] == ["critical", "missing_tenant_filter"]


def test_app_findings_are_whole_lines_without_a_terminal() -> None:
    buffer = io.StringIO()
    _LiveFindings(buffer, None).export([_span(_LONG_MESSAGE)])
    (line,) = buffer.getvalue().splitlines()
    assert line.split()[:4] == ["critical", "missing_tenant_filter", "tenant", "2:"]
    assert line.endswith(_LONG_MESSAGE)


_FINDING_LINE = re.compile(r"^\s*(critical|high|warning|info) (\w+)\s+tenant \S+: ")


@pytest.mark.parametrize("plain", [False, True])
def test_app_demo_piped_output_carries_every_finding_whole(tmp_path: Path, plain: bool) -> None:
    """Piped, rich would cut each line at 80 columns ("…"), even with --plain."""
    argv = [str(Path(sys.executable).with_name("tenantwatch")), "demo", "--app", "--requests", "120"]
    done = subprocess.run(
        [*argv, "--plain"] if plain else argv, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    finding_lines = [line for line in lines if _FINDING_LINE.match(line)]
    assert finding_lines
    assert "…" not in done.stdout
    assert any(len(line) > 80 for line in finding_lines)  # whole lines, not cut at the pipe's 80 columns
    counted = sum(
        int(m.group(1)) for m in re.finditer(r"│ \w+\s+│\s+(\d+) │", done.stdout.split("findings by rule")[1])
    )
    assert counted == len(finding_lines)
    assert "\x1b[" not in done.stdout
