"""Response actions (opt-in): refuse a client address or tenant for a while after repeated critical findings.

:class:`Blocker` counts critical findings per client and per tenant in a sliding window (``Settings.blocking``);
at ``threshold`` it blocks that key for ``block_seconds``. In memory, bounded (``max_entries``), entries expire.
Every block start is logged (WARNING) and counted; every refused request is counted by the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tenantwatch.config import BlockingSettings
from tenantwatch.core.windows.sliding import SlidingSum
from tenantwatch.core.windows.state import KeyedState

__all__ = ["Blocker"]

logger = logging.getLogger(__name__)


class Blocker:
    """Critical findings in, ``blocked(client, tenant)`` out."""

    def __init__(
        self,
        settings: BlockingSettings,
        *,
        clock: Callable[[], float],
        on_block: Callable[[str, str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        ttl = max(settings.window_seconds, settings.block_seconds)
        self._counts: KeyedState[tuple[str, str], SlidingSum] = KeyedState(
            SlidingSum, max_keys=settings.max_entries, ttl=ttl
        )
        self._until: KeyedState[tuple[str, str], list[float]] = KeyedState(
            lambda: [0.0], max_keys=settings.max_entries, ttl=settings.block_seconds
        )
        self._lock = threading.Lock()
        self._on_block = on_block

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def critical_finding(self, client: str | None, tenant: str | None) -> None:
        """Count one critical finding for the request's client address and tenant."""
        if not self._settings.enabled:
            return
        now = self._clock()
        started: list[tuple[str, str]] = []
        with self._lock:
            for kind, value in (("client", client), ("tenant", tenant)):
                if value is None or kind not in self._settings.by:
                    continue
                total = self._counts.get((kind, value), now).add(
                    now, 1, window=self._settings.window_seconds, threshold=self._settings.threshold, inclusive=True
                )
                if total is not None:
                    self._until.get((kind, value), now)[0] = now + self._settings.block_seconds
                    started.append((kind, value))
        for kind, value in started:
            logger.warning(
                "tenantwatch: blocking %s %s for %.0f s after %d critical findings",
                kind,
                value,
                self._settings.block_seconds,
                self._settings.threshold,
            )
            if self._on_block is not None:
                self._on_block(kind, value)

    def blocked(self, client: str | None, tenant: str | None) -> str | None:
        """``"client"`` or ``"tenant"`` when a block is in force for this request, else ``None``."""
        if not self._settings.enabled:
            return None
        now = self._clock()
        with self._lock:
            for kind, value in (("client", client), ("tenant", tenant)):
                if value is None or (kind, value) not in self._until:
                    continue
                if self._until.get((kind, value), now)[0] > now:
                    return kind
        return None
