"""Cooldown and dedupe of finding log records: a storm of one finding stays one record per window, plus a count.

Spans always carry every finding and the ``tenantwatch.findings`` counter counts every finding; only the log records
(which become Sentry issues and chat messages) are thinned. The key is (rule, fingerprint, tenant): the first
record in a window is emitted, later ones are held back and counted, and the first record after the window carries
``tenantwatch.finding.repeats`` = how many were held back.
"""

from __future__ import annotations

import threading

from tenantwatch.core.windows.state import KeyedState

__all__ = ["Cooldown"]


class _Slot:
    __slots__ = ("held", "until")

    def __init__(self) -> None:
        self.until = float("-inf")
        self.held = 0


class Cooldown:
    """Decides which finding log records to emit (bounded by ``max_keys`` keys, each forgotten after ``ttl``)."""

    def __init__(self, window: float, *, max_keys: int, ttl: float) -> None:
        self._window = window
        self._slots: KeyedState[tuple[str, str, str | None], _Slot] = KeyedState(
            _Slot, max_keys=max_keys, ttl=max(ttl, window)
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._slots)

    def admit(self, rule: str, fingerprint: str, tenant: str | None, now: float) -> int | None:
        """``None``: hold this record back. Otherwise emit it; the value is the number held back before it."""
        with self._lock:
            slot = self._slots.get((rule, fingerprint, tenant), now)
            if now < slot.until:
                slot.held += 1
                return None
            held, slot.held = slot.held, 0
            slot.until = now + self._window
            return held
