"""Rate-limited logging of internal errors: a broken rule or exporter must not flood the application's logs."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Logs each distinct ``key`` at most once per ``interval`` seconds, with a count of what was held back."""

    def __init__(self, logger: logging.Logger, *, interval: float = 60.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held_back: dict[str, int] = {}

    def exception(self, key: str, message: str, *args: object) -> None:
        """Log ``message`` with the current exception's traceback, unless ``key`` was logged recently."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._held_back[key] = self._held_back.get(key, 0) + 1
                return
            if len(self._last) >= 1024:  # bounded: keys come from rule ids and exception types, but be safe
                self._last.clear()
            self._last[key] = now
            held_back = self._held_back.pop(key, 0)
        if held_back:
            message = f"{message} (and {held_back} more times since last logged)"
        self._logger.exception(message, *args)
