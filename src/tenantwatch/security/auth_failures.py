"""Auth failures (401/403) per client in a sliding window, for brute-force detection. Bounded keys with TTL."""

from __future__ import annotations

import threading
from collections import deque

from tenantwatch.core.windows.state import KeyedState

__all__ = ["AuthFailures"]


class AuthFailures:
    """``record(client, now)`` -> the client's failures within the window, this one included."""

    def __init__(self, window: float, *, max_keys: int = 10_000, max_events: int = 1000) -> None:
        self._window = window
        self._max_events = max_events
        self._clients: KeyedState[str, deque[float]] = KeyedState(deque, max_keys=max_keys, ttl=window)
        self._lock = threading.Lock()

    def record(self, client: str, now: float) -> int:
        with self._lock:
            events = self._clients.get(client, now)
            horizon = now - self._window
            while events and events[0] <= horizon:
                events.popleft()
            events.append(now)
            if len(events) > self._max_events:
                events.popleft()
            return len(events)
