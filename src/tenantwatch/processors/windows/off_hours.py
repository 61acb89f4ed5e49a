"""``off_hours_write``: a write between ``start`` and ``end``, local time in ``timezone`` (may wrap midnight)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

__all__ = ["OffHours"]


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
