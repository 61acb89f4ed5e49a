"""large_result: a read returned more rows than the threshold for its table."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, limits

__all__ = ["LargeResult", "threshold_for"]


def threshold_for(facts: SpanFacts, settings: Settings) -> tuple[int, str | None]:
    """The row threshold that applies, and the table whose ``per_table`` override set it (``None``: the default).

    The most specific override wins: the main table's, else the first other table with one. ``schema.table`` also
    matches an override written for the bare ``table``.
    """
    found = limits(settings)
    per_table = found.large_result_per_table
    if per_table:
        candidates = (facts.main_table, *facts.tables) if facts.main_table else facts.tables
        for table in candidates:
            key = table.lower()
            if key in per_table:
                return per_table[key], table
            bare = key.rpartition(".")[2]
            if bare in per_table:
                return per_table[bare], table
    return found.large_result_rows, None


class LargeResult(Rule):
    """Fires when a read's ``db.response.returned_rows`` exceeds the threshold (``rules.large_result.threshold``,
    default 1000, or ``per_table``). Applies inside ``unscoped(reason)`` too: a bulk export is still worth seeing.
    Writes are left out: their row count is rows changed, not a result (bulk writes are a rule of their own)."""

    __slots__ = ()
    id = "large_result"
    summary = "returned rows above the threshold (per-table override)"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        rows = facts.returned_rows
        if rows is None or rows <= limits(settings).large_result_floor or facts.is_write:
            return NO_FINDINGS
        threshold, override = threshold_for(facts, settings)
        if rows <= threshold:
            return NO_FINDINGS
        table = override or facts.main_table
        target = f" on {table}" if table else ""
        source = f"threshold for {override}" if override else "threshold"
        message = f"{facts.operation or 'statement'}{target} returned {rows} rows ({source} {threshold})"
        return (self.finding(facts, settings, message, table=table),)
