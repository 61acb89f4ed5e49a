"""watch(): a tool hears every tenantwatch span processor of the process, made before or after it started watching,
and a watcher that fails never breaks the processor being created."""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanProcessor

from tenantwatch.config import load_settings
from tenantwatch.core.handover import FindingSource, watch
from tenantwatch.processors import TenantwatchSpanProcessor


def _processor() -> TenantwatchSpanProcessor:
    return TenantwatchSpanProcessor(SpanProcessor(), settings=load_settings(environ={}))


def test_watch_replays_existing_processors_and_hears_new_ones() -> None:
    before = _processor()
    seen: list[FindingSource] = []
    unwatch = watch(seen.append)
    try:
        assert before in seen
        after = _processor()
        assert seen[-1] is after
    finally:
        unwatch()
    _processor()
    assert seen[-1] is after  # no longer watching


def test_a_failing_watcher_does_not_break_the_processor_nor_the_other_watchers() -> None:
    def broken(source: FindingSource) -> None:
        raise RuntimeError("a bug in a tool")

    seen: list[FindingSource] = []
    stops = [watch(broken), watch(seen.append)]
    try:
        processor = _processor()  # does not raise
    finally:
        for stop in stops:
            stop()
    assert seen[-1] is processor
