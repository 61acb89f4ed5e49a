"""rapid_write: rows written per second, per tenant and table."""

from __future__ import annotations

from processor_support import Clock, detectors, fired
from rule_support import WRITE


def test_rapid_write_fires_over_10_rows_a_second_not_at_10() -> None:
    clock = Clock()
    d = detectors(clock, bulk_write={"enabled": False})
    found: list[str] = []
    for _ in range(10):
        found += fired(d.observe(WRITE))
        clock.advance(0.09)
    assert found == []  # 10 rows within 0.9 s
    found += fired(d.observe(WRITE))
    assert found == ["rapid_write"]


def test_rapid_write_spread_over_time_does_not_fire() -> None:
    clock = Clock()
    d = detectors(clock, bulk_write={"enabled": False})
    for _ in range(100):
        assert fired(d.observe(WRITE)) == []
        clock.advance(0.2)  # 5 rows a second
