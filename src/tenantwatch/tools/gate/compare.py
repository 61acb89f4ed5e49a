"""The gate: grouped findings against a baseline, as new / known / moved / stale, and its text.

Matching, for each finding group:

1. *known* — an entry has the group's finding fingerprint, or the same rule, statement fingerprint, file (relative to
   the project root), function and line (the same finding in a checkout at another absolute path, whose
   fingerprint therefore differs);
2. *moved* — an entry has the same rule, statement fingerprint, file and function, on another line: still accepted,
   but the baseline should be refreshed (``tenantwatch baseline`` updates the line and keeps the reason);
3. *new* — nothing matched: the gate fails on it when its severity is at or above ``fail_on``.

Entries that nothing matched are *stale*: the finding did not occur (fixed? remove it with ``--prune``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenantwatch.core.findings import severity_rank
from tenantwatch.tools.gate.baseline import Baseline, BaselineEntry, relative_path
from tenantwatch.tools.groups import FindingGroup, FindingGroups

__all__ = ["DEFAULT_FAIL_ON", "GateResult", "compare", "refreshed", "render"]

DEFAULT_FAIL_ON = "warning"


@dataclass(slots=True)
class GateResult:
    """What :func:`compare` found; ``failed`` when a new finding is at or above ``fail_on``."""

    new: list[FindingGroup] = field(default_factory=list)
    known: list[tuple[FindingGroup, BaselineEntry]] = field(default_factory=list)
    moved: list[tuple[FindingGroup, BaselineEntry]] = field(default_factory=list)
    stale: list[BaselineEntry] = field(default_factory=list)
    fail_on: str = DEFAULT_FAIL_ON
    root: Path | None = None
    baseline_path: str | None = None
    unreviewed: list[BaselineEntry] = field(default_factory=list)
    """Baseline entries with an empty reason: accepted all the same, named by :func:`render`."""

    @property
    def failing(self) -> list[FindingGroup]:
        """New findings at or above ``fail_on`` (none when ``fail_on`` is ``never``)."""
        if self.fail_on == "never":
            return []
        floor = severity_rank(self.fail_on)
        return [group for group in self.new if severity_rank(group.severity) >= floor]

    @property
    def failed(self) -> bool:
        return bool(self.failing)

    def baseline_state(self) -> dict[str, str]:
        """SARIF ``baselineState`` by finding fingerprint: ``new``, ``unchanged`` (known) or ``updated`` (moved)."""
        states = {group.fingerprint: "new" for group in self.new}
        states.update({group.fingerprint: "unchanged" for group, _ in self.known})
        states.update({group.fingerprint: "updated" for group, _ in self.moved})
        return states


def _moved_key(rule: str, statement: str | None, path: str | None, function: str | None) -> tuple[str, ...]:
    return (rule, statement or "", path or "", function or "")


def compare(
    groups: Iterable[FindingGroup] | FindingGroups,
    baseline: Baseline | None,
    *,
    root: str | Path | None = None,
    fail_on: str = DEFAULT_FAIL_ON,
) -> GateResult:
    """Sort every group into new / known / moved and list the stale entries (see the module docstring). ``root``
    (default: the current directory) is what the baseline's paths are relative to."""
    base = Path(root if root is not None else Path.cwd()).resolve()
    entries = list(baseline.entries) if baseline is not None else []
    result = GateResult(fail_on=fail_on, root=base, baseline_path=baseline.path if baseline is not None else None)
    result.unreviewed = list(baseline.unreviewed()) if baseline is not None else []
    used: set[int] = set()
    by_fingerprint = {entry.fingerprint: index for index, entry in enumerate(entries)}
    by_identity: dict[tuple[str, str, str, str, int], int] = {}
    by_place: dict[tuple[str, ...], list[int]] = {}
    for position, entry in enumerate(entries):
        if entry.path:  # without a code location only the fingerprint can tell two findings apart
            by_identity.setdefault(entry.identity, position)
            key = _moved_key(entry.rule, entry.statement_fingerprint, entry.path, entry.function)
            by_place.setdefault(key, []).append(position)
    pending: list[FindingGroup] = []
    for group in groups:  # exact matches first, so a moved match never takes an entry another group owns
        index: int | None = by_fingerprint.get(group.fingerprint)
        path = relative_path(group.code_filepath, base)
        if (index is None or index in used) and path:
            identity = (group.rule, group.statement_fingerprint or "", path, group.code_function or "",
                        group.code_lineno or 0)  # fmt: skip
            index = by_identity.get(identity)
        if index is not None and index not in used:
            used.add(index)
            result.known.append((group, entries[index]))
        else:
            pending.append(group)
    for group in pending:
        path = relative_path(group.code_filepath, base)
        key = _moved_key(group.rule, group.statement_fingerprint, path, group.code_function)
        candidates = [i for i in by_place.get(key, []) if i not in used] if path else []
        if candidates:
            used.add(candidates[0])
            result.moved.append((group, entries[candidates[0]]))
        else:
            result.new.append(group)
    result.stale = [entry for index, entry in enumerate(entries) if index not in used]
    return result


def refreshed(result: GateResult, baseline: Baseline | None, *, prune: bool = False) -> tuple[Baseline, dict[str, int]]:
    """The baseline updated from ``result``: new findings added with an empty reason, moved ones at their new line
    (reason kept), known ones refreshed (reason kept), stale ones kept unless ``prune``. Also returns the counts
    (``added``, ``moved``, ``kept``, ``stale``, ``pruned``)."""
    entries: list[BaselineEntry] = []
    for group, entry in [*result.known, *result.moved]:
        entries.append(BaselineEntry.from_group(group, root=result.root, reason=entry.reason))
    entries.extend(BaselineEntry.from_group(group, root=result.root) for group in result.new)
    if not prune:
        entries.extend(result.stale)
    order = {entry.fingerprint: index for index, entry in enumerate(baseline.entries)} if baseline else {}
    entries.sort(key=lambda e: (order.get(e.fingerprint, len(order)), e.path or "", e.line or 0, e.rule))
    counts = {
        "added": len(result.new),
        "moved": len(result.moved),
        "kept": len(result.known),
        "stale": len(result.stale),
        "pruned": len(result.stale) if prune else 0,
    }
    path = baseline.path if baseline is not None else None
    return Baseline(entries=tuple(entries), path=path), counts


def _place(group: FindingGroup, root: Path | None) -> str:
    path = relative_path(group.code_filepath, root)
    if not path:
        return "(no code location)"
    where = f"{path}:{group.code_lineno or 0}"
    return f"{where} in {group.code_function}" if group.code_function else where


def render(
    result: GateResult,
    *,
    details: Callable[[FindingGroup], list[str]] | None = None,
    also_failed: Sequence[str] = (),
) -> str:
    """The gate's verdict as text: one line of counts, then every new, moved and stale entry. ``details`` adds lines
    under each new finding (the pytest plugin: the tests that ran it and the ``tenantwatch explain`` line);
    ``also_failed`` are other reasons the gate failed for (one line each, after the counts)."""
    source = f"baseline {result.baseline_path}" if result.baseline_path else "no baseline: every finding is new"
    verdict = "FAILED" if result.failed or also_failed else "passed"
    lines = [
        f"tenantwatch gate {verdict}: {len(result.new)} new ({len(result.failing)} at {result.fail_on} or above), "
        f"{len(result.known)} known, {len(result.moved)} moved, {len(result.stale)} stale ({source})",
        *(f"tenantwatch gate FAILED: {reason}" for reason in also_failed),
    ]
    if result.new:
        lines.append(f"new findings (not in the baseline; the gate fails at {result.fail_on} and above):")
        for group in result.new:
            table = f" table={group.table}" if group.table else ""
            lines.append(
                f"  {group.severity.upper()} {group.rule}{table} at {_place(group, result.root)} "
                f"({group.count}x, fingerprint {group.fingerprint})"
            )
            lines.append(f"      {group.message}")
            if details is not None:
                lines.extend(f"      {line}" for line in details(group))
    if result.moved:
        lines.append("moved (still accepted; refresh the baseline with `tenantwatch baseline`):")
        for group, entry in result.moved:
            lines.append(f"  {entry.rule} {entry.location} -> line {group.code_lineno}")
    if result.stale:
        lines.append(
            "stale baseline entries (nothing matched them: fixed? remove them with "
            "`tenantwatch baseline FINDINGS.json --prune`):"
        )
        for entry in result.stale:
            lines.append(f"  {entry.rule} at {entry.location} (fingerprint {entry.fingerprint})")
    if result.unreviewed:
        count = len(result.unreviewed)
        lines.append(
            f"{count} baseline entr{'y has' if count == 1 else 'ies have'} no reason: review them; "
            "`tenantwatch baseline --check` fails on them"
        )
    return "\n".join(lines) + "\n"
