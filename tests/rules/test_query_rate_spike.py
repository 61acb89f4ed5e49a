"""query_rate_spike: a tenant's query rate against its own baseline, on a deterministic clock."""

from __future__ import annotations

from dataclasses import replace

from processor_support import CLEAN, Clock, detectors, fired

from tenantwatch.processors.detectors import Detectors


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
