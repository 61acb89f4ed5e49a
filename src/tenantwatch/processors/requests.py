"""Judging server spans: the request facts the ASGI middleware recorded become findings.

* ``tenantwatch.http.attack_patterns`` (SQL injection, XSS, path traversal, command injection in the path, query
  string or headers) -> ``injection_signal``;
* ``tenantwatch.http.auth_failures`` at or above ``rules.brute_force.threshold`` (default 10 failures of one client
  within ``window_seconds``, counted by the middleware) -> ``brute_force``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding

__all__ = ["has_request_facts", "judge_request", "request_facts"]


def has_request_facts(attributes: Mapping[str, Any]) -> bool:
    return A.HTTP_ATTACK_PATTERNS in attributes or A.HTTP_AUTH_FAILURES in attributes


def request_facts(attributes: Mapping[str, Any]) -> SpanFacts:
    """The tenant, user, role and route of a server span, as facts (for metrics, suppressions and log records)."""
    return SpanFacts.from_attributes(attributes)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:16]


def judge_request(attributes: Mapping[str, Any], facts: SpanFacts, settings: Settings) -> list[Finding]:
    """Findings of the request rules for one server span (pure; never raises on odd attribute types)."""
    findings: list[Finding] = []
    route = facts.route or ""
    patterns = attributes.get(A.HTTP_ATTACK_PATTERNS)
    if patterns and settings.enabled("injection_signal"):
        items = [str(p) for p in (patterns if isinstance(patterns, list | tuple) else (patterns,))]
        kinds = sorted({item.split(":", 1)[0] for item in items})
        findings.append(
            Finding(
                rule="injection_signal",
                severity=settings.severity("injection_signal"),
                message=f"request to {route or 'an unmatched route'} carries attack patterns: {', '.join(items[:8])}",
                fingerprint=_fingerprint("injection_signal", route, *kinds),
            )
        )
    failures = attributes.get(A.HTTP_AUTH_FAILURES)
    if isinstance(failures, int) and not isinstance(failures, bool) and settings.enabled("brute_force"):
        rule = settings.rule("brute_force")
        threshold = rule.threshold or 10
        if failures >= threshold:
            client = str(attributes.get(A.CLIENT_ADDRESS, "unknown"))
            window = rule.window_seconds or 60.0
            findings.append(
                Finding(
                    rule="brute_force",
                    severity=settings.severity("brute_force"),
                    message=f"client {client} had {failures} auth failures within {window:g} s (threshold {threshold})",
                    fingerprint=_fingerprint("brute_force", client),
                )
            )
    return findings
