"""The ASGI middleware end to end: resolvers, span attributes, request metrics, security signals, blocking, baggage."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sa_support import create_sqlite_database, sqlite_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import current_context
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware, instrument_app
from tenantwatch.instrumentation.httpx import instrument_httpx, uninstrument_httpx
from tenantwatch.processors import TenantwatchSpanProcessor

SECRET = "test-secret-that-is-long-enough-for-hs256"


@dataclass
class Stack:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    logs: InMemoryLogRecordExporter
    processor: TenantwatchSpanProcessor
    settings: Settings
    engine: sa.engine.Engine
    apps: list[TenantwatchMiddleware] = field(default_factory=list)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def servers(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind is SpanKind.SERVER]

    def server(self) -> dict[str, Any]:
        servers = self.servers()
        assert servers, "no server span"
        return dict(servers[-1].attributes or {})

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out.extend((dict(p.attributes or {}), p) for p in metric.data.data_points)
        return out


def findings(span: ReadableSpan) -> list[str]:
    return list((span.attributes or {}).get(A.FINDINGS, ()))


def make_app(stack_engine: sa.engine.Engine) -> Starlette:
    def items(request: Request) -> JSONResponse:
        tenant = current_context().tenant_id
        with stack_engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id FROM items WHERE organization_id = :org"), {"org": tenant}).all()
        return JSONResponse({"tenant": tenant, "count": len(rows)})

    def all_items(request: Request) -> JSONResponse:
        with stack_engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id FROM items")).all()
        return JSONResponse({"count": len(rows)})

    def search(request: Request) -> JSONResponse:
        q = request.query_params.get("q", "")
        tenant = current_context().tenant_id
        with stack_engine.connect() as conn:  # deliberately string-built
            rows = conn.execute(
                sa.text(f"SELECT id FROM items WHERE organization_id = :org AND name = '{q}'"), {"org": tenant}
            ).all()
        return JSONResponse({"count": len(rows)})

    def login(request: Request) -> Response:
        return Response(status_code=401)

    def whoami(request: Request) -> JSONResponse:
        ctx = current_context()
        return JSONResponse({"tenant": ctx.tenant_id, "user": ctx.user_id, "role": ctx.role})

    def org_items(request: Request) -> JSONResponse:
        return JSONResponse({"tenant": current_context().tenant_id})

    return Starlette(
        routes=[
            Route("/items", items),
            Route("/all-items", all_items),
            Route("/search", search),
            Route("/login", login),
            Route("/whoami", whoami),
            Route("/orgs/{org_id}/items", org_items),
        ]
    )


@pytest.fixture
def build(
    instrument: Callable[..., Any], tmp_path: Path
) -> Iterator[Callable[..., tuple[Stack, TenantwatchMiddleware]]]:
    built: list[Stack] = []
    db = tmp_path / "app.db"
    create_sqlite_database(db)
    engine = sqlite_engine(db)
    key_file = tmp_path / "jwt.key"
    key_file.write_text(SECRET)

    def make(http: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Stack, TenantwatchMiddleware]:
        settings_kw = kwargs.pop("settings_kw", {})
        http = {"jwt_key_file": str(key_file), "jwt_algorithms": ["HS256", "RS256"], **(http or {})}
        settings = load_settings(environ={}, http=http, **settings_kw)
        exporter, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
        meter_provider = MeterProvider(metric_readers=[reader])
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        processor = TenantwatchSpanProcessor(
            SimpleSpanProcessor(exporter),
            settings=settings,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        )
        provider = TracerProvider()
        provider.add_span_processor(processor)
        if not built:
            instrument(tracer_provider=provider, settings=settings, engine=engine)
        stack = Stack(provider, exporter, reader, logs, processor, settings, engine)
        app = instrument_app(
            make_app(engine), settings=settings, tracer_provider=provider, meter_provider=meter_provider, **kwargs
        )
        stack.apps.append(app)
        built.append(stack)
        return stack, app

    yield make
    engine.dispose()
    for stack in built:
        stack.provider.shutdown()


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    payload = {"tenant_id": "1", "sub": "alice", "role": "member", "exp": int(time.time()) + 600, **(claims or {})}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


async def get(app: Any, path: str, *, peer: str = "203.0.113.7", **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
        return await client.get(path, headers=headers)


# --- resolvers ---------------------------------------------------------------------------------------------------


async def test_jwt_sets_tenant_user_role_on_context_server_span_and_db_span(build: Any) -> None:
    stack, app = build()
    response = await get(app, "/items", authorization=f"Bearer {token()}")
    assert response.json() == {"tenant": "1", "count": 100}
    server = stack.server()
    assert (server[A.TENANT_ID], server[A.ENDUSER_ID], server[A.ENDUSER_ROLE]) == ("1", "alice", "member")
    assert server[A.TENANT_SOURCE] == "jwt"
    assert server[A.TENANT_BUCKET] == "1"
    assert server[A.HTTP_ROUTE] == "/items"
    assert server[A.CLIENT_ADDRESS] == "203.0.113.7"
    db = [
        s
        for s in stack.spans()
        if s.kind is SpanKind.CLIENT and "items" in str((s.attributes or {}).get(A.DB_STATEMENT))
    ]
    assert db and all((s.attributes or {})[A.TENANT_ID] == "1" for s in db)
    assert all(findings(s) == [] for s in stack.spans())
    requests = stack.points(A.METRIC_HTTP_REQUESTS)
    assert [
        (labels[A.TENANT_BUCKET], labels[A.HTTP_ROUTE], labels[A.HTTP_RESPONSE_STATUS_CODE]) for labels, _ in requests
    ] == [("1", "/items", 200)]
    assert stack.points(A.METRIC_HTTP_DURATION)


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda: token(key="another-secret-another-secret-another"), "invalid_signature"),
        (lambda: jwt.encode({"tenant_id": "1", "exp": int(time.time()) + 60}, None, algorithm="none"), "unsigned"),
        (lambda: token({"exp": int(time.time()) - 10}), "expired"),
        (lambda: "not.a.token", "malformed"),
        (lambda: token({"aud": "someone-else"}), "invalid_audience"),
    ],
    ids=["bad-signature", "alg-none", "expired", "malformed", "wrong-audience"],
)
async def test_bad_tokens_never_set_a_tenant_and_are_counted(build: Any, make_token: Any, reason: str) -> None:
    stack, app = build(http={"jwt_audience": "tenantwatch-tests"} if reason == "invalid_audience" else {})
    response = await get(app, "/whoami", authorization=f"Bearer {make_token()}")
    assert response.json()["tenant"] is None
    server = stack.server()
    assert A.TENANT_ID not in server
    assert server[A.TOKEN_REJECTED] == reason
    assert [(labels["reason"], p.value) for labels, p in stack.points(A.METRIC_REJECTED_TOKENS)] == [(reason, 1)]


async def test_jwks_key_chosen_by_kid(build: Any, tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    stack, app = build(http={"jwks_file": str(tmp_path / "jwks.json"), "jwt_key_file": None})
    good = token({"tenant_id": "2"}, key=pem, algorithm="RS256", kid="k1")
    assert (await get(app, "/whoami", authorization=f"Bearer {good}")).json()["tenant"] == "2"
    unknown = token({"tenant_id": "2"}, key=pem, algorithm="RS256", kid="k9")
    assert (await get(app, "/whoami", authorization=f"Bearer {unknown}")).json()["tenant"] is None
    assert stack.server()[A.TOKEN_REJECTED] == "unknown_key"


async def test_tenant_header_only_from_trusted_proxies(build: Any) -> None:
    stack, app = build(http={"trusted_proxies": ["10.0.0.0/8"]})
    spoofed = await get(app, "/whoami", peer="203.0.113.7", **{"x-tenant-id": "2"})
    assert spoofed.json()["tenant"] is None
    ignored = stack.points(A.METRIC_IGNORED_HEADERS)
    assert [p.value for _, p in ignored] == [1]
    proxied = await get(
        app,
        "/whoami",
        peer="10.1.2.3",
        **{"x-tenant-id": "2", "x-user-id": "bob", "x-forwarded-for": "198.51.100.4, 10.1.2.3"},
    )
    assert proxied.json() == {"tenant": "2", "user": "bob", "role": None}
    assert stack.server()[A.CLIENT_ADDRESS] == "198.51.100.4"
    assert stack.server()[A.TENANT_SOURCE] == "header"


async def test_subdomain_path_and_callable_resolvers(build: Any) -> None:
    _, app = build(http={"subdomain_base": "example.com", "resolvers": ["subdomain"]})
    assert (await get(app, "/whoami")).json()["tenant"] == "api"  # api.example.com
    _, app = build(http={"path_param": "org_id", "resolvers": ["path"]})
    assert (await get(app, "/orgs/7/items")).json()["tenant"] == "7"

    async def resolver(request: Any) -> Any:
        from tenantwatch.context import TenantContext

        return TenantContext(tenant_id=request.header("x-custom-org"))

    stack, app = build(resolver=resolver)
    assert (await get(app, "/whoami", **{"x-custom-org": "9"})).json()["tenant"] == "9"
    assert stack.server()[A.TENANT_SOURCE] == "callable"


async def test_a_broken_resolver_never_breaks_the_request(build: Any) -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("resolver bug")

    _, app = build(resolver=broken)
    response = await get(app, "/whoami")
    assert response.status_code == 200
    assert response.json()["tenant"] is None


async def test_tenant_label_is_bounded_under_many_tenants(build: Any) -> None:
    stack, app = build(settings_kw={"tenant_label_cap": 10})
    for tenant in range(40):
        await get(app, "/whoami", authorization=f"Bearer {token({'tenant_id': str(tenant)})}")
    buckets = {labels[A.TENANT_BUCKET] for labels, _ in stack.points(A.METRIC_HTTP_REQUESTS)}
    assert len(buckets) == 11 and A.OTHER_TENANTS in buckets
    assert sum(p.value for _, p in stack.points(A.METRIC_HTTP_REQUESTS)) == 40


# --- security signals --------------------------------------------------------------------------------------------


async def test_attack_patterns_become_injection_signal_findings_on_the_server_span(build: Any) -> None:
    stack, app = build()
    bearer = f"Bearer {token()}"
    await get(app, "/whoami?id=1%27%20OR%20%271%27%3D%271", authorization=bearer)
    await get(app, "/whoami?file=../../etc/passwd", authorization=bearer)
    await get(app, "/whoami?name=O%27Brien&plan=select%20a%20plan", authorization=bearer)
    servers = stack.servers()
    assert findings(servers[0]) == ["injection_signal"]
    assert "sqli:query.id" in (servers[0].attributes or {})[A.HTTP_ATTACK_PATTERNS]
    assert findings(servers[1]) == ["injection_signal"]
    assert findings(servers[2]) == []
    counted = [labels[A.RULE] for labels, _ in stack.points(A.METRIC_FINDINGS)]
    assert counted == ["injection_signal"]


async def test_request_value_in_sql_is_an_injection_signal_on_the_db_span(build: Any) -> None:
    stack, app = build()
    await get(app, "/search?q=widget-1", authorization=f"Bearer {token()}")
    db = [s for s in stack.spans() if "name = " in str((s.attributes or {}).get(A.DB_STATEMENT, ""))]
    assert len(db) == 1 and findings(db[0]) == ["injection_signal"]
    event = next(e for e in db[0].events if e.name == A.FINDING_EVENT)
    assert "query.q" in str(event.attributes[A.MESSAGE])
    assert "widget-1" not in str(event.attributes[A.MESSAGE])
    assert (db[0].attributes or {})[A.DB_REQUEST_VALUES_IN_SQL] == ("query.q",)
    stack.exporter.clear()
    await get(app, "/items?q=widget-1", authorization=f"Bearer {token()}")  # bound parameters: no signal
    assert all(findings(s) == [] for s in stack.spans())


async def test_auth_failures_counted_and_brute_force_at_the_threshold(build: Any) -> None:
    stack, app = build(settings_kw={"rules": {"brute_force": {"threshold": 5}}})
    for _ in range(4):
        await get(app, "/login", peer="198.51.100.9")
    assert all(findings(s) == [] for s in stack.servers())
    await get(app, "/login", peer="198.51.100.9")
    assert findings(stack.servers()[-1]) == ["brute_force"]
    assert stack.server()[A.HTTP_AUTH_FAILURES] == 5
    await get(app, "/login", peer="198.51.100.10")  # another client starts at 1
    assert stack.server()[A.HTTP_AUTH_FAILURES] == 1
    failures = stack.points(A.METRIC_AUTH_FAILURES)
    assert sum(p.value for _, p in failures) == 6
    assert {labels[A.HTTP_ROUTE] for labels, _ in failures} == {"/login"}


# --- response actions --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_blocking_after_critical_findings_then_expiry(build: Any) -> None:
    clock = Clock()
    stack, app = build(
        settings_kw={"blocking": {"enabled": True, "threshold": 2, "block_seconds": 30, "status": 429}}, clock=clock
    )
    bearer = f"Bearer {token()}"
    assert (await get(app, "/all-items", authorization=bearer)).status_code == 200  # missing filter: critical
    assert (await get(app, "/all-items", authorization=bearer)).status_code == 200  # second: block starts
    refused = await get(app, "/items", authorization=bearer)
    assert refused.status_code == 429
    assert stack.server()[A.HTTP_BLOCKED] in {"client", "tenant"}
    assert [labels["reason"] for labels, _ in stack.points(A.METRIC_BLOCKS)]
    assert sum(p.value for _, p in stack.points(A.METRIC_BLOCKED)) == 1
    other = await get(app, "/whoami", peer="198.51.100.20", authorization=f"Bearer {token({'tenant_id': '2'})}")
    assert other.status_code == 200  # another client and tenant are not blocked
    clock.now += 31
    assert (await get(app, "/items", authorization=bearer)).status_code == 200


async def test_no_blocking_when_off(build: Any) -> None:
    stack, app = build()
    bearer = f"Bearer {token()}"
    for _ in range(10):
        assert (await get(app, "/all-items", authorization=bearer)).status_code == 200
    assert stack.points(A.METRIC_BLOCKED) == []


# --- across services ---------------------------------------------------------------------------------------------


async def test_tenant_travels_in_baggage_to_a_downstream_service(build: Any) -> None:
    stack_b, app_b = build(http={"trusted_proxies": ["127.0.0.1/32"]})
    stack_a, _ = build()

    async def call_b(request: Request) -> JSONResponse:
        transport = httpx.ASGITransport(app=app_b, client=(request.headers.get("x-peer", "127.0.0.1"), 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
            instrument_httpx(client)
            try:
                response = await client.get("/items")
            finally:
                uninstrument_httpx(client)
        return JSONResponse(response.json())

    app_a = instrument_app(
        Starlette(routes=[Route("/proxy", call_b)]), settings=stack_a.settings, tracer_provider=stack_a.provider
    )
    answer = await get(app_a, "/proxy", authorization=f"Bearer {token({'tenant_id': '2'})}")
    assert answer.json() == {"tenant": "2", "count": 100}
    # in one process the downstream request span has a local parent, so OTel makes it INTERNAL, not SERVER
    server_b = [s for s in stack_b.spans() if s.name == "GET /items"][-1]
    assert (server_b.attributes or {})[A.TENANT_ID] == "2"
    assert (server_b.attributes or {})[A.TENANT_SOURCE] == "baggage"

    untrusted = await get(
        app_a, "/proxy", authorization=f"Bearer {token({'tenant_id': '2'})}", **{"x-peer": "203.0.113.50"}
    )
    assert untrusted.json()["tenant"] is None  # the same baggage from an untrusted peer sets nothing
