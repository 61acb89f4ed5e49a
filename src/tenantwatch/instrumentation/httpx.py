"""Outgoing httpx requests carry the tenant: W3C baggage (``tenant.id``, ``enduser.id``, ``enduser.role``).

The tenant context is mirrored into OpenTelemetry baggage (:mod:`tenantwatch.context`), so any outgoing request
propagated by OpenTelemetry carries it. Two ways to get there:

* :func:`instrument_httpx` turns on opentelemetry-instrumentation-httpx (all clients, or the given one): requests get
  spans and the global propagators' headers (by default ``traceparent`` and ``baggage``);
* :func:`add_tenant_baggage` adds a request event hook to one client that writes the current baggage into the
  ``baggage`` header (no spans, no other propagator): for services that do not trace their outgoing calls.

A downstream service running tenantwatch honors the baggage only from peers in its ``trusted_proxies`` (or with
``trust_headers``); from anyone else it is ignored and counted (docs/asgi.md).

Usage::

    from tenantwatch.instrumentation.httpx import add_tenant_baggage, instrument_httpx

    instrument_httpx()                          # every client, with spans
    client = add_tenant_baggage(httpx.AsyncClient(base_url="http://billing"))   # or: this client, header only
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import httpx
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from tenantwatch.core.guard import guard

__all__ = ["add_tenant_baggage", "inject_tenant_baggage", "instrument_httpx", "uninstrument_httpx"]

logger = logging.getLogger(__name__)

_HEADER = "baggage"
_PROPAGATOR = W3CBaggagePropagator()
_Client = TypeVar("_Client", httpx.Client, httpx.AsyncClient)

MISSING_HTTPX_WARNING = (
    "tenantwatch: outgoing httpx requests are not instrumented: opentelemetry-instrumentation-httpx is not installed "
    "(pip install 'tenantwatch[httpx]')"
)


def instrument_httpx(client: Any = None, **kwargs: Any) -> None:
    """Instrument every httpx client (or only ``client``) so requests carry trace context and tenant baggage.

    ``kwargs`` go to opentelemetry-instrumentation-httpx (``tracer_provider``, hooks, ...). Without it (the ``httpx``
    extra), one warning says what to install and nothing is instrumented.
    """
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:
        logger.warning(MISSING_HTTPX_WARNING)
        return

    if client is not None:
        HTTPXClientInstrumentor.instrument_client(client, **kwargs)
    else:
        HTTPXClientInstrumentor().instrument(**kwargs)


def uninstrument_httpx(client: Any = None) -> None:
    """Undo :func:`instrument_httpx` (for ``client``, or globally)."""
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:  # instrument_httpx() instrumented nothing
        return

    if client is not None:
        HTTPXClientInstrumentor.uninstrument_client(client)
    else:
        HTTPXClientInstrumentor().uninstrument()


def inject_tenant_baggage(request: httpx.Request) -> None:
    """Write the current W3C baggage (tenant, user, role and any other entry) into ``request``'s ``baggage`` header.

    A request that already has a ``baggage`` header is left alone (the caller or OTel's propagation set it). Never
    raises.
    """
    with guard("adding tenant baggage to an outgoing request", logger=logger, level=logging.ERROR):
        if _HEADER in request.headers:
            return
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        value = carrier.get(_HEADER)
        if value:
            request.headers[_HEADER] = value


async def _inject_async(request: httpx.Request) -> None:
    inject_tenant_baggage(request)


def add_tenant_baggage(client: _Client) -> _Client:
    """Add :func:`inject_tenant_baggage` as a request event hook of ``client`` (sync or async); returns ``client``.

    Idempotent: a client that already has the hook is returned unchanged.
    """
    hook: Any = _inject_async if isinstance(client, httpx.AsyncClient) else inject_tenant_baggage
    hooks = client.event_hooks
    requests = list(hooks.get("request", []))
    if hook not in requests:
        requests.append(hook)
        client.event_hooks = {**hooks, "request": requests}
    return client
