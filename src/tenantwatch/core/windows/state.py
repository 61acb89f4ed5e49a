"""Bounded per-key state with TTL eviction: the memory under every windowed detector.

A detector keeps one small object per key (tenant, tenant+table, user, ...). :class:`KeyedState` holds at most
``max_keys`` of them, drops a key that has not been touched for ``ttl`` seconds, and, when full, drops the least
recently used key first. Work per access is O(1) amortized: expired keys are found from the old end of an ordered dict.
Not thread-safe on its own: the detectors hold a lock around it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["KeyedState"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class KeyedState(Generic[K, V]):
    """key -> value, at most ``max_keys`` entries, each forgotten ``ttl`` seconds after its last use."""

    __slots__ = ("_entries", "_factory", "_max_keys", "_ttl", "evicted")

    def __init__(self, factory: Callable[[], V], *, max_keys: int, ttl: float) -> None:
        self._factory = factory
        self._max_keys = max_keys
        self._ttl = ttl
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.evicted = 0
        """Keys dropped so far (expired or pushed out by the size bound)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K, now: float) -> V:
        """The value of ``key`` (created when missing), marked as used at ``now``."""
        self._expire(now)
        entry = self._entries.pop(key, None)
        value = self._factory() if entry is None else entry[1]
        if entry is None and len(self._entries) >= self._max_keys:
            self._entries.popitem(last=False)
            self.evicted += 1
        self._entries[key] = (now, value)
        return value

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self._ttl
        while entries:
            key, (used, _) = next(iter(entries.items()))
            if used >= horizon:
                return
            del entries[key]
            self.evicted += 1
