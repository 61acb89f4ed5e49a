"""slow_query: a statement took longer than the threshold."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, limits

__all__ = ["SlowQuery"]


class SlowQuery(Rule):
    """Fires when the db span lasted longer than ``rules.slow_query.threshold_ms`` (default 500 ms)."""

    __slots__ = ()
    id = "slow_query"
    summary = "duration above the threshold"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        duration = facts.duration_ms
        if duration is None:
            return NO_FINDINGS
        threshold = limits(settings).slow_query_ms
        if duration <= threshold:
            return NO_FINDINGS
        table = facts.main_table
        target = f" on {table}" if table else ""
        message = f"{facts.operation or 'statement'}{target} took {duration:.0f} ms (threshold {threshold:g} ms)"
        return (self.finding(facts, settings, message, table=table),)
