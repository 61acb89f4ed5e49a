"""Judging server spans: the request facts the ASGI middleware recorded become findings.

The request rules (stage ``request`` of :mod:`tenantwatch.core.rule`) judge them: ``injection_signal`` (attack
patterns in the path, query string or headers) and ``brute_force`` (auth failures of one client), in
``tenantwatch/rules/<id>.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import rules_for
from tenantwatch.facts import SpanFacts

__all__ = ["has_request_facts", "judge_request", "request_facts"]


def has_request_facts(attributes: Mapping[str, Any]) -> bool:
    return A.HTTP_ATTACK_PATTERNS in attributes or A.HTTP_AUTH_FAILURES in attributes


def request_facts(attributes: Mapping[str, Any]) -> SpanFacts:
    """The tenant, user, role and route of a server span, as facts (for metrics, suppressions and log records)."""
    return SpanFacts.from_attributes(attributes)


def judge_request(attributes: Mapping[str, Any], facts: SpanFacts, settings: Settings) -> list[Finding]:
    """Findings of the enabled request rules for one server span (pure; never raises on odd attribute types)."""
    findings: list[Finding] = []
    for rule in rules_for("request"):
        if settings.enabled(rule.id):
            findings.extend(rule.judge_request(attributes, facts, settings))
    return findings
