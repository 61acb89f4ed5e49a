"""off_hours_write: writes in the configured off hours."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from processor_support import CLEAN, Clock, detectors, fired
from rule_support import WRITE


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [
        (21, 59, []),
        (22, 0, ["off_hours_write"]),
        (3, 0, ["off_hours_write"]),
        (5, 59, ["off_hours_write"]),
        (6, 0, []),
        (12, 0, []),
    ],
)
def test_off_hours_window_wraps_midnight(hour: int, minute: int, expected: list[str]) -> None:
    clock = Clock(datetime(2026, 11, 24, hour, minute, tzinfo=UTC).timestamp())
    d = detectors(
        clock,
        off_hours_write={"enabled": True},
        bulk_write={"enabled": False},
        rapid_write={"enabled": False},
        query_rate_spike={"enabled": False},
    )
    assert fired(d.observe(WRITE)) == expected
    assert fired(d.observe(CLEAN)) == []  # reads are never off-hours writes


def test_off_hours_uses_the_configured_time_zone() -> None:
    # 23:30 UTC is 08:30 in Tokyo: business hours there
    clock = Clock(datetime(2026, 11, 24, 23, 30, tzinfo=UTC).timestamp())
    rules = {
        "off_hours_write": {"enabled": True, "start": "20:00", "end": "07:00", "timezone": "Asia/Tokyo"},
        "bulk_write": {"enabled": False},
        "rapid_write": {"enabled": False},
    }
    assert fired(detectors(clock, **rules).observe(WRITE)) == []
    clock.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()  # 21:00 in Tokyo
    assert fired(detectors(clock, **rules).observe(WRITE)) == ["off_hours_write"]


def test_off_hours_is_off_by_default() -> None:
    clock = Clock(datetime(2026, 11, 24, 3, 0, tzinfo=UTC).timestamp())
    assert "off_hours_write" not in fired(detectors(clock).observe(WRITE))
