"""repeated_violations: high/critical findings piling up per tenant and user."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from processor_support import CLEAN, UNFILTERED, Clock, Pipeline, findings_of, rules_of

from tenantwatch import attributes as A


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
