"""The windowed detectors, the log cooldown and stale tenant context, on a deterministic clock."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.trace import SpanKind
from processor_support import CLEAN, UNFILTERED, Pipeline, findings_of, rules_of

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.windows import Cooldown, Detectors, KeyedState

WRITE = replace(CLEAN, operation="UPDATE", returned_rows=1, statement_fingerprint="f00dfeed000000aa")
NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def detectors(clock: Clock, **rules: dict[str, Any]) -> Detectors:
    return Detectors(load_settings(environ={}, rules=rules), clock)


def fired(found: list[Any]) -> list[str]:
    return [f.rule for f in found]


# --- bulk_write / rapid_write ------------------------------------------------------------------------------------


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


def test_write_detectors_configurable_thresholds() -> None:
    clock = Clock()
    d = detectors(clock, bulk_write={"threshold": 3, "window_seconds": 10}, rapid_write={"enabled": False})
    assert fired(d.observe(replace(WRITE, returned_rows=3))) == []
    assert fired(d.observe(replace(WRITE, returned_rows=1))) == ["bulk_write"]


# --- query_rate_spike --------------------------------------------------------------------------------------------


def run_windows(d: Detectors, clock: Clock, per_window: list[int], window: float = 10.0) -> list[list[str]]:
    """Observe ``n`` queries spread over each window; the rules fired, per window."""
    out = []
    for count in per_window:
        start = clock.now
        found: list[str] = []
        for i in range(count):
            clock.now = start + window * i / max(count, 1)
            found += fired(d.observe(CLEAN))
        clock.now = start + window
        out.append(found)
    return out


def test_rate_spike_needs_warmup_even_for_a_huge_rate() -> None:
    clock = Clock()
    d = detectors(clock)
    assert run_windows(d, clock, [20, 20, 20, 20, 20, 500]) == [[], [], [], [], [], []]  # only 5 windows closed


def test_rate_spike_fires_after_warmup_once_per_window() -> None:
    clock = Clock()
    d = detectors(clock)
    result = run_windows(d, clock, [20] * 6 + [500, 20])
    assert result[:6] == [[]] * 6
    assert result[6] == ["query_rate_spike"]  # once, though the window went on far above the baseline
    assert result[7] == []


def test_rate_spike_just_under_and_over_the_deviation_bound() -> None:
    clock = Clock()
    d = detectors(clock, query_rate_spike={"threshold": 1})
    # a flat baseline of 100 per window: deviation floor = 10 % of the mean = 10, bound = 100 + 4 * 10 = 140
    assert run_windows(d, clock, [100] * 8 + [140]) == [[]] * 9
    clock2 = Clock()
    d2 = detectors(clock2, query_rate_spike={"threshold": 1})
    assert run_windows(d2, clock2, [100] * 8 + [141])[-1] == ["query_rate_spike"]


def test_rate_spike_needs_the_minimum_count() -> None:
    clock = Clock()
    d = detectors(clock)
    assert run_windows(d, clock, [1] * 8 + [40]) == [[]] * 9  # 40 times the baseline, but under 50 queries


def test_rate_spike_baseline_is_per_tenant() -> None:
    clock = Clock()
    d = detectors(clock)
    run_windows(d, clock, [200] * 8)
    found: list[str] = []
    for _ in range(60):  # a quiet tenant's first burst: no history, so no baseline, so no spike
        found += fired(d.observe(replace(CLEAN, tenant_id="globex")))
    assert found == []


# --- repeated_violations -----------------------------------------------------------------------------------------


def test_repeated_violations_at_five_serious_findings_in_an_hour(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock)
    for _ in range(4):
        pipeline.db_span(UNFILTERED)
        clock.advance(600)
    assert [rules_of(s) for s in pipeline.spans()] == [["missing_tenant_filter"]] * 4
    pipeline.db_span(UNFILTERED)
    last = pipeline.spans()[-1]
    # the tenant and the user both reached five: one finding for each
    assert rules_of(last) == ["missing_tenant_filter", "repeated_violations", "repeated_violations"]
    messages = [str(f[A.MESSAGE]) for f in findings_of(last)][1:]
    assert messages[0].startswith("tenant 'acme' has 5 high or critical findings")
    assert messages[1].startswith("user 'u-1' has 5 high or critical findings")


def test_repeated_violations_not_when_spread_over_more_than_an_hour(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock)
    for _ in range(12):
        pipeline.db_span(UNFILTERED)
        clock.advance(901)  # four findings per hour at most
    assert all("repeated_violations" not in rules_of(s) for s in pipeline.spans())


def test_repeated_violations_ignore_warnings_and_suppressed(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock, suppressions=[{"rule": "missing_tenant_filter", "reason": "known"}])
    for _ in range(6):
        pipeline.db_span(replace(CLEAN, returned_rows=5000))  # large_result: warning
        pipeline.db_span(UNFILTERED)  # suppressed
    assert all("repeated_violations" not in rules_of(s) for s in pipeline.spans())


# --- off_hours_write ---------------------------------------------------------------------------------------------


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


# --- stale_tenant_context ----------------------------------------------------------------------------------------


def request(pipeline: Pipeline, tenant: str | None, db: SpanFacts) -> None:
    attributes = {A.TENANT_ID: tenant} if tenant else {}
    with pipeline.tracer.start_as_current_span("GET /objectives", kind=SpanKind.SERVER, attributes=attributes):
        pipeline.db_span(db)


def test_stale_context_db_span_of_another_tenant_inside_a_request(pipeline: Pipeline) -> None:
    request(pipeline, "acme", replace(CLEAN, tenant_id="globex", tenant_values=("globex",)))
    db = next(s for s in pipeline.spans() if s.kind is SpanKind.CLIENT)
    assert "stale_tenant_context" in rules_of(db)


def test_stale_context_lost_tenant_inside_a_request(pipeline: Pipeline) -> None:
    request(pipeline, "acme", replace(CLEAN, tenant_id=None, tenant_values=()))
    db = next(s for s in pipeline.spans() if s.kind is SpanKind.CLIENT)
    assert set(rules_of(db)) == {"no_tenant_context", "stale_tenant_context"}


def test_no_stale_context_for_the_same_tenant_or_outside_requests(pipeline: Pipeline) -> None:
    request(pipeline, "acme", CLEAN)
    request(pipeline, None, CLEAN)
    pipeline.db_span(replace(CLEAN, tenant_id="globex", tenant_values=("globex",)))
    assert all(rules_of(s) == [] for s in pipeline.spans())


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
    assert len(d._rates) == max_keys
    assert len(d._bulk) == max_keys
    assert len(d._rapid) == max_keys
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


def test_processor_state_bounded_through_the_pipeline(make_pipeline: Callable[..., Pipeline]) -> None:
    clock = Clock()
    pipeline = make_pipeline(clock=clock, state={"max_keys": 50})
    for i in range(500):
        pipeline.db_span(replace(WRITE, tenant_id=f"t{i}"))
    assert pipeline.processor.detectors.state_size() <= 4 * 50
