"""off_hours_write: a write between ``start`` and ``end``, local time in ``timezone`` (may wrap midnight)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from tenantwatch.core.findings import Finding, key_fingerprint
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, Window

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "OffHours", "OffHoursWrite", "OffHoursWriteSettings"]


class OffHoursWriteSettings(RuleSettings):
    """``rules.off_hours_write`` (off by default: business hours are site-specific)."""

    start: str = Field(default="22:00", description="HH:MM local time the off hours begin")
    end: str = Field(default="06:00", description="HH:MM local time the off hours end (may be past midnight)")
    timezone: str = Field(default="UTC", description="IANA time zone of start and end, e.g. Europe/Berlin")

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a HH:MM time")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class OffHours:
    """Decides whether a moment falls in the configured off hours."""

    __slots__ = ("_end", "_start", "_zone")

    def __init__(self, start: str = "22:00", end: str = "06:00", timezone: str = "UTC") -> None:
        self._start = _clock(start)
        self._end = _clock(end)
        self._zone = ZoneInfo(timezone)

    def local_time(self, epoch_seconds: float) -> time:
        return datetime.fromtimestamp(epoch_seconds, UTC).astimezone(self._zone).time()

    def contains(self, epoch_seconds: float) -> bool:
        now = self.local_time(epoch_seconds)
        if self._start <= self._end:
            return self._start <= now < self._end
        return now >= self._start or now < self._end


class _OffHoursWindow(Window):
    """Stateless: the clock alone decides."""

    __slots__ = ("_hours", "_rule", "_settings")
    writes_only = True

    def __init__(self, rule: Rule, settings: Settings) -> None:
        own = settings.rules.off_hours_write
        self._rule, self._settings = rule, settings
        self._hours = OffHours(own.start, own.end, own.timezone)

    def observe(self, facts: SpanFacts, now: float) -> Sequence[Finding]:
        if not facts.is_write or not self._hours.contains(now):
            return NO_FINDINGS
        tenant = facts.tenant_id
        local = self._hours.local_time(now).strftime("%H:%M")
        message = f"{facts.operation} on {facts.main_table} by tenant {tenant!r} at {local}, outside business hours"
        fingerprint = key_fingerprint(self._rule.id, tenant, facts.main_table, facts.statement_fingerprint)
        return (self._rule.finding(facts, self._settings, message, table=facts.main_table, fingerprint=fingerprint),)


class OffHoursWrite(Rule):
    """Fires on every INSERT/UPDATE/DELETE that runs between ``start`` and ``end`` (local time in ``timezone``;
    the span may wrap midnight). Off by default. Windowed rules only see statements with a tenant in context,
    outside ``unscoped(reason)``."""

    __slots__ = ()
    meta = RuleMeta(
        id="off_hours_write",
        title="Off-hours write",
        summary="a write in configured off hours (off by default)",
        severity="warning",
        categories=("abuse",),
        remediation="Confirm the change was planned; schedule maintenance jobs inside `unscoped(reason)` or adjust "
        "`start`/`end` to your business hours.",
        stages=("stream",),
        settings=OffHoursWriteSettings,
        enabled=False,
        verdict="the operation of the statement and the wall clock at the end of its span",
    )

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        return _OffHoursWindow(self, settings)


RULE = OffHoursWrite()
