"""A sliding-window sum that fires once per window: the counting core of the write and violation detectors."""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingSum"]


class SlidingSum:
    """Amounts added within the last ``window`` seconds. :meth:`add` says when the sum first goes over a threshold.

    After firing, the window starts afresh and stays quiet for one window, so a storm produces one finding per
    window, not one per event. Memory is bounded: every kept event carries at least 1, and the events are cleared as
    soon as the sum passes the threshold, so at most ``threshold + 1`` events are held.
    """

    __slots__ = ("_events", "_quiet_until", "_total")

    def __init__(self) -> None:
        self._events: deque[tuple[float, int]] = deque()
        self._total = 0
        self._quiet_until = float("-inf")

    def __len__(self) -> int:
        return len(self._events)

    def add(self, now: float, amount: int, *, window: float, threshold: int, inclusive: bool = False) -> int | None:
        """Add ``amount`` at ``now``; return the window's sum when it passes ``threshold`` (``>``, or ``>=`` when
        ``inclusive``) and the key is not quiet, else ``None``."""
        if amount <= 0:
            return None
        events = self._events
        horizon = now - window
        while events and events[0][0] <= horizon:
            self._total -= events.popleft()[1]
        events.append((now, amount))
        self._total += amount
        total = self._total
        over = total >= threshold if inclusive else total > threshold
        if not over:
            return None
        events.clear()
        self._total = 0
        if now < self._quiet_until:
            return None
        self._quiet_until = now + window
        return total
