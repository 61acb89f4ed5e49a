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

    __slots__ = ("_entries", "_factory", "_max_keys", "_next_expiry", "_ttl", "evicted")

    def __init__(self, factory: Callable[[], V], *, max_keys: int, ttl: float) -> None:
        self._factory = factory
        self._max_keys = max_keys
        self._ttl = ttl
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._next_expiry = float("inf")
        """No key expires before this time: the oldest key's last use + ``ttl`` when last looked, lowered by a use at
        an earlier time. Touching or dropping the oldest key leaves a newer one oldest (the clock moves forward), so
        it stays a lower bound, and most accesses skip the look at the old end."""
        self.evicted = 0
        """Keys dropped so far (expired or pushed out by the size bound)."""

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K, now: float) -> V:
        """The value of ``key`` (created when missing), marked as used at ``now``."""
        if now > self._next_expiry:
            self._expire(now)
        entries = self._entries
        entry = entries.get(key)
        expires = now + self._ttl
        if entry is None:
            value = self._factory()
            if len(entries) >= self._max_keys:
                entries.popitem(last=False)
                self.evicted += 1
        else:
            value = entry[1]
            entries.move_to_end(key)
        entries[key] = (now, value)
        if expires < self._next_expiry:  # noqa: PLR1730 - hot path: a comparison, not a call to min()
            self._next_expiry = expires
        return value

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self._ttl
        while entries:
            key, (used, _) = next(iter(entries.items()))
            if used >= horizon:
                self._next_expiry = used + self._ttl
                return
            del entries[key]
            self.evicted += 1
        self._next_expiry = float("inf")
