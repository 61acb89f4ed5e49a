"""One middleware for raw ASGI, Starlette and FastAPI; ``configure(app=...)``; robustness; bounded labels."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from asgi_support import get, token
from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import tenantwatch
from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import current_context
from tenantwatch.core.request import RequestInfo, current_request
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware, instrument_app, uninstrument_app


async def raw_app(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app answering with the tenant it runs for."""
    if scope["type"] == "lifespan":
        return
    request = current_request()
    body = f"{current_context().tenant_id}|{request.tenant_id if request else '-'}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


async def test_raw_asgi_app_gets_context_request_info_and_server_span_attributes(build: Any) -> None:
    stack, app = build(http={"trusted_proxies": ["10.0.0.0/8"]}, inner=lambda engine: raw_app)
    response = await get(
        app,
        "/anything",
        peer="10.0.0.5",
        **{"x-tenant-id": "acme", "x-user-id": "u-7", "x-user-role": "admin", "x-forwarded-for": "198.51.100.1"},
    )
    assert response.text == "acme|acme"
    server = stack.server()
    assert server[A.TENANT_ID] == "acme"
    assert server[A.ENDUSER_ID] == "u-7"
    assert server[A.ENDUSER_ROLE] == "admin"
    assert server[A.TENANT_BUCKET] == "acme"
    assert server[A.TENANT_SOURCE] == "header"
    assert server[A.CLIENT_ADDRESS] == "198.51.100.1"
    assert A.HTTP_ROUTE not in server  # a raw app has no route template
    [(labels, point)] = stack.points(A.METRIC_HTTP_REQUESTS)
    assert labels == {
        A.TENANT_BUCKET: "acme",
        A.HTTP_ROUTE: "",
        A.HTTP_REQUEST_METHOD: "GET",
        A.HTTP_RESPONSE_STATUS_CODE: 200,
    }
    assert point.value == 1
    assert current_request() is None  # reset after the request


def fastapi_app(engine: Any) -> FastAPI:
    api = FastAPI()

    @api.get("/objectives/{objective_id}")
    async def objective(objective_id: int) -> dict[str, Any]:
        return {"tenant": current_context().tenant_id}

    return api


async def test_fastapi_route_template_on_span_and_metrics(build: Any) -> None:
    stack, app = build(inner=fastapi_app)
    response = await get(app, "/objectives/42", authorization=f"Bearer {token({'tenant_id': '3'})}")
    assert response.json() == {"tenant": "3"}
    server = stack.server()
    assert server[A.HTTP_ROUTE] == "/objectives/{objective_id}"
    assert server[A.TENANT_ID] == "3"
    [(labels, _)] = stack.points(A.METRIC_HTTP_REQUESTS)
    assert labels[A.HTTP_ROUTE] == "/objectives/{objective_id}"
    [(duration_labels, histogram)] = stack.points(A.METRIC_HTTP_DURATION)
    assert duration_labels[A.TENANT_BUCKET] == "3" and histogram.count == 1 and histogram.sum > 0


@pytest.fixture
def configured() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader, dict[str, Any]]]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    options: dict[str, Any] = {
        "exporters": False,
        "span_exporter": SimpleSpanProcessor(exporter),
        "metric_reader": reader,
        "instrument_sqlalchemy": False,
        "set_global": False,
        "settings": load_settings(environ={}, http={"trust_headers": True}),
    }
    yield exporter, reader, options


async def test_configure_app_instruments_a_fastapi_app_in_place(configured: Any) -> None:
    exporter, _, options = configured
    api = fastapi_app(None)
    handle = tenantwatch.configure(app=api, **options)
    try:
        assert handle.app is api  # serve the same object
        response = await get(api, "/objectives/1", **{"x-tenant-id": "globex"})
        assert response.json() == {"tenant": "globex"}
        [server] = server_spans(exporter)
        assert (server.attributes or {})[A.TENANT_ID] == "globex"
        assert (server.attributes or {})[A.HTTP_ROUTE] == "/objectives/{objective_id}"
    finally:
        handle.shutdown()


async def test_configure_app_wraps_a_raw_asgi_app(configured: Any) -> None:
    exporter, _, options = configured
    handle = tenantwatch.configure(app=raw_app, **options)
    try:
        assert isinstance(handle.app, TenantwatchMiddleware)
        assert uninstrument_app(handle.app) is raw_app
        assert (await get(handle.app, "/", **{"x-tenant-id": "t1"})).text == "t1|t1"
        assert (server_spans(exporter)[0].attributes or {})[A.TENANT_ID] == "t1"
    finally:
        handle.shutdown()


async def test_add_middleware_on_a_starlette_app(build: Any) -> None:
    stack, _ = build()

    async def home(request: Any) -> PlainTextResponse:
        return PlainTextResponse(str(current_context().tenant_id))

    app = Starlette(routes=[Route("/home", home)])
    app.add_middleware(
        TenantwatchMiddleware,
        settings=stack.settings,
        tracer_provider=stack.provider,
        meter_provider=stack.meter_provider,
    )
    assert (await get(app, "/home", authorization=f"Bearer {token({'tenant_id': '4'})}")).text == "4"
    assert stack.server()[A.HTTP_ROUTE] == "/home"


class Broken:
    def before(self, request: RequestInfo) -> tuple[int, str] | None:
        raise RuntimeError("observer bug")

    def after(self, request: RequestInfo, status_code: int) -> None:
        raise RuntimeError("observer bug")


class Counting:
    def __init__(self) -> None:
        self.statuses: list[int] = []

    def before(self, request: RequestInfo) -> tuple[int, str] | None:
        return None

    def after(self, request: RequestInfo, status_code: int) -> None:
        self.statuses.append(status_code)


async def test_a_broken_observer_never_breaks_the_request_nor_the_next_observer(build: Any) -> None:
    counting = Counting()
    stack, app = build(observers=[Broken(), counting])
    response = await get(app, "/whoami", authorization=f"Bearer {token()}")
    assert response.status_code == 200 and response.json()["tenant"] == "1"
    assert counting.statuses == [200]
    assert stack.server()[A.TENANT_ID] == "1"


async def test_an_observer_refusal_answers_without_calling_the_app(build: Any) -> None:
    called: list[str] = []

    class Refuse:
        def before(self, request: RequestInfo) -> tuple[int, str] | None:
            return 403, "not today"

        def after(self, request: RequestInfo, status_code: int) -> None:
            called.append(f"after {status_code}")

    async def app_must_not_run(scope: Any, receive: Any, send: Any) -> None:
        called.append("app")

    _, app = build(observers=[Refuse()], inner=lambda engine: app_must_not_run)
    response = await get(app, "/")
    assert (response.status_code, response.json()) == (403, {"detail": "not today"})
    assert called == ["after 403"]


async def test_a_failing_app_is_counted_as_500_and_the_error_reaches_the_server(build: Any) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("app bug")

    stack, app = build(inner=lambda engine: failing)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(ValueError, match="app bug"):
            await client.get("/", headers={"authorization": f"Bearer {token()}"})
    [(labels, _)] = stack.points(A.METRIC_HTTP_REQUESTS)
    assert labels[A.HTTP_RESPONSE_STATUS_CODE] == 500 and labels[A.TENANT_BUCKET] == "1"


async def test_excluded_urls_get_no_span_but_keep_the_tenant(build: Any) -> None:
    stack, app = build(excluded_urls="healthz", inner=lambda engine: raw_app)
    response = await get(app, "/healthz", authorization=f"Bearer {token()}")
    assert response.text == "1|1"
    assert stack.servers() == []
    await get(app, "/other", authorization=f"Bearer {token()}")
    assert len(stack.servers()) == 1


async def test_tenant_label_stays_bounded_under_500_tenants(build: Any) -> None:
    stack, app = build(http={"trust_headers": True}, settings_kw={"tenant_label_cap": 10}, inner=lambda e: raw_app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for tenant in range(500):
            await client.get("/", headers={"x-tenant-id": f"tenant-{tenant}"})
        await client.get("/")  # and one without a tenant
    points = stack.points(A.METRIC_HTTP_REQUESTS)
    buckets = {labels[A.TENANT_BUCKET]: p.value for labels, p in points}
    assert len(buckets) == 12  # 10 tenants of their own + __other__ + __none__
    assert buckets[A.OTHER_TENANTS] == 490 and buckets[A.NO_TENANT] == 1
    assert {f"tenant-{n}" for n in range(10)} <= set(buckets)
    assert sum(buckets.values()) == 501
    assert len(stack.points(A.METRIC_HTTP_DURATION)) == 12
    # the span keeps the real tenant id; only the metric label is bounded
    last = [s for s in stack.servers() if (s.attributes or {}).get(A.TENANT_ID) == "tenant-499"]
    assert last and (last[0].attributes or {})[A.TENANT_BUCKET] == A.OTHER_TENANTS


def test_instrument_app_is_exported_from_the_package() -> None:
    assert tenantwatch.instrument_app is instrument_app
    assert tenantwatch.TenantwatchMiddleware is TenantwatchMiddleware
