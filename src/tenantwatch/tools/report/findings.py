"""Read finding-group documents (``tenantwatch scan --json``, :mod:`tenantwatch.tools.groups`) for a report.

A group has a count, a first and a last time seen, but no time series: the report keeps the groups seen in the
period (last seen at or after its start, first seen at or before its end, or times unknown) and counts each whole.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tenantwatch.tools.groups import FindingGroup, FindingGroups
from tenantwatch.tools.report.model import Period

__all__ = ["FindingsSource", "load_findings"]


@dataclass(slots=True)
class FindingsSource:
    """The groups of every document read, merged, and one description line per document."""

    groups: FindingGroups = field(default_factory=FindingGroups)
    documents: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return "findings document" + ("s " if len(self.documents) > 1 else " ") + ", ".join(self.documents)

    def in_period(self, period: Period) -> list[FindingGroup]:
        """Groups seen in ``period``, most severe and most frequent first."""
        start_ns, end_ns = period.start.timestamp() * 1e9, period.end.timestamp() * 1e9
        return [
            group
            for group in self.groups
            if (group.last_seen_ns is None or group.last_seen_ns >= start_ns)
            and (group.first_seen_ns is None or group.first_seen_ns <= end_ns)
        ]

    def counts(self, period: Period, key: str) -> Counter[str]:
        """Occurrences per ``rule``, ``severity``, ``route`` or ``tenant`` of the groups in ``period``."""
        totals: Counter[str] = Counter()
        for group in self.in_period(period):
            if key == "tenant":
                for tenant, count in group.tenants.items():
                    totals[tenant or "(no tenant)"] += count
            elif key == "route":
                totals[group.route or "(no route)"] += group.count
            else:
                totals[str(getattr(group, key))] += group.count
        return totals


def load_findings(paths: list[str]) -> FindingsSource:
    """Read and merge ``paths``; ``ValueError`` naming the file for anything unreadable or not a findings document."""
    source = FindingsSource()
    for name in paths:
        try:
            text = Path(name).read_text(encoding="utf-8")
        except OSError as error:
            raise ValueError(f"cannot read findings document {name}: {error.strerror or error}") from None
        try:
            document = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{name} is not JSON: {error}") from None
        try:
            groups = FindingGroups.from_json(document)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        source.groups.merge(groups)
        source.documents.append(name)
    return source
