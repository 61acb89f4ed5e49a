"""The request being served, as the ASGI middleware saw it: shared with the SQL hooks and the security observers.

It lives in the core because the instrumentation (middleware, resolvers, SQL hooks) writes it and
``tenantwatch.security`` reads it; neither reaches into the other's internals for it.

The middleware sets :class:`RequestInfo` in a context variable for the whole request; code that runs inside the
request (SQLAlchemy hooks, finding listeners) reads it with :func:`current_request`. Observers see each request before
the application (and may refuse it) and after the response status is known.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.trace import Span

__all__ = ["RequestInfo", "RequestObserver", "current_request", "set_current_request"]


@dataclass(slots=True)
class RequestInfo:
    """One HTTP request or WebSocket connection: what the middleware resolved and what the observers need."""

    method: str
    path: str
    query_string: str
    """Raw, undecoded."""
    headers: tuple[tuple[str, str], ...]
    """Lower-case names, latin-1 decoded values."""
    client_address: str | None
    """The peer, or the forwarded-for address when the peer is a trusted proxy."""
    host: str | None
    route: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None
    role: str | None = None
    tenant_source: str | None = None
    span: Span | None = None
    values: object | None = None
    """The security observer's per-request value store (:class:`tenantwatch.security.values.RequestValues`)."""
    path_params: dict[str, str] = field(default_factory=dict)
    tenant_keys: tuple[tuple[str, str], ...] = ()
    """The trusted values of a tenant hierarchy's finer keys (``(("team", "t-1"),)``), set with ``tenant_id``."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


_current: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar("tenantwatch_request", default=None)


def current_request() -> RequestInfo | None:
    """The request being served in this task or thread, if any."""
    return _current.get()


def set_current_request(request: RequestInfo | None) -> contextvars.Token[RequestInfo | None]:
    return _current.set(request)


def reset_current_request(token: contextvars.Token[RequestInfo | None]) -> None:
    _current.reset(token)


class RequestObserver(Protocol):
    """Sees every request: ``before`` may refuse it with ``(status, reason)``; ``after`` gets the status."""

    def before(self, request: RequestInfo) -> tuple[int, str] | None: ...

    def after(self, request: RequestInfo, status_code: int) -> None: ...
