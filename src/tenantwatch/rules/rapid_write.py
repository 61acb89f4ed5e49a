"""rapid_write: a tenant writes more rows to one table within a second than the threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.rule import Rule, RuleMeta, RuleSettings, Window
from tenantwatch.rules.bulk_write import RowsWritten

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings

__all__ = ["RULE", "RapidWrite", "RapidWriteSettings"]


class RapidWriteSettings(RuleSettings):
    """``rules.rapid_write``."""

    threshold: int = Field(default=10, gt=0, description="rows written per tenant and table within the window")
    window_seconds: float = Field(default=1.0, gt=0, description="the sliding window")


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
        own = settings.rules.rapid_write
        return RowsWritten(self, settings, state, own.window_seconds, own.threshold)


RULE = RapidWrite()
