"""Which route a db span belongs to, without reaching upstream.

db spans rarely carry ``http.route``; the server span of their trace does, and it is still running when its db spans
end. :class:`RouteIndex` remembers the local server spans that are in flight (bounded; the oldest is forgotten
first) so the processor can read the route of a db span's trace when it needs it (suppressions by route, the route
on a finding's log record).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A

_SERVER = SpanKind.SERVER
"""``SpanKind.SERVER`` (an enum member looked up on its class costs as much as the rest of a cheap check)."""

__all__ = ["RouteIndex"]


class RouteIndex:
    """trace id -> the server span of that trace that is still running in this process. Thread-safe, bounded."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._spans: dict[int, ReadableSpan] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._spans)

    def started(self, span: ReadableSpan) -> None:
        """Remember ``span`` if it is a server span."""
        if span.kind is not _SERVER or span.context is None:
            return
        with self._lock:
            if len(self._spans) >= self._capacity:
                del self._spans[next(iter(self._spans))]
            self._spans[span.context.trace_id] = span

    def ended(self, span: ReadableSpan) -> None:
        """Forget ``span`` if it is the server span remembered for its trace."""
        if span.kind is not _SERVER or span.context is None:
            return
        with self._lock:
            if self._spans.get(span.context.trace_id) is span:
                del self._spans[span.context.trace_id]

    def tenant_for(self, span: ReadableSpan) -> str | None:
        """``tenant.id`` of the running server span of ``span``'s trace (``None`` without one, or without a tenant)."""
        if not self._spans or span.context is None or span.kind is _SERVER:
            return None
        server = self._spans.get(span.context.trace_id)
        if server is None:
            return None
        tenant = (server.attributes or {}).get(A.TENANT_ID)
        return None if tenant is None else str(tenant)

    def route_for(self, span: ReadableSpan, attributes: Mapping[str, object]) -> str | None:
        """``http.route`` of ``span`` itself, else of the running server span of its trace."""
        route = attributes.get(A.HTTP_ROUTE)
        if route is None and span.context is not None:
            server = self._spans.get(span.context.trace_id)
            if server is not None:
                route = (server.attributes or {}).get(A.HTTP_ROUTE)
        return None if route is None else str(route)
