"""bulk_write: rows written per minute, per tenant and table."""

from __future__ import annotations

from dataclasses import replace

from processor_support import CLEAN, Clock, detectors, fired
from rule_support import WRITE


def test_bulk_write_fires_just_over_50_rows_a_minute_not_at_50() -> None:
    clock = Clock()
    d = detectors(clock, rapid_write={"enabled": False})
    found: list[str] = []
    for _ in range(10):
        found += fired(d.observe(replace(WRITE, returned_rows=5)))
        clock.advance(5)
    assert found == []  # exactly 50 rows within the minute
    found += fired(d.observe(replace(WRITE, returned_rows=1)))
    assert found == ["bulk_write"]


def test_bulk_write_window_slides_and_fires_once_per_window() -> None:
    clock = Clock()
    d = detectors(clock, rapid_write={"enabled": False})
    assert fired(d.observe(replace(WRITE, returned_rows=40))) == []
    clock.advance(61)  # the first 40 rows left the window
    assert fired(d.observe(replace(WRITE, returned_rows=40))) == []
    assert fired(d.observe(replace(WRITE, returned_rows=11))) == ["bulk_write"]
    assert fired(d.observe(replace(WRITE, returned_rows=100))) == []  # quiet for the rest of the window
    clock.advance(61)
    assert fired(d.observe(replace(WRITE, returned_rows=51))) == ["bulk_write"]


def test_bulk_write_is_per_tenant_and_table_and_ignores_reads() -> None:
    clock = Clock()
    d = detectors(clock, rapid_write={"enabled": False})
    assert fired(d.observe(replace(WRITE, returned_rows=30))) == []
    assert fired(d.observe(replace(WRITE, returned_rows=30, tenant_id="globex"))) == []
    assert fired(d.observe(replace(WRITE, returned_rows=30, main_table="key_results"))) == []
    assert fired(d.observe(replace(CLEAN, returned_rows=5000))) == []


def test_write_detectors_configurable_thresholds() -> None:
    clock = Clock()
    d = detectors(clock, bulk_write={"threshold": 3, "window_seconds": 10}, rapid_write={"enabled": False})
    assert fired(d.observe(replace(WRITE, returned_rows=3))) == []
    assert fired(d.observe(replace(WRITE, returned_rows=1))) == ["bulk_write"]
