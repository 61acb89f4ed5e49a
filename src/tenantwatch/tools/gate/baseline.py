"""The baseline: a reviewed YAML file of accepted findings, one entry per finding fingerprint.

A file looks like::

    # tenantwatch baseline: findings reviewed and accepted. ...
    format: tenantwatch.baseline
    version: 1
    findings:
    - fingerprint: 3f1c0e9a7b2d4c55
      rule: missing_tenant_filter
      severity: critical
      table: objectives
      path: app/reports.py          # relative to the project root
      line: 42
      function: nightly_totals
      statement: SELECT objectives.id FROM objectives
      statement_fingerprint: 9b0e...
      reason: "nightly roll-up over every tenant, reviewed by ana (TICKET-12)"

A new entry gets an empty ``reason``: :meth:`Baseline.unreviewed` lists those and ``tenantwatch baseline --check``
fails while there is one. Loading reports every problem with the file and its line (:class:`BaselineError`, a
:class:`tenantwatch.config.ConfigError`, worded like the rules file's errors).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

import yaml

from tenantwatch.attributes import SEVERITIES
from tenantwatch.config import ConfigError, ConfigIssue, read_yaml_file
from tenantwatch.tools.groups import FindingGroup

__all__ = ["BASELINE_FORMAT", "Baseline", "BaselineEntry", "BaselineError", "relative_path"]

BASELINE_FORMAT: Final = "tenantwatch.baseline"
BASELINE_VERSION: Final = 1
MAX_BASELINE_BYTES: Final = 16 * 1024 * 1024
_HEADER: Final = (
    "# tenantwatch baseline: findings reviewed and accepted. The CI gate (pytest --tenantwatch, tenantwatch scan\n"
    "# --baseline) fails only on findings not listed here. Give every entry a reason (why it is acceptable, who\n"
    "# reviewed it): `tenantwatch baseline --check` fails while a reason is empty. Update it with\n"
    "# `tenantwatch baseline FINDINGS.json` (reasons are kept).\n"
)
_FIELDS: Final = (
    "fingerprint",
    "rule",
    "severity",
    "table",
    "path",
    "line",
    "function",
    "statement",
    "statement_fingerprint",
    "reason",
)
_REQUIRED: Final = ("fingerprint", "rule")


class BaselineError(ConfigError):
    """A baseline file that cannot be used; the message names the file, the line and the field."""


def relative_path(path: str | None, root: Path | None) -> str | None:
    """``path`` relative to ``root`` (POSIX form) when it lies under it; otherwise as given."""
    if not path:
        return None
    if root is not None and os.path.isabs(path):
        try:
            relative = os.path.relpath(path, root)
        except ValueError:  # another drive (Windows)
            return Path(path).as_posix()
        if not relative.startswith(".."):
            return Path(relative).as_posix()
    return Path(path).as_posix()


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One accepted finding (see the module docstring for the fields)."""

    fingerprint: str
    rule: str
    severity: str = ""
    table: str | None = None
    path: str | None = None
    """The statement's code location, relative to the project root."""
    line: int | None = None
    function: str | None = None
    statement: str | None = None
    """The parameterized statement text (never bound values)."""
    statement_fingerprint: str | None = None
    reason: str = ""
    source_line: int | None = None
    """Where the entry's reason (else the entry) is in the file it was read from, for messages; not written."""

    @property
    def location(self) -> str:
        if not self.path:
            return "(no code location)"
        where = f"{self.path}:{self.line or 0}"
        return f"{where} in {self.function}" if self.function else where

    @property
    def identity(self) -> tuple[str, str, str, str, int]:
        """What names the finding independently of the project's absolute path: rule, statement, file, function,
        line."""
        return (self.rule, self.statement_fingerprint or "", self.path or "", self.function or "", self.line or 0)

    @classmethod
    def from_group(cls, group: FindingGroup, *, root: Path | None, reason: str = "") -> BaselineEntry:
        return cls(
            fingerprint=group.fingerprint,
            rule=group.rule,
            severity=group.severity,
            table=group.table,
            path=relative_path(group.code_filepath, root),
            line=group.code_lineno,
            function=group.code_function,
            statement=group.statement,
            statement_fingerprint=group.statement_fingerprint,
            reason=reason,
        )

    def to_yaml(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FIELDS}


@dataclass(frozen=True, slots=True)
class Baseline:
    """The accepted findings of a project, in file order."""

    entries: tuple[BaselineEntry, ...] = ()
    path: str | None = None
    """The file it was read from, if any."""

    def __len__(self) -> int:
        return len(self.entries)

    def unreviewed(self) -> list[BaselineEntry]:
        """Entries whose reason is still empty."""
        return [entry for entry in self.entries if not entry.reason.strip()]

    def with_entries(self, entries: Iterable[BaselineEntry]) -> Baseline:
        return replace(self, entries=tuple(entries))

    # --- reading -------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Baseline:
        """Read a baseline file; :class:`BaselineError` naming the file, line and field for anything wrong."""
        file = Path(path)
        try:
            data, marks = read_yaml_file(file, what="baseline", max_bytes=MAX_BASELINE_BYTES)
        except ConfigError as exc:
            raise BaselineError(str(exc), source=str(file), issues=exc.issues) from exc
        return cls.from_data(data, source=str(file), marks=marks)

    @classmethod
    def from_data(
        cls, data: Any, *, source: str, marks: Mapping[tuple[str | int, ...], tuple[int, int]] | None = None
    ) -> Baseline:
        """Build a baseline from parsed YAML; every problem is collected into one :class:`BaselineError`."""
        marks = marks or {}
        issues: list[ConfigIssue] = []

        def problem(at: tuple[str | int, ...], message: str) -> None:
            line, column = marks.get(at, (None, None))
            issues.append(ConfigIssue(".".join(str(p) for p in at), message, line, column))

        entries: list[BaselineEntry] = []
        if not isinstance(data, dict):
            problem((), f"a baseline must be a mapping with a findings list, got {type(data).__name__}")
        else:
            if data.get("format", BASELINE_FORMAT) != BASELINE_FORMAT:
                problem(("format",), f"expected {BASELINE_FORMAT!r}, got {data.get('format')!r}")
            if data.get("version", BASELINE_VERSION) != BASELINE_VERSION:
                problem(("version",), f"unsupported baseline version {data.get('version')!r}")
            for key in data:
                if key not in ("format", "version", "findings"):
                    problem((str(key),), f"unknown key {key!r} (expected format, version, findings)")
            findings = data.get("findings")
            if findings is None:
                findings = []
            if not isinstance(findings, list):
                problem(("findings",), f"findings must be a list, got {type(findings).__name__}")
                findings = []
            seen: dict[str, int] = {}
            for index, item in enumerate(findings):
                entry = _entry(item, ("findings", index), problem, marks)
                if entry is None:
                    continue
                if entry.fingerprint in seen:
                    problem(
                        ("findings", index, "fingerprint"),
                        f"fingerprint {entry.fingerprint} is listed twice "
                        f"(first as findings[{seen[entry.fingerprint]}])",
                    )
                    continue
                seen[entry.fingerprint] = index
                entries.append(entry)
        if issues:
            lines = [f"{source}:{i.line}:{i.column}: {i.path or '(file)'}: {i.message}" if i.line else
                     f"{source}: {i.path or '(file)'}: {i.message}" for i in issues]  # fmt: skip
            raise BaselineError("\n".join(lines), source=source, issues=issues)
        return cls(entries=tuple(entries), path=source)

    # --- writing -------------------------------------------------------------------------------------------

    def dumps(self) -> str:
        document = {
            "format": BASELINE_FORMAT,
            "version": BASELINE_VERSION,
            "findings": [entry.to_yaml() for entry in self.entries],
        }
        body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=120, default_flow_style=False)
        return _HEADER + body

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a reviewed file is never left half-written)."""
        file = Path(path)
        temporary = file.with_name(f".{file.name}.tmp")
        temporary.write_text(self.dumps(), encoding="utf-8")
        temporary.replace(file)


def _entry(
    item: Any,
    at: tuple[str | int, ...],
    problem: Any,
    marks: Mapping[tuple[str | int, ...], tuple[int, int]],
) -> BaselineEntry | None:
    if not isinstance(item, dict):
        problem(at, f"an entry must be a mapping, got {type(item).__name__}")
        return None
    bad = False
    for key in item:
        if key not in _FIELDS:
            problem((*at, str(key)), f"unknown field {key!r} (expected {', '.join(_FIELDS)})")
            bad = True
    for name in _REQUIRED:
        value = item.get(name)
        if not isinstance(value, str) or not value:
            problem((*at, name) if name in item else at, f"{name} is required (a non-empty string)")
            bad = True
    for name in ("severity", "table", "path", "function", "statement", "statement_fingerprint", "reason"):
        value = item.get(name)
        if value is not None and not isinstance(value, str):
            problem((*at, name), f"{name} must be a string, got {type(value).__name__}")
            bad = True
    severity = item.get("severity")
    if isinstance(severity, str) and severity and severity not in SEVERITIES:
        problem((*at, "severity"), f"unknown severity {severity!r} (expected one of {', '.join(SEVERITIES)})")
        bad = True
    line = item.get("line")
    if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 0):
        problem((*at, "line"), f"line must be a non-negative integer, got {line!r}")
        bad = True
    if bad:
        return None
    return BaselineEntry(
        fingerprint=item["fingerprint"],
        rule=item["rule"],
        severity=item.get("severity") or "",
        table=item.get("table"),
        path=item.get("path"),
        line=line,
        function=item.get("function"),
        statement=item.get("statement"),
        statement_fingerprint=item.get("statement_fingerprint"),
        reason=item.get("reason") or "",
        source_line=marks.get((*at, "reason"), marks.get(at, (None, None)))[0],
    )
