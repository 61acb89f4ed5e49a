"""brute_force: many authentication failures (401/403) from one client within a window."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tenantwatch import attributes as A
from tenantwatch.core.findings import Finding, key_fingerprint
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "BruteForce", "BruteForceSettings"]


class BruteForceSettings(RuleSettings):
    """``rules.brute_force``."""

    threshold: int = Field(default=10, gt=0, description="auth failures of one client within the window")
    window_seconds: float = Field(default=60.0, gt=0, description="the window the middleware counts failures in")


class BruteForce(Rule):
    """Fires on a server span whose ``tenantwatch.http.auth_failures`` (the failures of that client within
    ``window_seconds``, counted by the ASGI middleware's security observer) is at or above ``threshold``. Once past
    the threshold, every further failing request of that client carries the finding."""

    __slots__ = ()
    meta = RuleMeta(
        id="brute_force",
        title="Brute force",
        summary="N auth failures (401/403) from one client within a window",
        severity="high",
        categories=("security", "abuse"),
        remediation="Rate-limit or lock out the client (see `blocking` in the rules file), and check whether a "
        "client is retrying with an expired or wrong credential.",
        stages=("request",),
        settings=BruteForceSettings,
        verdict="the client's auth-failure count (`tenantwatch.http.auth_failures`) recorded on the server span",
    )

    def judge_request(self, attributes: Mapping[str, Any], facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        failures = attributes.get(A.HTTP_AUTH_FAILURES)
        if not isinstance(failures, int) or isinstance(failures, bool):
            return NO_FINDINGS
        own = settings.rules.brute_force
        if failures < own.threshold:
            return NO_FINDINGS
        client = str(attributes.get(A.CLIENT_ADDRESS, "unknown"))
        message = (
            f"client {client} had {failures} auth failures within {own.window_seconds:g} s (threshold {own.threshold})"
        )
        return (self.finding(facts, settings, message, fingerprint=key_fingerprint(self.id, client)),)


RULE = BruteForce()
