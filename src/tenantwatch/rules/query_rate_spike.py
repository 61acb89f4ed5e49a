"""query_rate_spike: a tenant's query rate far above that tenant's own baseline.

Queries are counted per tenant in fixed windows (``window_seconds``, default 10). When a window closes, its count
updates an exponentially weighted mean and mean absolute deviation of the tenant's counts (windows with no query
count as 0). A window fires once when, after ``warmup`` closed windows (default 6), its running count reaches
``threshold`` queries (default 50) and exceeds ``mean + deviations * deviation`` (default 4). The deviation has a
floor of 10 % of the mean and 1 query, so a perfectly flat baseline does not make every extra query a spike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding, key_fingerprint
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, Window
from tenantwatch.core.windows.state import KeyedState

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "QueryRateSpike", "QueryRateSpikeSettings", "RateBaseline"]


class QueryRateSpikeSettings(RuleSettings):
    """``rules.query_rate_spike``."""

    threshold: int = Field(default=50, gt=0, description="minimum queries in a window before it can be a spike")
    window_seconds: float = Field(default=10.0, gt=0, description="the fixed counting window")
    deviations: float = Field(default=4.0, gt=0, description="mean absolute deviations above the baseline")
    warmup: int = Field(default=6, ge=0, description="closed windows of a tenant before it can fire")


_ALPHA = 0.3
"""EWMA weight of the newest window."""

_MAX_CATCH_UP = 64
"""Empty windows folded into the baseline one by one after a pause; beyond that the baseline decays at once."""


class RateBaseline:
    """One tenant's window counter and baseline."""

    __slots__ = ("count", "deviation", "fired", "mean", "seen", "window_start")

    def __init__(self) -> None:
        self.window_start: float | None = None
        self.count = 0
        self.mean = 0.0
        self.deviation = 0.0
        self.seen = 0
        """Closed windows folded into the baseline."""
        self.fired = False

    def _close(self, count: int) -> None:
        if self.seen == 0:
            self.mean = float(count)
        else:
            self.deviation = (1 - _ALPHA) * self.deviation + _ALPHA * abs(count - self.mean)
            self.mean = (1 - _ALPHA) * self.mean + _ALPHA * count
        self.seen += 1

    def observe(self, now: float, *, window: float, warmup: int, threshold: int, deviations: float) -> int | None:
        """Count one query at ``now``; return the window's count when this query makes the window a spike."""
        start = self.window_start
        if start is None:
            self.window_start = now
        elif now >= start + window:
            elapsed = int((now - start) // window)
            self._close(self.count)
            empty = elapsed - 1
            if empty > _MAX_CATCH_UP:
                self.mean *= (1 - _ALPHA) ** empty
                self.deviation *= (1 - _ALPHA) ** empty
                self.seen += empty
            else:
                for _ in range(empty):
                    self._close(0)
            self.window_start = start + elapsed * window
            self.count = 0
            self.fired = False
        self.count += 1
        if self.fired or self.seen < warmup or self.count < threshold:
            return None
        floor = max(self.deviation, 0.1 * self.mean, 1.0)
        if self.count <= self.mean + deviations * floor:
            return None
        self.fired = True
        return self.count


class _Rates(Window):
    __slots__ = ("_limits", "_rates", "_rule", "_settings")

    def __init__(self, rule: Rule, settings: Settings, state: StateSettings) -> None:
        own = settings.rules.query_rate_spike
        self._rule, self._settings = rule, settings
        self._limits = (own.window_seconds, own.warmup, own.threshold, own.deviations)
        self._rates: KeyedState[str, RateBaseline] = KeyedState(
            RateBaseline, max_keys=state.max_keys, ttl=state.ttl_seconds
        )

    def size(self) -> int:
        return len(self._rates)

    def observe(self, facts: SpanFacts, now: float) -> Sequence[Finding]:
        tenant = facts.tenant_id
        if tenant is None:
            return NO_FINDINGS
        window, warmup, threshold, deviations = self._limits
        baseline = self._rates.get(tenant, now)
        count = baseline.observe(now, window=window, warmup=warmup, threshold=threshold, deviations=deviations)
        if count is None:
            return NO_FINDINGS
        message = (
            f"tenant {tenant!r} ran {count} queries in {window:g} s, against a baseline of "
            f"{baseline.mean:.1f} per window"
        )
        fingerprint = key_fingerprint(self._rule.id, tenant)
        return (self._rule.finding(facts, self._settings, message, fingerprint=fingerprint),)


class QueryRateSpike(Rule):
    """Counts every judged statement per tenant (see the module docstring for the baseline); fires once per window
    in which a tenant's count is far above its own baseline. Windowed rules only see statements with a tenant in
    context, outside ``unscoped(reason)``."""

    __slots__ = ()
    meta = RuleMeta(
        id="query_rate_spike",
        title="Query rate spike",
        summary="a tenant's query rate far above its own baseline (EWMA, warm-up)",
        severity="warning",
        categories=("abuse", "performance"),
        remediation="Look for an N+1 loop, a retry storm or scraping on that tenant's traffic; cache or batch the "
        "queries, or rate-limit the client.",
        stages=("stream",),
        settings=QueryRateSpikeSettings,
        verdict="the count of judged statements per tenant and fixed window",
    )

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        return _Rates(self, settings, state)


RULE = QueryRateSpike()
