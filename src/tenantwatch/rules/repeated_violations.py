"""repeated_violations: one tenant or user piles up high and critical findings within an hour."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding, key_fingerprint, severity_rank
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, Window
from tenantwatch.core.windows.sliding import SlidingSum
from tenantwatch.core.windows.state import KeyedState

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "RepeatedViolations", "RepeatedViolationsSettings"]

_HIGH = severity_rank("high")


class RepeatedViolationsSettings(RuleSettings):
    """``rules.repeated_violations``."""

    threshold: int = Field(default=5, gt=0, description="high/critical findings of one tenant or user in the window")
    window_seconds: float = Field(default=3600.0, gt=0, description="the sliding window")


class _Violations(Window):
    __slots__ = ("_limits", "_rule", "_settings", "_violations")

    def __init__(self, rule: Rule, settings: Settings, state: StateSettings) -> None:
        own = settings.rules.repeated_violations
        self._rule, self._settings = rule, settings
        self._limits = (own.window_seconds, own.threshold)
        self._violations: KeyedState[tuple[str, str], SlidingSum] = KeyedState(
            SlidingSum, max_keys=state.max_keys, ttl=state.ttl_seconds
        )

    def size(self) -> int:
        return len(self._violations)

    def after(self, kept: Sequence[Finding], facts: SpanFacts, now: float) -> Sequence[Finding]:
        serious = sum(1 for f in kept if f.rule != self._rule.id and severity_rank(f.severity) >= _HIGH)
        if not serious:
            return NO_FINDINGS
        window, threshold = self._limits
        found: list[Finding] = []
        for kind, who in (("tenant", facts.tenant_id), ("user", facts.user_id)):
            if who is None:
                continue
            total = self._violations.get((kind, who), now).add(
                now, serious, window=window, threshold=threshold, inclusive=True
            )
            if total is not None:
                message = (
                    f"{kind} {who!r} has {total} high or critical findings within {window:g} s (threshold {threshold})"
                )
                fingerprint = key_fingerprint(self._rule.id, kind, who)
                found.append(self._rule.finding(facts, self._settings, message, fingerprint=fingerprint))
        return found


class RepeatedViolations(Rule):
    """Counts the high and critical findings the processor kept (after suppressions; its own findings excluded) per
    tenant and per user; fires when one reaches ``threshold`` (default 5, inclusive) within ``window_seconds``
    (default 3600), then stays quiet for one window. Sees db and server spans, unscoped work included."""

    __slots__ = ()
    meta = RuleMeta(
        id="repeated_violations",
        title="Repeated violations",
        summary=">= 5 high/critical findings for one tenant or user within 1 h",
        severity="high",
        categories=("security", "abuse"),
        remediation="Treat it as an incident: look at that tenant's or user's findings together (a probing client, "
        "a broken deploy), fix the underlying rules' findings, and consider `blocking`.",
        stages=("findings",),
        settings=RepeatedViolationsSettings,
        verdict="the severities of the findings kept for each span, per tenant and per user",
    )

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        return _Violations(self, settings, state)


RULE = RepeatedViolations()
