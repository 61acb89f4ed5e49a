"""The one guard for "never raise into the host", and the one bounded, rate-limited log of internal errors.

Everything tenantwatch runs inside the host's code paths (SQLAlchemy and ASGI hooks, span processor callbacks,
finding listeners, exporter workers, request observers) runs inside :class:`guard`, as a context manager or a
decorator, after sentry-python's ``capture_internal_exceptions``::

    with guard("after_cursor_execute"):
        ...                                   # an internal error is logged (rate-limited) and swallowed

    with guard("RLS assist") as attempt:
        previous = read_setting(conn)
    if attempt.failed:
        return                                # what to do instead is the caller's business

    @guard("checkin")
    def checkin(self, dbapi_connection, connection_record): ...

Only :class:`Exception` is swallowed (``KeyboardInterrupt``, ``SystemExit`` and ``asyncio.CancelledError`` pass), and
never a :class:`DeliberateError`: the exceptions tenantwatch raises into the host on purpose (enforce mode's
``TenantIsolationError``) go through every guard unchanged.

The log is one :class:`RateLimitedLog` for the whole process (:data:`INTERNAL_ERRORS`): each ``where`` is logged at
most once per interval (60 s), with a count of the repeats held back since; it remembers at most ``max_keys`` keys,
and past that all new keys share one overflow key, so even a flood of distinct errors logs a bounded number of lines.
"""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Final, ParamSpec, TypeVar

__all__ = ["INTERNAL_ERRORS", "DeliberateError", "RateLimitedLog", "guard", "log_internal_error"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

LOG_INTERVAL_S: Final = 60.0
"""Each distinct internal error (by ``where``) is logged at most once per minute."""

MAX_KEYS: Final = 256
"""How many distinct ``where`` keys the log remembers (the code has a few dozen guarded places)."""

OVERFLOW_KEY: Final = "(other internal errors)"
"""The key every new ``where`` shares once :data:`MAX_KEYS` keys are remembered and none has expired."""

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class DeliberateError(Exception):
    """Base of the exceptions tenantwatch raises into the host on purpose; no :class:`guard` swallows them."""


class RateLimitedLog:
    """Logs each ``key`` at most once per ``interval`` seconds, with the count of repeats held back in between.

    Bounded: at most ``max_keys`` keys are remembered (expired ones are forgotten first); past that, new keys share
    :data:`OVERFLOW_KEY`. Thread-safe; :meth:`emit` never raises.
    """

    def __init__(
        self,
        *,
        interval: float = LOG_INTERVAL_S,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys: expected at least 1, got {max_keys}")
        self._interval = interval
        self._max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, list[float | int]] = OrderedDict()
        """key -> [last logged (clock seconds), repeats held back since], oldest first."""

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every key (tests start from a clean slate)."""
        with self._lock:
            self._entries.clear()

    def held_back(self, key: str) -> int:
        """Repeats of ``key`` not logged since it last was."""
        with self._lock:
            entry = self._entries.get(key)
            return int(entry[1]) if entry is not None else 0

    def admit(self, key: str) -> tuple[bool, int]:
        """Whether ``key`` may be logged now, and how many repeats were held back before this one."""
        now = self._clock()
        with self._lock:
            entries = self._entries
            entry = entries.get(key)
            if entry is None and len(entries) >= self._max_keys:
                self._forget_expired(now)
                if len(entries) >= self._max_keys:
                    key = OVERFLOW_KEY
                    entry = entries.get(key)
                    if entry is None:  # make room for the shared key: the oldest goes
                        entries.popitem(last=False)
            if entry is not None and now - entry[0] < self._interval:
                entry[1] += 1
                return False, 0
            held = int(entry[1]) if entry is not None else 0
            entries[key] = [now, 0]
            entries.move_to_end(key)
            return True, held

    def _forget_expired(self, now: float) -> None:
        expired = [k for k, (last, _) in self._entries.items() if now - last >= self._interval]
        for k in expired:
            del self._entries[k]

    def emit(
        self,
        key: str,
        message: str,
        *args: object,
        logger: logging.Logger = logger,
        level: int = logging.WARNING,
        exc_info: _ExcInfo | bool = True,
    ) -> bool:
        """Log ``message % args`` on ``logger`` unless ``key`` was logged within the interval; True if it was logged.

        A line logged after held-back repeats ends with ``(N more since last logged)``. Never raises.
        """
        try:
            logged, held = self.admit(key)
            if not logged:
                return False
            if held:
                message = f"{message} (%d more since last logged)"
                args = (*args, held)
            logger.log(level, message, *args, exc_info=exc_info)
            return True
        except Exception:  # the one place an internal error is dropped unlogged: logging itself failed
            return False


INTERNAL_ERRORS: Final = RateLimitedLog()
"""The process's one log of internal errors: every guard writes to it."""


def log_internal_error(
    where: str,
    *,
    outcome: str = "ignored",
    logger: logging.Logger = logger,
    level: int = logging.WARNING,
    exc_info: _ExcInfo | bool = True,
) -> None:
    """Log the exception being handled (or ``exc_info``) as ``tenantwatch: internal error in <where>, <outcome>``,
    rate-limited per ``where``. For ``except`` blocks that do more than log; everything else uses :class:`guard`.
    Never raises."""
    INTERNAL_ERRORS.emit(
        where, "tenantwatch: internal error in %s, %s", where, outcome, logger=logger, level=level, exc_info=exc_info
    )


class guard:  # noqa: N801 - reads as a statement: ``with guard("checkin"):``
    """Swallow and log (rate-limited) any :class:`Exception` but a :class:`DeliberateError` raised in the block.

    ``where`` names the guarded place (the rate-limit key and the log line), ``outcome`` what happens instead
    (default ``ignored``), ``logger`` / ``level`` where and how loud the line goes. After the block, ``failed`` says
    whether it was cut short. As a decorator (of a plain function, not a coroutine function) the call returns
    ``None`` when the body failed.
    """

    __slots__ = ("failed", "level", "logger", "outcome", "where")

    def __init__(
        self,
        where: str,
        *,
        outcome: str = "ignored",
        logger: logging.Logger = logger,
        level: int = logging.WARNING,
    ) -> None:
        self.where = where
        self.outcome = outcome
        self.logger = logger
        self.level = level
        self.failed = False

    def __enter__(self) -> guard:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc_type is None or exc is None:
            return False
        if not isinstance(exc, Exception) or isinstance(exc, DeliberateError):
            return False
        self.failed = True
        log_internal_error(
            self.where, outcome=self.outcome, logger=self.logger, level=self.level, exc_info=(exc_type, exc, tb)
        )
        return True

    def __call__(self, function: Callable[P, R]) -> Callable[P, R | None]:
        if inspect.iscoroutinefunction(function):
            raise TypeError(f"guard cannot decorate the coroutine function {function.__qualname__}; use `with guard`")
        where, outcome, log, level = self.where, self.outcome, self.logger, self.level

        @functools.wraps(function)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | None:
            with guard(where, outcome=outcome, logger=log, level=level):  # a fresh guard per call: thread-safe
                return function(*args, **kwargs)
            return None

        return guarded
