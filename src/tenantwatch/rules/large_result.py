"""large_result: a read returned more rows than the threshold for its table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, per_settings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "LargeResult", "LargeResultSettings", "threshold_for"]


class LargeResultSettings(RuleSettings):
    """``rules.large_result``."""

    threshold: int = Field(default=1000, gt=0, description="rows (env TENANTWATCH_LARGE_RESULT_ROWS)")
    per_table: dict[str, int] = Field(
        default_factory=dict, description="rows per table (`schema.table` or bare `table`), overriding `threshold`"
    )

    @field_validator("per_table")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for table, rows in value.items():
            if rows <= 0:
                raise ValueError(f"{table}: threshold must be greater than 0")
        return {table.lower(): rows for table, rows in value.items()}


@per_settings
def _floor(settings: Settings) -> int:
    """The smallest row threshold of any table: at or below it, ``large_result`` cannot fire."""
    own = settings.rules.large_result
    return min((own.threshold, *own.per_table.values()))


def threshold_for(facts: SpanFacts, settings: Settings) -> tuple[int, str | None]:
    """The row threshold that applies, and the table whose ``per_table`` override set it (``None``: the default).

    The most specific override wins: the main table's, else the first other table with one. ``schema.table`` also
    matches an override written for the bare ``table``.
    """
    own = settings.rules.large_result
    per_table = own.per_table
    if per_table:
        candidates = (facts.main_table, *facts.tables) if facts.main_table else facts.tables
        for table in candidates:
            key = table.lower()
            if key in per_table:
                return per_table[key], table
            bare = key.rpartition(".")[2]
            if bare in per_table:
                return per_table[bare], table
    return own.threshold, None


class LargeResult(Rule):
    """Fires when a read's ``db.response.returned_rows`` exceeds the threshold (``rules.large_result.threshold``,
    default 1000, or ``per_table``). Applies inside ``unscoped(reason)`` too: a bulk export is still worth seeing.
    Writes are left out: their row count is rows changed, not a result (bulk writes are a rule of their own)."""

    __slots__ = ()
    meta = RuleMeta(
        id="large_result",
        title="Large result",
        summary="returned rows above the threshold (per-table override)",
        severity="warning",
        categories=("performance", "exfiltration"),
        remediation="Paginate (`LIMIT` with keyset or offset), stream to a job instead of a request, or raise the "
        "table's threshold in `rules.large_result.per_table` when the size is expected.",
        stages=("statement",),
        settings=LargeResultSettings,
        verdict="the exact row count `db.response.returned_rows` (counted by the instrumentation, see "
        "docs/row-counts.md)",
        needs=("returned_rows",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        rows = facts.returned_rows
        if rows is None or rows <= _floor(settings) or facts.is_write:
            return NO_FINDINGS
        threshold, override = threshold_for(facts, settings)
        if rows <= threshold:
            return NO_FINDINGS
        table = override or facts.main_table
        target = f" on {table}" if table else ""
        source = f"threshold for {override}" if override else "threshold"
        message = f"{facts.operation or 'statement'}{target} returned {rows} rows ({source} {threshold})"
        return (self.finding(facts, settings, message, table=table),)


RULE = LargeResult()
