"""A small thread-safe LRU mapping bounded in entries and in bytes (the analysis caches)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["LRUCache"]

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """At most ``maxsize`` entries and ``maxbytes`` bytes (as weighed by the caller at :meth:`put`); the least
    recently used entries go first. An entry heavier than ``maxbytes`` is not stored. Every method takes one short
    lock."""

    __slots__ = ("_data", "_last", "_lock", "bytes", "hits", "maxbytes", "maxsize", "misses")

    def __init__(self, maxsize: int, maxbytes: int | None = None) -> None:
        if maxsize <= 0:
            raise ValueError("maxsize must be greater than 0")
        if maxbytes is not None and maxbytes <= 0:
            raise ValueError("maxbytes must be greater than 0")
        self.maxsize = maxsize
        self.maxbytes = maxbytes
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0
        """The weight of the entries held now."""
        self.hits = 0
        self.misses = 0
        self._last: object = None
        """The key made most recently used last (by :meth:`get` or :meth:`put`)."""

    def get(self, key: K) -> V | None:
        """The value for ``key`` (now most recently used), or ``None``."""
        entry = self._data.get(key)  # one dict look-up, atomic under the GIL
        if entry is None:
            with self._lock:
                self.misses += 1
            return None
        if key is not self._last:
            # A hit on another key than the last one: it becomes the most recently used. The same key again (a
            # statement run in a loop, an ORM session per request doing the same thing) is already there.
            with self._lock:
                if key in self._data:  # not evicted meanwhile
                    self._data.move_to_end(key)
                self._last = key
        self.hits += 1
        return entry[0]

    def put(self, key: K, value: V, weight: int = 0) -> None:
        """Store ``value`` weighing ``weight`` bytes, evicting least recently used entries while over a bound."""
        if self.maxbytes is not None and weight > self.maxbytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._data[key] = (value, weight)
            self._last = key
            self.bytes += weight
            data = self._data
            while len(data) > self.maxsize or (self.maxbytes is not None and self.bytes > self.maxbytes):
                _key, (_value, dropped) = data.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._last = None
            self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data
