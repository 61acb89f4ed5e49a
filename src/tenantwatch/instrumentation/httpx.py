"""Outgoing httpx requests carry the tenant: W3C baggage (``tenant.id``, ``enduser.id``, ``enduser.role``).

The tenant context is mirrored into OpenTelemetry baggage (:mod:`tenantwatch.context`), so any outgoing request
instrumented by opentelemetry-instrumentation-httpx with the default propagators (``tracecontext,baggage``) carries
it. :func:`instrument_httpx` turns that instrumentation on (all clients, or the given one). A downstream service
running tenantwatch honors the baggage only from peers in its ``trusted_proxies``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["instrument_httpx", "uninstrument_httpx"]


def instrument_httpx(client: Any = None, **kwargs: Any) -> None:
    """Instrument every httpx client (or only ``client``) so requests carry trace context and tenant baggage."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if client is not None:
        HTTPXClientInstrumentor.instrument_client(client, **kwargs)
    else:
        HTTPXClientInstrumentor().instrument(**kwargs)


def uninstrument_httpx(client: Any = None) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if client is not None:
        HTTPXClientInstrumentor.uninstrument_client(client)
    else:
        HTTPXClientInstrumentor().uninstrument()
