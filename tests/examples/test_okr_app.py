"""The example OKR service on real PostgreSQL: every endpoint produces exactly its expected findings."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.processors.windows import DETECTOR_IDS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.okr_app import auth
from examples.okr_app.main import create_app
from examples.okr_app.seed import DEFAULT_TENANTS, user_id

pytestmark = pytest.mark.postgres

ACME, GLOBEX = 1, 2

CASES: list[tuple[str, str, str, str, set[str]]] = [
    # (name, method, path, role, expected rules)
    ("health", "GET", "/healthz", "member", set()),
    ("list", "GET", "/objectives?limit=20", "member", set()),
    ("get by id", "GET", "/objectives/1", "member", set()),
    ("key results", "GET", "/objectives/1/key-results", "member", set()),
    ("search", "GET", "/search?q=objective%2012", "member", set()),
    ("mark done", "POST", "/objectives/2/done", "member", set()),
    ("stats", "GET", "/stats", "member", set()),
    ("missing tenant filter", "GET", "/buggy/objectives", "member", {"missing_tenant_filter"}),
    ("cross-tenant lookup by id", "GET", f"/buggy/objectives/5300?org_id={GLOBEX}", "member", {"cross_tenant"}),
    ("same-tenant lookup", "GET", f"/buggy/objectives/3?org_id={ACME}", "member", set()),
    ("unscoped bulk update", "POST", "/buggy/objectives/archive-all", "member", {"unscoped_write"}),
    ("superuser write", "POST", "/admin/objectives/4/title?title=Renamed", "superuser", {"superuser_write"}),
    ("large export", "GET", "/buggy/export", "member", {"large_result"}),
    ("slow report", "GET", "/buggy/report", "member", {"slow_query"}),
    ("string-built WHERE", "GET", "/buggy/search?q=objective%2042", "member", {"injection_signal"}),
]


@pytest.fixture(scope="module")
def okr(postgres_dsn: dict[str, Any]) -> Iterator[tuple[Any, InMemorySpanExporter]]:
    admin = psycopg.connect(
        host=postgres_dsn["host"],
        port=postgres_dsn["port"],
        user=postgres_dsn["user"],
        dbname=postgres_dsn["dbname"],
        autocommit=True,
    )
    admin.execute("DROP DATABASE IF EXISTS okr_example")
    admin.execute("CREATE DATABASE okr_example")
    url = f"postgresql+psycopg://{postgres_dsn['user']}@{postgres_dsn['host']}:{postgres_dsn['port']}/okr_example"
    exporter = InMemorySpanExporter()
    settings = load_settings(
        environ={},
        http={"jwt_key_file": auth.secret_file(), "resolvers": ["jwt"]},
        # the windowed detectors judge streams, not single requests; tests/processors/test_windows.py covers them
        rules={rule: {"enabled": False} for rule in DETECTOR_IDS},
    )
    app, handle, engine = create_app(
        url, settings=settings, exporters=False, span_exporter=SimpleSpanProcessor(exporter), set_global=False
    )
    try:
        yield app, exporter
    finally:
        handle.shutdown()
        engine.dispose()
        admin.execute("DROP DATABASE IF EXISTS okr_example WITH (FORCE)")
        admin.close()


def rules_of(spans: list[ReadableSpan]) -> set[str]:
    return {rule for span in spans for rule in (span.attributes or {}).get(A.FINDINGS, ())}


async def call(app: Any, method: str, path: str, role: str) -> httpx.Response:
    token = auth.make_token(ACME, user_id(ACME, role), role)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://okr") as client:
        return await client.request(method, path, headers={"authorization": f"Bearer {token}"})


def test_seed_has_three_tenants_and_one_above_5000_objectives() -> None:
    assert len(DEFAULT_TENANTS) >= 3
    assert max(t.objectives for t in DEFAULT_TENANTS) > 5000


@pytest.mark.parametrize(("method", "path", "role", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_endpoint_produces_exactly_its_findings(
    okr: tuple[Any, InMemorySpanExporter], method: str, path: str, role: str, expected: set[str]
) -> None:
    app, exporter = okr
    exporter.clear()
    response = await call(app, method, path, role)
    assert response.status_code == 200, response.text
    spans = list(exporter.get_finished_spans())
    assert rules_of(spans) == expected
    server = next(s for s in spans if s.kind is SpanKind.SERVER)
    assert (server.attributes or {})[A.TENANT_ID] == str(ACME)


async def test_export_returns_more_than_1000_rows_and_the_span_says_so(okr: tuple[Any, InMemorySpanExporter]) -> None:
    app, exporter = okr
    exporter.clear()
    response = await call(app, "GET", "/buggy/export", "member")
    assert response.json()["exported"] > 1000
    db = [s for s in exporter.get_finished_spans() if A.DB_RESPONSE_RETURNED_ROWS in (s.attributes or {})]
    assert max(int((s.attributes or {})[A.DB_RESPONSE_RETURNED_ROWS]) for s in db) == response.json()["exported"]


async def test_requests_without_a_valid_token_are_refused(okr: tuple[Any, InMemorySpanExporter]) -> None:
    app, _ = okr
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://okr") as client:
        assert (await client.get("/objectives")).status_code == 401
        forged = auth.make_token(ACME, 1, "member", key="not-the-secret-not-the-secret-not-the")
        assert (await client.get("/objectives", headers={"authorization": f"Bearer {forged}"})).status_code == 401
