"""bulk_write: a tenant writes more rows to one table within a minute than the threshold."""

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

__all__ = ["RULE", "BulkWrite", "BulkWriteSettings", "RowsWritten"]


class BulkWriteSettings(RuleSettings):
    """``rules.bulk_write``."""

    threshold: int = Field(default=50, gt=0, description="rows written per tenant and table within the window")
    window_seconds: float = Field(default=60.0, gt=0, description="the sliding window")


class RowsWritten(Window):
    """Rows written per (tenant, table) in a sliding window; one finding per window once over the threshold (the
    window of ``bulk_write`` and, on a short window, of ``rapid_write``)."""

    __slots__ = ("_rule", "_settings", "_sums", "_threshold", "_window")
    writes_only = True

    def __init__(self, rule: Rule, settings: Settings, state: StateSettings, window: float, threshold: int) -> None:
        self._rule, self._settings = rule, settings
        self._window, self._threshold = window, threshold
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


class BulkWrite(Rule):
    """Counts the rows each INSERT/UPDATE/DELETE wrote (``db.response.returned_rows`` of a write: rows changed) per
    tenant and table; fires when more than ``threshold`` rows (default 50) were written within ``window_seconds``
    (default 60), then stays quiet for one window. Windowed rules only see statements with a tenant in context,
    outside ``unscoped(reason)``."""

    __slots__ = ()
    meta = RuleMeta(
        id="bulk_write",
        title="Bulk write",
        summary="> 50 rows written per minute, per tenant and table",
        severity="high",
        categories=("abuse", "data-integrity"),
        remediation="Check that the mass change is intended (a missing `WHERE`, a loop gone wrong, a compromised "
        "account); run planned bulk changes as a job inside `unscoped(reason)` or raise the threshold.",
        stages=("stream",),
        settings=BulkWriteSettings,
        verdict="the rows each write changed (`db.response.returned_rows`), per tenant and main table",
    )

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        own = settings.rules.bulk_write
        return RowsWritten(self, settings, state, own.window_seconds, own.threshold)


RULE = BulkWrite()
