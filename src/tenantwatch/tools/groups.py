"""Findings grouped by finding fingerprint: what ``scan`` prints, the CI gate compares and ``report`` charts.

One :class:`FindingGroup` per finding fingerprint (rule + statement fingerprint + code location, see
:func:`tenantwatch.core.findings.finding_fingerprint`): one bug counts once however often it ran. A group keeps the
count, the first and last time it was seen, a few example trace ids (the first ones, for Jaeger links) and a
bounded count per tenant. Memory is bounded by the number of distinct fingerprints, never by the number of spans.

The JSON form (:meth:`FindingGroups.to_json`) is a document::

    {"format": "tenantwatch.findings", "version": 1, "spans": 1200, "findings": 37, "groups": [{...}, ...]}

with one object per group (see :meth:`FindingGroup.to_json`); :meth:`FindingGroups.from_json` reads it back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from tenantwatch.core.findings import Finding, severity_rank
from tenantwatch.facts import SpanFacts

__all__ = ["DOCUMENT_FORMAT", "MAX_EXAMPLES", "MAX_TENANTS", "OTHER_TENANTS", "FindingGroup", "FindingGroups"]

DOCUMENT_FORMAT: Final = "tenantwatch.findings"
DOCUMENT_VERSION: Final = 1
MAX_EXAMPLES: Final = 5
"""Example trace ids kept per group (the first seen)."""
MAX_TENANTS: Final = 50
"""Distinct tenants counted per group; further tenants count under :data:`OTHER_TENANTS`."""
OTHER_TENANTS: Final = "__other__"


@dataclass(slots=True)
class FindingGroup:
    """Every occurrence of one finding fingerprint."""

    fingerprint: str
    rule: str
    severity: str
    """The highest severity seen."""
    message: str
    """The first occurrence's message."""
    table: str | None = None
    tenant_key: str | None = None
    statement: str | None = None
    """The first occurrence's statement text as recorded on the span (parameterized, never bound values)."""
    statement_fingerprint: str | None = None
    code_filepath: str | None = None
    code_lineno: int | None = None
    code_function: str | None = None
    route: str | None = None
    service: str | None = None
    count: int = 0
    first_seen_ns: int | None = None
    """Unix time in nanoseconds (the span's end time) of the first occurrence; ``None`` when not known."""
    last_seen_ns: int | None = None
    trace_ids: list[str] = field(default_factory=list)
    """Up to :data:`MAX_EXAMPLES` trace ids (32 hex digits), first seen first."""
    tenants: dict[str, int] = field(default_factory=dict)
    """Occurrences per context tenant (``""``: none), at most :data:`MAX_TENANTS` keys plus :data:`OTHER_TENANTS`."""

    @property
    def code_location(self) -> str:
        """``path:line in function`` (empty when the statement's origin is not known)."""
        if not self.code_filepath:
            return ""
        where = f"{self.code_filepath}:{self.code_lineno or 0}"
        return f"{where} in {self.code_function}" if self.code_function else where

    def add(
        self, *, severity: str, time_ns: int | None = None, trace_id: str | None = None, tenant: str | None = None
    ) -> None:
        """Count one more occurrence."""
        self.count += 1
        if severity_rank(severity) > severity_rank(self.severity):
            self.severity = severity
        if time_ns is not None:
            if self.first_seen_ns is None or time_ns < self.first_seen_ns:
                self.first_seen_ns = time_ns
            if self.last_seen_ns is None or time_ns > self.last_seen_ns:
                self.last_seen_ns = time_ns
        if trace_id and len(self.trace_ids) < MAX_EXAMPLES and trace_id not in self.trace_ids:
            self.trace_ids.append(trace_id)
        name = tenant or ""
        if name in self.tenants or len(self.tenants) < MAX_TENANTS:
            self.tenants[name] = self.tenants.get(name, 0) + 1
        else:
            self.tenants[OTHER_TENANTS] = self.tenants.get(OTHER_TENANTS, 0) + 1

    def merge(self, other: FindingGroup) -> None:
        """Fold another group of the same fingerprint into this one (e.g. two scanned files)."""
        self.count += other.count
        if severity_rank(other.severity) > severity_rank(self.severity):
            self.severity = other.severity
        for seen in (other.first_seen_ns, other.last_seen_ns):
            if seen is not None:
                self.first_seen_ns = seen if self.first_seen_ns is None else min(self.first_seen_ns, seen)
                self.last_seen_ns = seen if self.last_seen_ns is None else max(self.last_seen_ns, seen)
        for trace_id in other.trace_ids:
            if len(self.trace_ids) < MAX_EXAMPLES and trace_id not in self.trace_ids:
                self.trace_ids.append(trace_id)
        for name, count in other.tenants.items():
            if name in self.tenants or len(self.tenants) < MAX_TENANTS:
                self.tenants[name] = self.tenants.get(name, 0) + count
            else:
                self.tenants[OTHER_TENANTS] = self.tenants.get(OTHER_TENANTS, 0) + count

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "table": self.table,
            "tenant_key": self.tenant_key,
            "statement": self.statement,
            "statement_fingerprint": self.statement_fingerprint,
            "code_filepath": self.code_filepath,
            "code_lineno": self.code_lineno,
            "code_function": self.code_function,
            "route": self.route,
            "service": self.service,
            "count": self.count,
            "first_seen_ns": self.first_seen_ns,
            "last_seen_ns": self.last_seen_ns,
            "trace_ids": list(self.trace_ids),
            "tenants": dict(self.tenants),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FindingGroup:
        """Read one group back; raises ``ValueError`` naming the first missing or mistyped field."""
        try:
            group = cls(
                fingerprint=_text(data, "fingerprint"),
                rule=_text(data, "rule"),
                severity=_text(data, "severity"),
                message=_text(data, "message"),
            )
        except KeyError as missing:
            raise ValueError(f"a finding group lacks {missing}") from None
        for name in ("table", "tenant_key", "statement", "statement_fingerprint", "code_filepath"):
            setattr(group, name, _optional_text(data, name))
        for name in ("code_function", "route", "service"):
            setattr(group, name, _optional_text(data, name))
        group.code_lineno = _optional_int(data, "code_lineno")
        group.count = _optional_int(data, "count") or 0
        group.first_seen_ns = _optional_int(data, "first_seen_ns")
        group.last_seen_ns = _optional_int(data, "last_seen_ns")
        trace_ids = data.get("trace_ids") or []
        if not isinstance(trace_ids, list) or not all(isinstance(t, str) for t in trace_ids):
            raise ValueError("a finding group's trace_ids must be a list of strings")
        group.trace_ids = list(trace_ids)[:MAX_EXAMPLES]
        tenants = data.get("tenants") or {}
        if not isinstance(tenants, dict) or not all(isinstance(v, int) for v in tenants.values()):
            raise ValueError("a finding group's tenants must map tenant to count")
        group.tenants = {str(k): int(v) for k, v in tenants.items()}
        return group


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"a finding group's {name} must be a string, not {type(value).__name__}")
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"a finding group's {name} must be a string or null, not {type(value).__name__}")
    return value


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"a finding group's {name} must be an integer or null, not {type(value).__name__}")
    return value


class FindingGroups:
    """Findings grouped by fingerprint, in the order first seen; iterate for the most severe, most frequent first."""

    def __init__(self) -> None:
        self._groups: dict[str, FindingGroup] = {}
        self.spans = 0
        """Spans judged (set by whoever feeds the groups: ``scan`` counts what it read)."""
        self.findings = 0

    def __len__(self) -> int:
        return len(self._groups)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._groups

    def get(self, fingerprint: str) -> FindingGroup | None:
        return self._groups.get(fingerprint)

    def __iter__(self) -> Iterator[FindingGroup]:
        return iter(
            sorted(self._groups.values(), key=lambda g: (-severity_rank(g.severity), -g.count, g.rule, g.fingerprint))
        )

    def add(
        self,
        finding: Finding,
        facts: SpanFacts,
        *,
        time_ns: int | None = None,
        trace_id: str | None = None,
        service: str | None = None,
    ) -> FindingGroup:
        """Count one finding of one span; the first occurrence of a fingerprint describes the group."""
        self.findings += 1
        group = self._groups.get(finding.fingerprint)
        if group is None:
            group = FindingGroup(
                fingerprint=finding.fingerprint,
                rule=finding.rule,
                severity=finding.severity,
                message=finding.message,
                table=finding.table,
                tenant_key=finding.tenant_key,
                statement=facts.statement,
                statement_fingerprint=facts.statement_fingerprint,
                code_filepath=facts.code_filepath,
                code_lineno=facts.code_lineno,
                code_function=facts.code_function,
                route=facts.route,
                service=service,
            )
            self._groups[finding.fingerprint] = group
        group.add(severity=finding.severity, time_ns=time_ns, trace_id=trace_id, tenant=facts.tenant_id)
        return group

    def merge(self, other: FindingGroups) -> None:
        self.spans += other.spans
        self.findings += other.findings
        for group in other._groups.values():
            mine = self._groups.get(group.fingerprint)
            if mine is None:
                self._groups[group.fingerprint] = FindingGroup.from_json(group.to_json())
            else:
                mine.merge(group)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": DOCUMENT_FORMAT,
            "version": DOCUMENT_VERSION,
            "spans": self.spans,
            "findings": self.findings,
            "groups": [group.to_json() for group in self],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> FindingGroups:
        """Read a document written by :meth:`to_json`; ``ValueError`` with a clear message for anything else."""
        if not isinstance(document, Mapping) or document.get("format") != DOCUMENT_FORMAT:
            raise ValueError(f'not a tenantwatch findings document (expected "format": "{DOCUMENT_FORMAT}")')
        if document.get("version") != DOCUMENT_VERSION:
            raise ValueError(f"unsupported findings document version {document.get('version')!r}")
        groups = cls()
        spans, findings = document.get("spans", 0), document.get("findings", 0)
        if not isinstance(spans, int) or not isinstance(findings, int):
            raise ValueError("a findings document's spans and findings must be integers")
        groups.spans, groups.findings = spans, findings
        entries = document.get("groups")
        if not isinstance(entries, list):
            raise ValueError('a findings document needs a "groups" list')
        for index, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ValueError(f"groups[{index}] is not an object")
            try:
                group = FindingGroup.from_json(entry)
            except ValueError as error:
                raise ValueError(f"groups[{index}]: {error}") from None
            groups._groups[group.fingerprint] = group
        return groups
