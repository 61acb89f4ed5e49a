"""A finding: one rule's verdict on one statement."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tenantwatch.attributes import SEVERITIES
from tenantwatch.config import Severity
from tenantwatch.facts import SpanFacts

__all__ = ["Finding", "finding_fingerprint", "highest_severity", "severity_rank"]


def severity_rank(severity: str) -> int:
    """0 for ``info`` up to 3 for ``critical``; unknown severities rank lowest."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return -1


def highest_severity(severities: list[str] | tuple[str, ...]) -> str | None:
    return max(severities, key=severity_rank) if severities else None


def finding_fingerprint(rule: str, facts: SpanFacts) -> str:
    """Rule + statement fingerprint + code location: one bug counts as one, whatever the parameter values."""
    basis = "\x1f".join((rule, facts.statement_fingerprint or "", facts.code_location))
    return hashlib.sha1(basis.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


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
