"""Suppressions: findings the rules file says to keep quiet.

A suppression in the rules file matches when every field it gives matches: ``rule``, ``fingerprint`` (exact),
``table`` (case-insensitive) and ``route`` (a glob such as ``/admin/*`` against the ``http.route`` known for the
statement). A suppressed finding is kept off the span, the ``tenantwatch.findings`` counter and the log; the processor
counts it on ``tenantwatch.findings.suppressed`` instead, so suppression stays visible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenantwatch.config import Settings, Suppression
    from tenantwatch.core.findings import Finding
    from tenantwatch.facts import SpanFacts

__all__ = ["is_suppressed", "matching_suppression", "needs_route"]


def matching_suppression(finding: Finding, facts: SpanFacts, settings: Settings) -> Suppression | None:
    """The first suppression in ``settings`` that matches ``finding`` for the statement described by ``facts``."""
    for suppression in settings.suppressions:
        if suppression.matches(
            rule=finding.rule,
            fingerprint=finding.fingerprint,
            table=finding.table,
            route=facts.route,
        ):
            return suppression
    return None


def is_suppressed(finding: Finding, facts: SpanFacts, settings: Settings) -> bool:
    """True when a suppression in the rules file matches ``finding``."""
    return matching_suppression(finding, facts, settings) is not None


def needs_route(settings: Settings) -> bool:
    """True when some suppression matches on the route (so it is worth finding the route of a db span)."""
    return any(suppression.route is not None for suppression in settings.suppressions)
