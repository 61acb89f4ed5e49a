"""Helpers for the ASGI middleware tests: a test app on the seeded SQLite ``items`` table, tokens, requests, and a
:class:`Stack` that holds one app's exported spans, metrics and logs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import sqlalchemy as sa
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import current_context
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware
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
    meter_provider: MeterProvider
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


def token(claims: dict[str, Any] | None = None, key: Any = SECRET, algorithm: str = "HS256", **headers: Any) -> str:
    payload = {"tenant_id": "1", "sub": "alice", "role": "member", "exp": int(time.time()) + 600, **(claims or {})}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers or None)


async def get(app: Any, path: str, *, peer: str = "203.0.113.7", **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
        return await client.get(path, headers=headers)
