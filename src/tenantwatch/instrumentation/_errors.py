"""The one exception the instrumentation raises on purpose, and the guard for everything else.

Everything tenantwatch does inside SQLAlchemy's hooks runs in a guard: an internal error is logged (rate-limited, so
a broken hook cannot flood the application's logs) and swallowed, and the application's query carries on. The only
exception that reaches the application is :class:`TenantIsolationError`, raised in ``enforce`` mode before a
statement that breaks a critical rule reaches the database.
"""

from __future__ import annotations

import logging
import threading
import time

from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts

__all__ = ["TenantIsolationError", "log_internal_error"]

logger = logging.getLogger(__name__)

_LOG_INTERVAL_S = 60.0
"""Each distinct internal error is logged at most once per minute."""

_last_logged: dict[str, float] = {}
_held_back: dict[str, int] = {}
_lock = threading.Lock()


class TenantIsolationError(Exception):
    """Raised in ``enforce`` mode instead of running a statement that an enforced rule flags.

    The statement never reached the database. ``findings`` holds what the rules listed in ``enforce.rules`` found
    (not suppressed),
    ``facts`` what tenantwatch knew about the statement (tables, tenant filter verdict, tenant values, code
    location, tenant context).
    """

    def __init__(self, findings: tuple[Finding, ...], facts: SpanFacts) -> None:
        self.findings = findings
        self.facts = facts
        details = "; ".join(f"{f.rule} ({f.severity}): {f.message}" for f in findings)
        where = f" at {facts.code_location}" if facts.code_location else ""
        super().__init__(f"tenantwatch blocked a {facts.operation or 'statement'}{where}: {details}")

    def __reduce__(self) -> tuple[type[TenantIsolationError], tuple[tuple[Finding, ...], SpanFacts]]:
        return (type(self), (self.findings, self.facts))


def log_internal_error(where: str, *, outcome: str = "ignored") -> None:
    """Log the exception being handled, at most once per minute per ``where``, with a count of the ones held back.

    ``outcome`` says what happens instead (default ``ignored``). Call from an ``except`` block. Never raises.
    """
    try:
        now = time.monotonic()
        with _lock:
            last = _last_logged.get(where)
            if last is not None and now - last < _LOG_INTERVAL_S:
                _held_back[where] = _held_back.get(where, 0) + 1
                return
            _last_logged[where] = now
            held_back = _held_back.pop(where, 0)
        suffix = f" ({held_back} more since last logged)" if held_back else ""
        logger.warning("tenantwatch: internal error in %s, %s%s", where, outcome, suffix, exc_info=True)
    except Exception:  # logging must never break the application either
        pass
