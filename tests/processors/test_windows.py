"""The log cooldown and the bounded state of the windowed detectors, on a deterministic clock (each windowed rule's
own tests are in tests/rules/)."""

from __future__ import annotations

import random
import tracemalloc
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from processor_support import CLEAN, UNFILTERED, Clock, Pipeline, detectors, fired, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.core.windows.cooldown import Cooldown
from tenantwatch.core.windows.state import KeyedState

WRITE = replace(CLEAN, operation="UPDATE", returned_rows=1, statement_fingerprint="f00dfeed000000aa")


# --- cooldown / dedupe -------------------------------------------------------------------------------------------


def test_a_storm_of_one_finding_logs_once_per_window_with_the_repeat_count(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock, rules={"repeated_violations": {"enabled": False}})
    for _ in range(100):
        pipeline.db_span(UNFILTERED)
        clock.advance(0.5)  # 100 findings in 50 s, inside one 60 s window
    assert all(rules_of(s) == ["missing_tenant_filter"] for s in pipeline.spans())  # every span carries it
    counted = sum(p.value for _, p in pipeline.points(A.METRIC_FINDINGS))
    assert counted == 100  # the counter counts every finding
    records = pipeline.log_records()
    assert len(records) == 1
    assert A.FINDING_REPEATS not in (records[0].log_record.attributes or {})
    clock.advance(60)
    pipeline.db_span(UNFILTERED)
    records = pipeline.log_records()
    assert len(records) == 2
    assert records[1].log_record.attributes[A.FINDING_REPEATS] == 99


def test_cooldown_is_per_fingerprint_and_tenant_and_can_be_turned_off(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock, rules={"repeated_violations": {"enabled": False}})
    pipeline.db_span(UNFILTERED)
    pipeline.db_span(replace(UNFILTERED, tenant_id="globex"))
    pipeline.db_span(replace(UNFILTERED, statement_fingerprint="0000000000000009"))
    assert len(pipeline.log_records()) == 3
    off = make_pipeline(clock=clock, dedupe={"enabled": False}, rules={"repeated_violations": {"enabled": False}})
    for _ in range(5):
        off.db_span(UNFILTERED)
    assert len(off.log_records()) == 5


def test_cooldown_unit() -> None:
    cooldown = Cooldown(10, max_keys=2, ttl=60)
    assert cooldown.admit("r", "f", "t", 0) == 0
    assert cooldown.admit("r", "f", "t", 1) is None
    assert cooldown.admit("r", "f", "t", 9.9) is None
    assert cooldown.admit("r", "f", "t", 10) == 2
    for i in range(10):
        cooldown.admit("r", f"other{i}", "t", 11)
    assert len(cooldown) == 2


# --- bounded memory ----------------------------------------------------------------------------------------------


def test_state_stays_bounded_with_100000_tenants() -> None:
    clock = Clock()
    d = detectors(clock, off_hours_write={"enabled": False})
    tracemalloc.start()
    try:
        for i in range(100_000):
            d.observe(replace(WRITE, tenant_id=f"t{i}", user_id=f"u{i}"))
            clock.advance(0.001)
        _, peak_state = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    settings = load_settings(environ={})
    max_keys = settings.state.max_keys
    sizes = d.sizes()
    assert (sizes["query_rate_spike"], sizes["bulk_write"], sizes["rapid_write"]) == (max_keys,) * 3
    assert d.state_size() <= 4 * max_keys
    assert peak_state < 64 * 1024 * 1024  # a few hundred bytes per key, never per tenant ever seen


def test_state_expires_idle_keys() -> None:
    state: KeyedState[str, list[int]] = KeyedState(list, max_keys=10, ttl=60)
    state.get("a", 0)
    state.get("b", 30)
    state.get("c", 61)  # "a" idle for 61 s: gone
    assert "a" not in state and "b" in state and len(state) == 2
    state.get("d", 200)
    assert len(state) == 1


def test_state_keeps_and_forgets_the_same_keys_as_a_full_scan_would() -> None:
    """Expiry skips the look at the old end while no key can have expired yet; every access still sees exactly the
    keys a scan of all keys (idle > ttl: gone; full: least recently used gone) leaves."""
    rng = random.Random(13)
    state: KeyedState[int, list[int]] = KeyedState(list, max_keys=8, ttl=10)
    reference: OrderedDict[int, float] = OrderedDict()
    now = 0.0
    for _ in range(5000):
        now += rng.choice((0.0, 0.1, 0.5, 2.0, 11.0))
        key = rng.randrange(12)
        for old in [k for k, used in reference.items() if used < now - 10]:
            del reference[old]
        if key not in reference and len(reference) >= 8:
            reference.popitem(last=False)
        reference.pop(key, None)
        reference[key] = now
        state.get(key, now)
        assert sorted(k for k in range(12) if k in state) == sorted(reference), now


def test_processor_state_bounded_through_the_pipeline(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock, state={"max_keys": 50})
    for i in range(500):
        pipeline.db_span(replace(WRITE, tenant_id=f"t{i}"))
    assert pipeline.processor.detectors.state_size() <= 4 * 50


def test_windows_of_writes_are_not_asked_about_reads() -> None:
    """bulk_write, rapid_write and off_hours_write find nothing in a read: the detectors skip them for reads (a
    per-statement saving) and still feed them every write, which fires as before."""
    clock = Clock()
    found = detectors(
        clock, bulk_write={"threshold": 5}, off_hours_write={"enabled": True, "start": "00:00", "end": "23:59"}
    )
    write_windows = {type(window).__name__ for window in found._stream if window.writes_only}
    assert write_windows == {"RowsWritten", "_OffHoursWindow"}
    assert [window for window in found._stream_reads if window.writes_only] == []
    read = replace(CLEAN, returned_rows=500)
    for window in found._stream:  # the claim itself: a writes-only window never fires on a read
        if window.writes_only:
            assert list(window.observe(read, clock())) == []
    assert fired(found.observe(read)) == []
    assert {"bulk_write", "rapid_write", "off_hours_write"} <= set(
        fired(found.observe(replace(read, operation="UPDATE")))
    )
