"""A finding: one rule's verdict on one statement or request, and the severities it can carry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from tenantwatch.attributes import SEVERITIES

if TYPE_CHECKING:
    from tenantwatch.facts import SpanFacts

__all__ = ["Finding", "Severity", "finding_fingerprint", "highest_severity", "key_fingerprint", "severity_rank"]

Severity = Literal["info", "warning", "high", "critical"]
"""Lowest to highest; the order of :data:`tenantwatch.attributes.SEVERITIES`."""


def severity_rank(severity: str) -> int:
    """0 for ``info`` up to 3 for ``critical``; unknown severities rank lowest."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1


def highest_severity(severities: list[str] | tuple[str, ...]) -> str | None:
    return max(severities, key=severity_rank) if severities else None


def _digest(parts: tuple[str, ...]) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def finding_fingerprint(rule: str, facts: SpanFacts) -> str:
    """Rule + statement fingerprint + code location: one bug counts as one, whatever the parameter values."""
    return _digest((rule, facts.statement_fingerprint or "", facts.code_location))


def key_fingerprint(rule: str, *parts: str | None) -> str:
    """Rule + the key a windowed or request rule counts by (tenant, table, client, ...): one storm counts as one."""
    return _digest((rule, *(part or "" for part in parts)))


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found. ``fingerprint`` is stable across parameter values (see :func:`finding_fingerprint`)."""

    rule: str
    severity: Severity
    message: str
    fingerprint: str
    table: str | None = None
    suggestion: str | None = None
    """A suggested fix (``test_data``: the cleanup statement). Shown, never executed."""
    tenant_key: str | None = None
    """The tenant key a finding is about in a tenant hierarchy (``team`` when a team value differs from the
    context's team); ``None`` for the root key and for findings about no key in particular."""
