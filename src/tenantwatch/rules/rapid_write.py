"""rapid_write: a tenant writes more rows to one table within a second than the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding, key_fingerprint
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, Window
from tenantwatch.core.windows.sliding import SlidingSum
from tenantwatch.core.windows.state import KeyedState

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "RapidWrite", "RapidWriteSettings"]


class RapidWriteSettings(RuleSettings):
    """``rules.rapid_write``."""

    threshold: int = Field(default=10, gt=0, description="rows written per tenant and table within the window")
    window_seconds: float = Field(default=1.0, gt=0, description="the sliding window")


class _RowsPerSecond(Window):
    """Rows written per (tenant, table) in a short sliding window; one finding per window once over the threshold."""

    __slots__ = ("_rule", "_settings", "_sums", "_threshold", "_window")

    def __init__(self, rule: Rule, settings: Settings, state: StateSettings) -> None:
        own = settings.rules.rapid_write
        self._rule, self._settings = rule, settings
        self._window, self._threshold = own.window_seconds, own.threshold
        self._sums: KeyedState[tuple[str, str], SlidingSum] = KeyedState(
            SlidingSum, max_keys=state.max_keys, ttl=state.ttl_seconds
        )

    def size(self) -> int:
        return len(self._sums)

    def observe(self, facts: SpanFacts, now: float) -> Sequence[Finding]:
        rows = facts.returned_rows or 0
        tenant = facts.tenant_id
        if not facts.is_write or rows <= 0 or tenant is None:
            return NO_FINDINGS
        table = facts.main_table or ""
        total = self._sums.get((tenant, table), now).add(now, rows, window=self._window, threshold=self._threshold)
        if total is None:
            return NO_FINDINGS
        rule = self._rule
        message = (
            f"tenant {tenant!r} wrote {total} rows to {table} within {self._window:g} s (threshold {self._threshold})"
        )
        fingerprint = key_fingerprint(rule.id, tenant, table)
        return (rule.finding(facts, self._settings, message, table=table or None, fingerprint=fingerprint),)


class RapidWrite(Rule):
    """Like ``bulk_write`` on a short window: fires when more than ``threshold`` rows (default 10) were written to one
    table by one tenant within ``window_seconds`` (default 1), then stays quiet for one window. Windowed rules only
    see statements with a tenant in context, outside ``unscoped(reason)``."""

    __slots__ = ()
    meta = RuleMeta(
        id="rapid_write",
        title="Rapid write",
        summary="> 10 rows written per second, per tenant and table",
        severity="high",
        categories=("abuse", "data-integrity"),
        remediation="Find the loop or script writing row by row (a runaway retry, a scraper with write access); "
        "batch intended imports in a job inside `unscoped(reason)` or raise the threshold.",
        stages=("stream",),
        settings=RapidWriteSettings,
        verdict="the rows each write changed (`db.response.returned_rows`), per tenant and main table",
    )

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        return _RowsPerSecond(self, settings, state)


RULE = RapidWrite()
