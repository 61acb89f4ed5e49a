"""What the demo observed: findings per step, and the summary printed at the end (also as JSON)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenantwatch.demo.scenario import Step

__all__ = ["DemoFinding", "DemoResult", "Reporter", "StepResult"]


@dataclass(frozen=True, slots=True)
class DemoFinding:
    """One finding, read back from a processed span the demo's in-process exporter received."""

    step: str
    rule: str
    severity: str
    message: str
    table: str | None
    tenant: str | None
    fingerprint: str
    query: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "table": self.table,
            "tenant": self.tenant,
            "fingerprint": self.fingerprint,
            "query": self.query,
        }


@dataclass(slots=True)
class StepResult:
    """A step and everything tenantwatch said about it."""

    step: Step
    rows: int | None = None
    duration_ms: float = 0.0
    error: str | None = None
    findings: list[DemoFinding] = field(default_factory=list)

    @property
    def rules(self) -> list[str]:
        return sorted({f.rule for f in self.findings})

    @property
    def as_expected(self) -> bool:
        """Correct steps raise nothing; a buggy step raises exactly the rule its bug is about."""
        expected = [self.step.expected_rule] if self.step.expected_rule else []
        return self.error is None and self.rules == expected

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.step.name,
            "title": self.step.title,
            "tenant": self.step.tenant,
            "user": self.step.user,
            "role": self.step.role,
            "unscoped_reason": self.step.unscoped_reason,
            "buggy": self.step.buggy,
            "bug": self.step.bug or None,
            "expected_rule": self.step.expected_rule,
            "rules": self.rules,
            "as_expected": self.as_expected,
            "rows": self.rows,
            "duration_ms": round(self.duration_ms, 1),
            "error": self.error,
        }


@dataclass(slots=True)
class DemoResult:
    """The whole run."""

    steps: list[StepResult] = field(default_factory=list)
    rows_seeded: dict[str, int] = field(default_factory=dict)
    otlp_endpoint: str | None = None
    duration_ms: float = 0.0

    @property
    def findings(self) -> list[DemoFinding]:
        return [finding for step in self.steps for finding in step.findings]

    def summary(self) -> dict[str, Any]:
        findings = self.findings
        buggy = [s for s in self.steps if s.step.buggy]
        correct = [s for s in self.steps if not s.step.buggy]
        return {
            "steps": len(self.steps),
            "correct_steps": len(correct),
            "buggy_steps": len(buggy),
            "findings": len(findings),
            "by_rule": dict(sorted(Counter(f.rule for f in findings).items())),
            "by_severity": dict(sorted(Counter(f.severity for f in findings).items())),
            "bugs_caught": sum(1 for s in buggy if s.step.expected_rule in s.rules),
            "false_positives": sum(len(s.findings) for s in correct),
            "all_as_expected": all(s.as_expected for s in self.steps),
            "rows_seeded": dict(self.rows_seeded),
            "otlp_endpoint": self.otlp_endpoint,
            "duration_ms": round(self.duration_ms, 1),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "steps": [s.to_json() for s in self.steps],
            "summary": self.summary(),
        }


class Reporter(Protocol):
    """Receives the run as it happens (the live terminal table, the plain-text printer, or nothing)."""

    def step_started(self, step: Step, index: int, total: int) -> None: ...

    def finding(self, finding: DemoFinding) -> None: ...

    def step_finished(self, result: StepResult) -> None: ...

    def finished(self, result: DemoResult) -> None: ...
