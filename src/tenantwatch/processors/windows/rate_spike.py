"""``query_rate_spike``: a tenant's query rate far above that tenant's own baseline.

Queries are counted per tenant in fixed windows (``window_seconds``, default 10). When a window closes, its count
updates an exponentially weighted mean and mean absolute deviation of the tenant's counts (windows with no query
count as 0). A window fires once when, after ``warmup`` closed windows (default 6), its running count reaches
``threshold`` queries (default 50) and exceeds ``mean + deviations * deviation`` (default 4). The deviation has a
floor of 10 % of the mean and 1 query, so a perfectly flat baseline does not make every extra query a spike.
"""

from __future__ import annotations

__all__ = ["RateBaseline"]

_ALPHA = 0.3
"""EWMA weight of the newest window."""

_MAX_CATCH_UP = 64
"""Empty windows folded into the baseline one by one after a pause; beyond that the baseline decays at once."""


class RateBaseline:
    """One tenant's window counter and baseline."""

    __slots__ = ("count", "deviation", "fired", "mean", "seen", "window_start")

    def __init__(self) -> None:
        self.window_start: float | None = None
        self.count = 0
        self.mean = 0.0
        self.deviation = 0.0
        self.seen = 0
        """Closed windows folded into the baseline."""
        self.fired = False

    def _close(self, count: int) -> None:
        if self.seen == 0:
            self.mean = float(count)
        else:
            self.deviation = (1 - _ALPHA) * self.deviation + _ALPHA * abs(count - self.mean)
            self.mean = (1 - _ALPHA) * self.mean + _ALPHA * count
        self.seen += 1

    def observe(self, now: float, *, window: float, warmup: int, threshold: int, deviations: float) -> int | None:
        """Count one query at ``now``; return the window's count when this query makes the window a spike."""
        start = self.window_start
        if start is None:
            self.window_start = now
        elif now >= start + window:
            elapsed = int((now - start) // window)
            self._close(self.count)
            empty = elapsed - 1
            if empty > _MAX_CATCH_UP:
                self.mean *= (1 - _ALPHA) ** empty
                self.deviation *= (1 - _ALPHA) ** empty
                self.seen += empty
            else:
                for _ in range(empty):
                    self._close(0)
            self.window_start = start + elapsed * window
            self.count = 0
            self.fired = False
        self.count += 1
        if self.fired or self.seen < warmup or self.count < threshold:
            return None
        floor = max(self.deviation, 0.1 * self.mean, 1.0)
        if self.count <= self.mean + deviations * floor:
            return None
        self.fired = True
        return self.count
