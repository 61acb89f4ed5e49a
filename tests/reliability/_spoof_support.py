"""Helpers for the baggage-spoofing tests: an RLS-protected PostgreSQL table, a Starlette app with an HTTP and a
WebSocket endpoint that read it, the middleware wired to in-memory exporters, and in-process HTTP/WebSocket drivers.

The app reports what the database returned and what the tenant context said, so a test checks what a user notices:
the rows, the exported server and db spans, and the request metrics.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import current_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.instrumentation.asgi import TenantResolver, instrument_app

ROWS = {"acme": 3, "globex": 5}
"""Rows each tenant owns in the RLS-protected ``items`` table."""

SPOOFED = "tenant.id=globex,enduser.id=mallory,enduser.role=superuser"
"""What an attacker sends in the ``baggage`` header."""

TRUSTED_CIDR = "10.0.0.0/8"
TRUSTED_PEER, UNTRUSTED_PEER = "10.1.2.3", "203.0.113.66"


@contextmanager
def rls_database(postgres_dsn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A schema whose ``items`` table has row level security enabled and forced (policy on ``app.tenant_id``), and a
    login role that owns nothing (owners and superusers bypass RLS); yields that role's connection parameters."""
    import psycopg

    suffix = uuid.uuid4().hex[:10]
    schema, role = f"spoof_{suffix}", f"tw_spoof_{suffix}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute("CREATE TABLE items (id integer PRIMARY KEY, organization_id text NOT NULL)")
        conn.execute("ALTER TABLE items ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE items FORCE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY tenant_isolation ON items USING (organization_id = current_setting('app.tenant_id', true))"
        )
        row = 0
        for tenant, count in ROWS.items():
            for _ in range(count):
                row += 1
                conn.execute("INSERT INTO items VALUES (%s, %s)", (row, tenant))
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON items TO {role}")
    try:
        yield {**postgres_dsn, "user": role, "schema": schema}
    finally:
        with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                (role,),
            )
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def rls_engine(db: dict[str, Any]) -> sa.engine.Engine:
    """One pooled connection (psycopg 3), so every request reuses it, as a busy pool eventually does."""
    url = f"postgresql+psycopg://{db['user']}@{db['host']}:{db['port']}/{db['dbname']}"
    return sa.create_engine(url, connect_args={"options": f"-csearch_path={db['schema']}"}, pool_size=1, max_overflow=0)


@dataclass
class Telemetry:
    provider: TracerProvider
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    meter_provider: MeterProvider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def server(self) -> dict[str, Any]:
        servers = [s for s in self.spans() if s.kind is SpanKind.SERVER]
        assert len(servers) == 1, [s.name for s in servers]
        return dict(servers[0].attributes or {})

    def db_spans(self) -> list[dict[str, Any]]:
        return [
            dict(s.attributes or {})
            for s in self.spans()
            if s.kind is SpanKind.CLIENT and "FROM items" in str((s.attributes or {}).get(A.DB_STATEMENT, ""))
        ]

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out: list[tuple[dict[str, Any], Any]] = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out.extend(
                            (dict(p.attributes or {}), getattr(p, "value", None)) for p in metric.data.data_points
                        )
        return out

    def clear(self) -> None:
        self.exporter.clear()


def telemetry() -> Telemetry:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(provider, exporter, reader, MeterProvider(metric_readers=[reader]))


@contextmanager
def instrumented_sqlalchemy(tel: Telemetry) -> Iterator[None]:
    """RLS assist on, spans to ``tel``; engines must be created inside (OTel patches ``create_engine``)."""
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    instrumentor.instrument(
        tracer_provider=tel.provider,
        install_processor=False,
        settings=load_settings(
            environ={}, rls={"enabled": True}, discover=False, tenant_tables={"items": "organization_id"}
        ),
    )
    try:
        yield
    finally:
        instrumentor.uninstrument()
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        otel = SQLAlchemyInstrumentor()
        if otel.is_instrumented_by_opentelemetry:
            otel.uninstrument()


def read_items(engine: sa.engine.Engine) -> dict[str, Any]:
    """What the current work sees: its tenant context and the rows PostgreSQL lets it read."""
    ctx = current_context()
    with engine.connect() as conn:
        tenants = [row[0] for row in conn.execute(sa.text("SELECT organization_id FROM items ORDER BY id"))]
    return {"tenant": ctx.tenant_id, "user": ctx.user_id, "role": ctx.role, "rows": tenants}


def spoof_app(engine: sa.engine.Engine) -> Starlette:
    def http_items(request: Request) -> JSONResponse:
        return JSONResponse(read_items(engine))

    async def ws_items(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(read_items(engine))
        await websocket.close()

    return Starlette(routes=[Route("/items", http_items), WebSocketRoute("/ws/items", ws_items)])


def middleware(
    engine: sa.engine.Engine,
    tel: Telemetry,
    *,
    resolver: TenantResolver | None = None,
    trusted: bool = True,
    app: Any = None,
) -> Any:
    """``app`` (default: :func:`spoof_app`) behind tenantwatch's middleware, trusting ``TRUSTED_CIDR`` (or nobody)."""
    http: dict[str, Any] = {"trusted_proxies": [TRUSTED_CIDR] if trusted else []}
    return instrument_app(
        app if app is not None else spoof_app(engine),
        settings=load_settings(environ={}, http=http),
        resolver=resolver,
        tracer_provider=tel.provider,
        meter_provider=tel.meter_provider,
        observers=[],
    )


async def http_get(app: Any, path: str, *, peer: str, **headers: str) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def websocket_get(app: Any, path: str, *, peer: str, **headers: str) -> dict[str, Any]:
    """Open a WebSocket to ``app`` in-process (a raw ASGI ``websocket`` scope), return the first JSON text frame."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("api.example.com", 80),
        "client": (peer, 50000),
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com"), *((k.encode(), v.encode()) for k, v in headers.items())],
        "subprotocols": [],
    }
    sent: list[dict[str, Any]] = []
    connected = False

    async def receive() -> dict[str, Any]:
        nonlocal connected
        if not connected:
            connected = True
            return {"type": "websocket.connect"}
        await asyncio.sleep(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(dict(message))

    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    kinds = [m["type"] for m in sent]
    assert kinds[0] == "websocket.accept", kinds
    frames = [m for m in sent if m["type"] == "websocket.send"]
    assert frames, kinds
    answer: dict[str, Any] = json.loads(frames[0]["text"])
    return answer


Driver = Callable[..., Any]
DRIVERS: dict[str, Driver] = {"http": http_get, "websocket": websocket_get}
PATHS = {"http": "/items", "websocket": "/ws/items"}
