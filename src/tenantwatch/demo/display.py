"""How the demo shows findings: a live table on a terminal, plain lines otherwise, or nothing (``--json``)."""

from __future__ import annotations

import time
from typing import IO, Final

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from tenantwatch.demo.results import DemoFinding, DemoResult, StepResult
from tenantwatch.demo.scenario import Step

__all__ = ["LiveReporter", "PlainReporter", "SilentReporter", "make_reporter"]

_LIVE_PACE_S: Final = 0.15
"""Pause after each step in the live view, so the table visibly grows; plain and JSON output never wait."""

_SEVERITY_STYLES: Final = {"critical": "bold red", "high": "red", "warning": "yellow", "info": "cyan"}

WIDE_COLUMNS: Final = 120
"""From this terminal width on, the tables have a column per field. Narrower (an 80-column terminal), related fields
share a cell, one above the other, so every column keeps a readable width instead of collapsing to nothing."""


def _tenant_label(step: Step) -> str:
    if step.unscoped_reason is not None:
        return f"unscoped ({step.unscoped_reason})"
    if step.tenant is None:
        return "no tenant"
    who = f"{step.user}/{step.role}" if step.user else step.role or ""
    return f"{step.tenant} {who}".strip()


def _summary_line(result: DemoResult) -> str:
    summary = result.summary()
    return (
        f"{summary['steps']} steps ({summary['correct_steps']} correct, {summary['buggy_steps']} buggy): "
        f"{summary['findings']} findings, {summary['bugs_caught']}/{summary['buggy_steps']} bugs caught, "
        f"{summary['false_positives']} on correct queries, {summary['duration_ms'] / 1000:.1f} s"
    )


class SilentReporter:
    """Shows nothing (the JSON document is printed at the end instead)."""

    def step_started(self, step: Step, index: int, total: int) -> None:
        pass

    def finding(self, finding: DemoFinding) -> None:
        pass

    def step_finished(self, result: StepResult) -> None:
        pass

    def finished(self, result: DemoResult) -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter:
    """One line per step and per finding, for logs and pipes."""

    def __init__(self, stream: IO[str]) -> None:
        self._out = stream

    def _print(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()

    def step_started(self, step: Step, index: int, total: int) -> None:
        self._print(f"[{index}/{total}] {step.title} ({_tenant_label(step)})")

    def finding(self, finding: DemoFinding) -> None:
        table = f" {finding.table}" if finding.table else ""
        self._print(f"    FINDING {finding.severity.upper()} {finding.rule}{table}: {finding.message}")

    def step_finished(self, result: StepResult) -> None:
        if result.error is not None:
            self._print(f"    step failed: {result.error}")
        elif not result.findings:
            self._print("    no finding")

    def finished(self, result: DemoResult) -> None:
        self._print("")
        self._print(_summary_line(result))
        if result.otlp_endpoint:
            self._print(f"spans, metrics and logs exported over OTLP to {result.otlp_endpoint}")

    def close(self) -> None:
        self._out.flush()


class LiveReporter:
    """A table on the terminal that grows as findings arrive, with the current step below it."""

    def __init__(self, console: Console, *, pace_s: float = _LIVE_PACE_S) -> None:
        self._console = console
        self._pace_s = pace_s
        self._wide = console.width >= WIDE_COLUMNS
        self._table = Table(title="tenantwatch findings", expand=True, show_lines=not self._wide)
        self._table.add_column("#", justify="right", no_wrap=True)
        if self._wide:
            self._table.add_column("step", no_wrap=True)
            self._table.add_column("severity", no_wrap=True)
            self._table.add_column("rule", no_wrap=True)
            self._table.add_column("table", no_wrap=True)
            self._table.add_column("tenant", no_wrap=True)
        else:
            self._table.add_column("step / tenant", no_wrap=True)
            self._table.add_column("finding", no_wrap=True)
        self._table.add_column("message", ratio=1, min_width=20, overflow="fold")
        self._status = Text("")
        self._count = 0
        self._live = Live(Group(self._table, self._status), console=console, refresh_per_second=12)
        self._live.start()

    def step_started(self, step: Step, index: int, total: int) -> None:
        self._status = Text.assemble((f"[{index}/{total}] ", "dim"), step.title, (f"  ({_tenant_label(step)})", "dim"))
        self._refresh()

    def finding(self, finding: DemoFinding) -> None:
        self._count += 1
        severity = Text(finding.severity, style=_SEVERITY_STYLES.get(finding.severity, ""))
        if self._wide:
            cells: tuple[str | Text, ...] = (
                finding.step,
                severity,
                finding.rule,
                finding.table or "",
                finding.tenant or "",
            )
        else:
            step = Text.assemble(finding.step, "\n", (finding.tenant or "no tenant", "dim"))
            rule = Text.assemble(severity, "\n", finding.rule, "\n", (finding.table or "", "dim"))
            cells = (step, rule)
        self._table.add_row(str(self._count), *cells, finding.message)
        self._refresh()

    def step_finished(self, result: StepResult) -> None:
        if self._pace_s > 0:  # a human is watching: let each step register (about 2 s over the whole run)
            time.sleep(self._pace_s)

    def _refresh(self) -> None:
        self._live.update(Group(self._table, self._status), refresh=True)

    def finished(self, result: DemoResult) -> None:
        self._status = Text("")
        self._refresh()
        self._live.stop()
        self._console.print(self._steps_table(result))
        self._console.print(_summary_line(result))
        if result.otlp_endpoint:
            self._console.print(f"spans, metrics and logs exported over OTLP to {result.otlp_endpoint}")

    def _steps_table(self, result: DemoResult) -> Table:
        steps = Table(title="scripted steps", expand=True, show_lines=not self._wide)
        if self._wide:
            steps.add_column("step", no_wrap=True)
            steps.add_column("what the application did", ratio=1, min_width=20)
            steps.add_column("expected", no_wrap=True)
            steps.add_column("raised", no_wrap=True)
        else:
            steps.add_column("step: what the application did", ratio=1, min_width=24)
            steps.add_column("expected / raised", no_wrap=True)
        steps.add_column("ok", justify="center", no_wrap=True)
        for step in result.steps:
            ok = Text("yes", style="green") if step.as_expected else Text("NO", style="bold red")
            expected, raised = step.step.expected_rule or "-", ", ".join(step.rules) or "-"
            if self._wide:
                steps.add_row(step.step.name, step.step.title, expected, raised, ok)
            else:
                what = Text.assemble((step.step.name, "bold"), "\n", step.step.title)
                steps.add_row(what, Text.assemble(expected, "\n", (raised, "dim")), ok)
        return steps

    def close(self) -> None:
        """Stop the live display if still running (an error or Ctrl-C): the terminal is left usable."""
        if self._live.is_started:
            self._live.stop()


def make_reporter(
    stream: IO[str], *, json_output: bool = False, live: bool = True
) -> SilentReporter | PlainReporter | LiveReporter:
    """The live table when ``stream`` is a terminal, plain lines when it is not, nothing with ``--json``."""
    if json_output:
        return SilentReporter()
    console = Console(file=stream)
    if live and console.is_terminal:
        return LiveReporter(console)
    return PlainReporter(stream)
