"""slow_query: a statement took longer than the threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "SlowQuery", "SlowQuerySettings"]


class SlowQuerySettings(RuleSettings):
    """``rules.slow_query``."""

    threshold_ms: float = Field(default=500.0, gt=0, description="milliseconds (env TENANTWATCH_SLOW_QUERY_MS)")


class SlowQuery(Rule):
    """Fires when the db span lasted longer than ``rules.slow_query.threshold_ms`` (default 500 ms)."""

    __slots__ = ()
    meta = RuleMeta(
        id="slow_query",
        title="Slow query",
        summary="duration above the threshold",
        severity="warning",
        categories=("performance",),
        remediation="Look at the plan (`EXPLAIN ANALYZE`): an index on the tenant column plus the filter columns "
        "usually fixes it; or move the work out of the request path.",
        stages=("statement",),
        settings=SlowQuerySettings,
        verdict="the db span's duration (start to end)",
        needs=("duration_ms",),
        measured=True,
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        duration = facts.duration_ms
        if duration is None:
            return NO_FINDINGS
        threshold = settings.rules.slow_query.threshold_ms
        if duration <= threshold:
            return NO_FINDINGS
        table = facts.main_table
        target = f" on {table}" if table else ""
        message = f"{facts.operation or 'statement'}{target} took {duration:.0f} ms (threshold {threshold:g} ms)"
        return (self.finding(facts, settings, message, table=table),)

    def quiet_up_to(self, settings: Settings) -> float:
        return settings.rules.slow_query.threshold_ms  # fires only above it


RULE = SlowQuery()
