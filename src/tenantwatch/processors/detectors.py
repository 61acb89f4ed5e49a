"""The windowed detectors: what one statement cannot show, the stream of statements can.

:class:`Detectors` opens the window of every enabled windowed rule (``stream`` and ``findings`` stages of
:mod:`tenantwatch.core.rule`; the rules themselves live in ``tenantwatch/rules/<id>.py``) with the bounds of
``Settings.state`` (at most ``max_keys`` keys per key kind, forgotten after ``ttl_seconds`` idle) and an injectable
clock. The span processor calls :meth:`Detectors.observe` for every judged db span and :meth:`Detectors.after` with
the findings it kept. Both return new findings; suppressions apply to them like to any other. Thread-safe: one lock,
held for a few dictionary operations per span.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from tenantwatch.config import Settings
from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import Window, rules_for
from tenantwatch.facts import SpanFacts

__all__ = ["DETECTOR_IDS", "Detectors"]

DETECTOR_IDS: tuple[str, ...] = tuple(dict.fromkeys(rule.id for rule in (*rules_for("stream"), *rules_for("findings"))))
"""The windowed rules, in evaluation order."""


class Detectors:
    """The windows of the enabled windowed rules (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        state = settings.state
        self._windows: dict[str, Window] = {
            rule.id: rule.open_window(settings, state)
            for rule in (*rules_for("stream"), *rules_for("findings"))
            if settings.enabled(rule.id)
        }
        self._stream = tuple(self._windows[rule.id] for rule in rules_for("stream") if rule.id in self._windows)
        self._stream_reads = tuple(window for window in self._stream if not window.writes_only)
        """The stream windows that can fire on a statement that is not a write (``Window.writes_only``)."""
        self._findings = tuple(self._windows[rule.id] for rule in rules_for("findings") if rule.id in self._windows)
        self.active = bool(self._stream)
        """False when no per-statement detector is on: the processor then skips :meth:`observe` entirely."""
        self.watches_findings = bool(self._findings)

    def state_size(self) -> int:
        """Keys held across every detector (bounded by ``state.max_keys`` per key kind)."""
        return sum(window.size() for window in self._windows.values())

    def sizes(self) -> dict[str, int]:
        """Keys held per enabled windowed rule."""
        return {rule_id: window.size() for rule_id, window in self._windows.items()}

    def observe(self, facts: SpanFacts) -> list[Finding]:
        """Stage ``stream``: one judged db statement. Windowed rules see only statements with a tenant in context,
        outside ``unscoped(reason)``."""
        if not self.active or facts.unscoped_reason is not None or facts.tenant_id is None:
            return []
        windows = self._stream if facts.is_write else self._stream_reads
        if not windows:
            return []
        now = self._clock()
        found: list[Finding] = []
        lock = self._lock
        lock.acquire()  # acquire/try/finally: what ``with`` does, at half its cost (every judged statement)
        try:
            for window in windows:
                found.extend(window.observe(facts, now))
        finally:
            lock.release()
        return found

    def after(self, kept: Sequence[Finding], facts: SpanFacts) -> list[Finding]:
        """Stage ``findings``: the findings the processor kept for one span (db or server)."""
        if not self.watches_findings or not kept:
            return []
        now = self._clock()
        found: list[Finding] = []
        with self._lock:
            for window in self._findings:
                found.extend(window.after(kept, facts, now))
        return found
