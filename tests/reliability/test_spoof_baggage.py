"""Spoofed W3C baggage never makes a tenant: over HTTP and WebSocket, with a raising resolver, with RLS assist on.

An untrusted client sends ``baggage: tenant.id=globex,enduser.id=mallory,enduser.role=superuser``. The tenant comes
only from a trust decision (a trusted peer, a verified token, the app's own resolver, an explicit
``tenant_context``/``trust_baggage``), so on real PostgreSQL with row level security the client reads none of globex's
rows, and neither the server span nor the db span carries the spoofed tenant or role. The same baggage from a trusted
peer keeps working (the control that shows each test could fail).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from _spoof_support import (
    DRIVERS,
    PATHS,
    ROWS,
    SPOOFED,
    TRUSTED_PEER,
    UNTRUSTED_PEER,
    Telemetry,
    http_get,
    instrumented_sqlalchemy,
    middleware,
    read_items,
    rls_database,
    rls_engine,
    telemetry,
    websocket_get,
)
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from tenantwatch import attributes as A
from tenantwatch.context import TenantContext, trust_baggage
from tenantwatch.core.request import RequestInfo

pytestmark = pytest.mark.postgres

SCOPES = ["http", "websocket"]
NOTHING: dict[str, Any] = {"tenant": None, "user": None, "role": None, "rows": []}
GLOBEX: dict[str, Any] = {
    "tenant": "globex",
    "user": "mallory",
    "role": "superuser",
    "rows": ["globex"] * ROWS["globex"],
}


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    made = telemetry()
    yield made
    made.provider.shutdown()


@pytest.fixture
def engine(postgres_dsn: dict[str, Any], tel: Telemetry) -> Iterator[sa.engine.Engine]:
    with rls_database(postgres_dsn) as db, instrumented_sqlalchemy(tel):
        created = rls_engine(db)
        try:
            yield created
        finally:
            created.dispose()


def _assert_no_spoofed_identity(tel: Telemetry) -> None:
    server = tel.server()
    for key in (A.TENANT_ID, A.ENDUSER_ID, A.ENDUSER_ROLE, A.TENANT_SOURCE):
        assert key not in server, (key, server.get(key))
    assert server[A.TENANT_BUCKET] == A.NO_TENANT
    db = tel.db_spans()
    assert db, "the app's query was not traced"
    for span in db:
        assert A.TENANT_ID not in span and A.ENDUSER_ROLE not in span
        assert span[A.DB_RLS_TENANT] == ""  # RLS assist set nothing: the policy sees no tenant


@pytest.mark.parametrize("kind", SCOPES)
async def test_spoofed_baggage_from_an_untrusted_peer_reads_no_rows(
    kind: str, engine: sa.engine.Engine, tel: Telemetry
) -> None:
    app = middleware(engine, tel)
    answer = await DRIVERS[kind](app, PATHS[kind], peer=UNTRUSTED_PEER, baggage=SPOOFED)
    assert answer == NOTHING
    _assert_no_spoofed_identity(tel)
    assert [value for _, value in tel.points(A.METRIC_IGNORED_HEADERS)] == [1]  # the attempt is visible


@pytest.mark.parametrize("kind", SCOPES)
async def test_the_same_baggage_from_a_trusted_peer_is_the_tenant(
    kind: str, engine: sa.engine.Engine, tel: Telemetry
) -> None:
    """Control: the fixture's policy does hand globex's rows to globex, and a trusted peer's baggage still works."""
    app = middleware(engine, tel)
    answer = await DRIVERS[kind](app, PATHS[kind], peer=TRUSTED_PEER, baggage=SPOOFED)
    assert answer == GLOBEX
    server = tel.server()
    assert (server[A.TENANT_ID], server[A.ENDUSER_ROLE], server[A.TENANT_SOURCE]) == ("globex", "superuser", "baggage")
    assert [span[A.DB_RLS_TENANT] for span in tel.db_spans()] == ["globex"]


@pytest.mark.parametrize("kind", SCOPES)
@pytest.mark.parametrize("peer", [UNTRUSTED_PEER, TRUSTED_PEER])
async def test_a_raising_resolver_fails_closed(
    kind: str, peer: str, engine: sa.engine.Engine, tel: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """``int()`` of a bad header: no tenant at all (not the baggage, not even a trusted peer's), the reason counted
    and on the span, one log line for two failures."""

    def resolver(request: RequestInfo) -> TenantContext:
        return TenantContext(tenant_id=str(int(request.header("x-org-number") or "")))

    app = middleware(engine, tel, resolver=resolver)
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        first = await DRIVERS[kind](app, PATHS[kind], peer=peer, baggage=SPOOFED, **{"x-org-number": "globex"})
        server = tel.server()
        tel.clear()
        second = await DRIVERS[kind](app, PATHS[kind], peer=peer, baggage=SPOOFED, **{"x-org-number": "x"})
    assert first == second == NOTHING
    _assert_no_spoofed_identity(tel)
    assert server[A.TENANT_RESOLUTION_FAILED] == A.RESOLUTION_FAILED_RESOLVER
    assert A.TENANT_ID not in server
    failures = tel.points(A.METRIC_RESOLUTION_FAILURES)
    assert failures == [({"reason": "resolver_error", A.ERROR_TYPE: "ValueError"}, 2)]
    logged = [r for r in caplog.records if "custom tenant resolver" in r.getMessage()]
    assert len(logged) == 1
    assert "the request runs with no tenant" in logged[0].getMessage()


@pytest.mark.parametrize("kind", SCOPES)
@pytest.mark.parametrize("broken", ["_request", "_resolve"])
async def test_tenantwatchs_own_failure_fails_closed_too(
    kind: str, broken: str, engine: sa.engine.Engine, tel: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in tenantwatch's own resolution (reading the scope, or resolving) never lets a trusted peer's baggage,
    let alone an untrusted one's, in through the back door: the request runs, with no tenant."""

    def boom(*args: Any) -> Any:
        raise RuntimeError("tenantwatch bug")

    app = middleware(engine, tel)
    monkeypatch.setattr(app, broken, boom)
    answer = await DRIVERS[kind](app, PATHS[kind], peer=TRUSTED_PEER, baggage=SPOOFED)
    assert answer == NOTHING
    assert all(A.TENANT_ID not in span and span[A.DB_RLS_TENANT] == "" for span in tel.db_spans())
    if broken == "_resolve":
        assert tel.server()[A.TENANT_RESOLUTION_FAILED] == A.RESOLUTION_FAILED_INTERNAL
        assert tel.points(A.METRIC_RESOLUTION_FAILURES) == [
            ({"reason": "internal_error", A.ERROR_TYPE: "RuntimeError"}, 1)
        ]


async def test_a_resolver_answer_still_wins_over_websocket(engine: sa.engine.Engine, tel: Telemetry) -> None:
    """WebSocket scopes go through the same resolution as HTTP: the app's resolver sets the tenant, not the baggage."""

    def resolver(request: RequestInfo) -> TenantContext:
        return TenantContext(tenant_id=request.header("x-org"), role="member")

    app = middleware(engine, tel, resolver=resolver)
    answer = await websocket_get(app, "/ws/items", peer=UNTRUSTED_PEER, baggage=SPOOFED, **{"x-org": "acme"})
    assert answer == {"tenant": "acme", "user": None, "role": "member", "rows": ["acme"] * ROWS["acme"]}
    server = tel.server()
    assert (server[A.TENANT_ID], server[A.ENDUSER_ROLE], server[A.TENANT_SOURCE]) == ("acme", "member", "callable")


async def test_no_trusted_proxies_at_all_over_http_and_websocket(engine: sa.engine.Engine, tel: Telemetry) -> None:
    """With nobody trusted (the default), even the loopback peer's baggage is a claim."""
    app = middleware(engine, tel, trusted=False)
    assert await http_get(app, "/items", peer="127.0.0.1", baggage=SPOOFED) == NOTHING
    tel.clear()
    assert await websocket_get(app, "/ws/items", peer="127.0.0.1", baggage=SPOOFED) == NOTHING
    _assert_no_spoofed_identity(tel)


def test_rls_assist_never_sets_a_tenant_from_raw_baggage(engine: sa.engine.Engine, tel: Telemetry) -> None:
    """Outside the middleware (a worker), attached baggage sets nothing in PostgreSQL until ``trust_baggage``."""
    incoming = W3CBaggagePropagator().extract({"baggage": SPOOFED})
    token = otel_context.attach(incoming)
    try:
        assert baggage.get_baggage(A.TENANT_ID) == "globex"
        untrusted = read_items(engine)
        with trust_baggage():
            trusted = read_items(engine)
    finally:
        otel_context.detach(token)
    assert untrusted == NOTHING
    assert trusted == GLOBEX
    assert [span[A.DB_RLS_TENANT] for span in tel.db_spans()] == ["", "globex"]
    assert [span.get(A.TENANT_ID) for span in tel.db_spans()] == [None, "globex"]


async def test_lifespan_passes_through_untouched(engine: sa.engine.Engine, tel: Telemetry) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append({"type": scope["type"], "tenant_baggage": baggage.get_baggage(A.TENANT_ID)})
        await send({"type": "lifespan.startup.complete"})

    wrapped = middleware(engine, tel, app=app)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        sent.append(message)

    token = otel_context.attach(W3CBaggagePropagator().extract({"baggage": SPOOFED}))
    try:
        await wrapped({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    finally:
        otel_context.detach(token)
    assert seen == [{"type": "lifespan", "tenant_baggage": "globex"}]  # not even a context entered
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert tel.spans() == []
    assert tel.points(A.METRIC_HTTP_REQUESTS) == []


@pytest.mark.parametrize("extension", [False, True])
async def test_an_observer_refusal_of_a_websocket_is_a_websocket_answer(
    extension: bool, engine: sa.engine.Engine, tel: Telemetry
) -> None:
    """Observers see WebSocket handshakes too; a refusal closes the socket (policy violation), or answers with the
    real status where the server offers the denial-response extension, and is counted with its status."""
    statuses: list[int] = []

    class Refuse:
        def before(self, request: RequestInfo) -> tuple[int, str] | None:
            return 429, "slow down"

        def after(self, request: RequestInfo, status_code: int) -> None:
            statuses.append(status_code)

    app = middleware(engine, tel)
    app.observers = [Refuse()]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws/items",
        "headers": [],
        "client": (UNTRUSTED_PEER, 1),
        "query_string": b"",
    }
    if extension:
        scope["extensions"] = {"websocket.http.response": {}}
    await app(scope, receive, send)
    if extension:
        assert [m["type"] for m in sent] == ["websocket.http.response.start", "websocket.http.response.body"]
        assert sent[0]["status"] == 429
        assert statuses == [429]
    else:
        assert sent == [{"type": "websocket.close", "code": 1008, "reason": "slow down"}]
        assert statuses == [403]
    assert tel.db_spans() == []  # the app never ran
    assert [labels[A.HTTP_RESPONSE_STATUS_CODE] for labels, _ in tel.points(A.METRIC_HTTP_REQUESTS)] == [statuses[0]]
