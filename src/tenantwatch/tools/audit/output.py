"""The audit's result, as a readable table and as the ``--json`` document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from tenantwatch.tools.audit.catalog import CatalogSnapshot
from tenantwatch.tools.audit.lints import LEVELS, Level, Lint, at_or_above

__all__ = ["JSON_VERSION", "AuditResult"]

JSON_VERSION: Final = 1
"""``version`` of the ``--json`` document; goes up when a field changes meaning or goes away."""


@dataclass(frozen=True)
class AuditResult:
    """The lints of one database and its RLS coverage, and the level that fails the run."""

    source: str
    """The database URL, password hidden."""
    snapshot: CatalogSnapshot
    lints: Sequence[Lint]
    fail_on: Level | Literal["NEVER"]
    """The lowest level that fails the run (``NEVER``: none does)."""

    @property
    def failing(self) -> list[Lint]:
        return [] if self.fail_on == "NEVER" else at_or_above(list(self.lints), self.fail_on)

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = dict.fromkeys(reversed(LEVELS), 0)
        for lint in self.lints:
            found[lint.kind.level] += 1
        return found

    def coverage_json(self) -> dict[str, Any]:
        coverage = self.snapshot.coverage
        return {"ratio": coverage.ratio, "tenant_tables": len(coverage.tables), **coverage.counts()}

    def to_json(self, exit_code: int) -> dict[str, Any]:
        role = self.snapshot.role
        return {
            "version": JSON_VERSION,
            "database": self.snapshot.coverage.database,
            "url": self.source,
            "role": {"name": role.name, "superuser": role.superuser, "bypass_rls": role.bypass_rls},
            "coverage": self.coverage_json(),
            "tenant_tables": [
                {"schema": t.schema, "name": t.name, "tenant_column": t.column, "rls": t.state, "owner": t.owner}
                for t in self.snapshot.tenant_tables
            ],
            "lints": [lint.to_json() for lint in self.lints],
            "counts": self.counts(),
            "fail_on": self.fail_on,
            "exit_code": exit_code,
        }

    def to_text(self, exit_code: int) -> str:
        coverage = self.snapshot.coverage
        counts = coverage.counts()
        ratio = coverage.ratio or 0.0
        lines = [
            f"tenantwatch audit of {self.source} as role {self.snapshot.role.name}",
            f"{len(coverage.tables)} tenant table(s); RLS coverage {ratio:.0%} "
            f"({counts['forced']} forced, {counts['enabled']} enabled but not forced, {counts['disabled']} disabled)",
            "",
        ]
        if self.lints:
            width = max(len(lint.kind.name) for lint in self.lints)
            lines.append(f"{'LEVEL':<6} {'ID':<7} {'LINT':<{width}} OBJECT")
            for lint in self.lints:
                lines.append(f"{lint.kind.level:<6} {lint.kind.id:<7} {lint.kind.name:<{width}} {lint.object_name}")
                lines.append(f"{'':<15}{lint.detail}")
                for number, fix in enumerate(lint.remediation.splitlines()):
                    lines.append(f"{'':<15}{'fix: ' if number == 0 else '     '}{fix}")
            lines.append("")
        else:
            lines.append("no lint: every tenant table is isolated by forced RLS with a tenant policy")
            lines.append("")
        summary = ", ".join(f"{n} {level}" for level, n in self.counts().items())
        verdict = "exit 1" if exit_code else "exit 0"
        lines.append(
            f"{len(self.lints)} lint(s): {summary}; {len(self.failing)} at or above --fail-on {self.fail_on} "
            f"({verdict})"
        )
        return "\n".join(lines) + "\n"
