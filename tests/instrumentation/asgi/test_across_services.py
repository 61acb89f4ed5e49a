"""The tenant travels from service A to service B in W3C baggage over httpx; B honors it only from a trusted peer.

B runs in a fresh ``contextvars.Context`` (as a separate process would): the only way the tenant can reach it is the
``baggage`` header of the request.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import httpx
import pytest
from asgi_support import get, token
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenantwatch import attributes as A
from tenantwatch.instrumentation.asgi import instrument_app
from tenantwatch.instrumentation.httpx import add_tenant_baggage, instrument_httpx, uninstrument_httpx

B_TRUSTS = "10.0.0.0/8"
TRUSTED_PEER, UNTRUSTED_PEER = "10.1.2.3", "203.0.113.50"


def isolated(app: Any) -> Any:
    """``app`` served in an empty context, as if it ran in another process."""

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.create_task(app(scope, receive, send), context=contextvars.Context())

    return serve


@pytest.mark.parametrize("propagation", ["otel-httpx", "event-hook"])
async def test_tenant_reaches_b_server_span_and_db_span_from_a_trusted_peer(build: Any, propagation: str) -> None:
    stack_b, app_b = build(http={"trusted_proxies": [B_TRUSTS]})  # built first: receives the db spans
    stack_a, _ = build()
    seen: dict[str, str | None] = {}

    async def call_b(request: Request) -> JSONResponse:
        transport = httpx.ASGITransport(app=isolated(app_b), client=(request.headers["x-peer"], 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
            if propagation == "otel-httpx":
                instrument_httpx(client, tracer_provider=stack_a.provider)
            else:
                add_tenant_baggage(client)
            try:
                response = await client.get("/items")
                seen["baggage"] = response.request.headers.get("baggage")
            finally:
                if propagation == "otel-httpx":
                    uninstrument_httpx(client)
        return JSONResponse(response.json())

    app_a = instrument_app(
        Starlette(routes=[Route("/proxy", call_b)]),
        settings=stack_a.settings,
        tracer_provider=stack_a.provider,
        meter_provider=stack_a.meter_provider,
    )
    bearer = f"Bearer {token({'tenant_id': '2', 'sub': 'carol', 'role': 'admin'})}"

    answer = await get(app_a, "/proxy", authorization=bearer, **{"x-peer": TRUSTED_PEER})
    assert answer.json() == {"tenant": "2", "count": 100}  # B's query ran for tenant 2
    assert "tenant.id=2" in (seen["baggage"] or "")
    server_b = stack_b.servers()
    assert len(server_b) == 1
    attributes = dict(server_b[0].attributes or {})
    assert (attributes[A.TENANT_ID], attributes[A.ENDUSER_ID], attributes[A.ENDUSER_ROLE]) == ("2", "carol", "admin")
    assert attributes[A.TENANT_SOURCE] == "baggage"
    db_b = [s for s in stack_b.spans() if s.kind is SpanKind.CLIENT and (s.attributes or {}).get(A.DB_STATEMENT)]
    assert db_b and all((s.attributes or {})[A.TENANT_ID] == "2" for s in db_b)
    if propagation == "otel-httpx":  # one trace across both services
        server_a = stack_a.servers()[-1]
        assert server_b[0].context.trace_id == server_a.context.trace_id

    stack_b.exporter.clear()
    untrusted = await get(app_a, "/proxy", authorization=bearer, **{"x-peer": UNTRUSTED_PEER})
    assert untrusted.json() == {"tenant": None, "count": 0}  # the same baggage from an untrusted peer sets nothing
    attributes = stack_b.server()
    assert A.TENANT_ID not in attributes
    assert attributes[A.TENANT_BUCKET] == A.NO_TENANT
    db_b = [s for s in stack_b.spans() if s.kind is SpanKind.CLIENT and (s.attributes or {}).get(A.DB_STATEMENT)]
    assert db_b and all(A.TENANT_ID not in (s.attributes or {}) for s in db_b)
    assert [p.value for _, p in stack_b.points(A.METRIC_IGNORED_HEADERS)] == [1]


async def test_add_tenant_baggage_sends_nothing_without_a_tenant_and_keeps_an_explicit_header() -> None:
    sent: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers.get("baggage"))
        return httpx.Response(204)

    from tenantwatch.context import tenant_context

    async with add_tenant_baggage(httpx.AsyncClient(transport=httpx.MockTransport(record))) as client:
        await client.get("http://b/")
        with tenant_context("7", user_id="u-1"):
            await client.get("http://b/")
            await client.get("http://b/", headers={"baggage": "tenant.id=caller-chose"})
    with httpx.Client(transport=httpx.MockTransport(record)) as sync_client:
        add_tenant_baggage(add_tenant_baggage(sync_client))  # idempotent
        assert len(sync_client.event_hooks["request"]) == 1
        with tenant_context("8"):
            sync_client.get("http://b/")
    assert sent[0] is None
    assert sent[1] is not None and set(sent[1].split(",")) == {"tenant.id=7", "enduser.id=u-1"}
    assert sent[2] == "tenant.id=caller-chose"
    assert sent[3] == "tenant.id=8"
