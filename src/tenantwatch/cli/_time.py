"""The time grammar every ``--since``/``--until``/``--window`` option shares: a duration (``30s``, ``15m``, ``1h``,
``7d``, ``2w``) or, for a moment, a duration back from now, ``now``, or an RFC 3339 / ISO 8601 time with a time zone.

One parser, so ``scan --since 24h`` and ``report --since 24h`` mean the same thing.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

from tenantwatch.cli._common import UsageError

__all__ = ["UNITS", "moment", "seconds"]

_DURATION: Final = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
"""Seconds per duration unit."""


def seconds(text: str, name: str) -> float:
    """A positive duration like ``30s``, ``15m``, ``1h``, ``7d`` in seconds; :class:`UsageError` naming ``name``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"{name} {text!r} is not a duration like 30s, 15m, 1h, 7d")
    value = float(match.group(1)) * UNITS[match.group(2)]
    if value <= 0:
        raise UsageError(f"{name} must be positive")
    return value


def moment(text: str, name: str, now: float) -> float:
    """Unix seconds of a duration back from ``now`` (``24h``), ``now``, or an RFC 3339 time with a time zone."""
    stripped = text.strip()
    if _DURATION.match(stripped):
        return now - seconds(stripped, name)
    if stripped.lower() == "now":
        return now
    try:
        when = datetime.fromisoformat(stripped.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{name} {text!r} is neither a duration back from now (30m, 24h, 7d) nor an RFC 3339 time "
            "(2026-12-01T00:00:00Z)"
        ) from None
    if when.tzinfo is None:
        raise UsageError(f"{name} {text!r} needs a time zone (Z or +01:00)")
    return when.timestamp()
