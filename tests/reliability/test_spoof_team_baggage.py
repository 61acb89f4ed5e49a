"""A tenant hierarchy (organization ⊃ team) under row level security: the team is only ever a trusted one.

On real PostgreSQL, ``notes`` has RLS enabled and forced with a policy on both ``app.tenant_id`` and ``app.team_id``
(``rls.key_settings: {team: app.team_id}``). Over HTTP and WebSocket: a team member named by a trusted proxy reads
only their team's rows; an untrusted peer's baggage names no organization and no team and reads nothing; a verified
token's organization with a team only claimed in baggage reads nothing either (the team setting is cleared, never
taken from the claim). Outside requests, a team left on a pooled connection is cleared by the next transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import pytest
import sqlalchemy as sa
import sqlalchemy.ext.asyncio
from _spoof_support import (
    DRIVERS,
    TRUSTED_CIDR,
    TRUSTED_PEER,
    UNTRUSTED_PEER,
    Telemetry,
    telemetry,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import current_context, set_tenant_hierarchy, tenant_context
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor
from tenantwatch.instrumentation.asgi import instrument_app

pytestmark = pytest.mark.postgres

SECRET = "team-test-secret-that-is-long-enough-for-hs256"
NOTES = [("acme", "t-1"), ("acme", "t-1"), ("acme", "t-2"), ("globex", "t-1"), ("globex", "t-3")]
"""(organization, team) of each row of ``notes``; ``t-1`` exists in both organizations."""
PATHS = {"http": "/notes", "websocket": "/ws/notes"}
SCOPES = ["http", "websocket"]
TEAM = A.tenant_key_attribute("team")
NOTHING = {"tenant": None, "team": None, "rows": []}


@contextmanager
def _team_database(postgres_dsn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    import psycopg

    suffix = uuid.uuid4().hex[:10]
    schema, role = f"team_{suffix}", f"tw_team_{suffix}"
    with psycopg.connect(autocommit=True, **postgres_dsn) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        conn.execute(
            "CREATE TABLE notes (id integer PRIMARY KEY, organization_id text NOT NULL, team_id text NOT NULL)"
        )
        conn.execute("ALTER TABLE notes ENABLE ROW LEVEL SECURITY")
        conn.execute("ALTER TABLE notes FORCE ROW LEVEL SECURITY")
        conn.execute(
            "CREATE POLICY team_isolation ON notes USING (organization_id = current_setting('app.tenant_id', true) "
            "AND team_id = current_setting('app.team_id', true))"
        )
        for row, (organization, team) in enumerate(NOTES, start=1):
            conn.execute("INSERT INTO notes VALUES (%s, %s, %s)", (row, organization, team))
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(f"GRANT SELECT ON notes TO {role}")
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


@pytest.fixture
def tel() -> Iterator[Telemetry]:
    made = telemetry()
    yield made
    made.provider.shutdown()


@pytest.fixture
def team_db(postgres_dsn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    with _team_database(postgres_dsn) as db:
        yield db


@pytest.fixture
def engine(team_db: dict[str, Any], tel: Telemetry) -> Iterator[sa.engine.Engine]:
    """Instrumented with RLS assist (``app.tenant_id`` and ``app.team_id``); one pooled connection."""
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    settings = load_settings(
        environ={},
        rls={"enabled": True, "key_settings": {"team": "app.team_id"}},
        discover=False,
        tenant_tables={"notes": "organization_id"},
    )
    instrumentor.instrument(tracer_provider=tel.provider, install_processor=False, settings=settings)
    set_tenant_hierarchy("organization", ["team"])  # after instrument(): it declares the hierarchy it was given
    db = team_db
    url = f"postgresql+psycopg://{db['user']}@{db['host']}:{db['port']}/{db['dbname']}"
    created = sa.create_engine(
        url, connect_args={"options": f"-csearch_path={db['schema']}"}, pool_size=1, max_overflow=0
    )
    try:
        yield created
    finally:
        created.dispose()
        instrumentor.uninstrument()
        set_tenant_hierarchy("tenant")
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        otel = SQLAlchemyInstrumentor()
        if otel.is_instrumented_by_opentelemetry:
            otel.uninstrument()


def _read(engine: sa.engine.Engine) -> dict[str, Any]:
    ctx = current_context()
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT organization_id, team_id FROM notes ORDER BY id"))]
    return {"tenant": ctx.tenant_id, "team": ctx.value_of("team"), "rows": [list(r) for r in rows]}


def _app(engine: sa.engine.Engine, tel: Telemetry, key_file: Path) -> Any:
    def http_notes(request: Request) -> JSONResponse:
        return JSONResponse(_read(engine))

    async def ws_notes(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(_read(engine))
        await websocket.close()

    app = Starlette(routes=[Route("/notes", http_notes), WebSocketRoute("/ws/notes", ws_notes)])
    http = {
        "trusted_proxies": [TRUSTED_CIDR],
        "key_headers": {"team": "x-team-id"},
        "key_claims": {"team": "team_id"},
        "jwt_key_file": str(key_file),
        "jwt_algorithms": ["HS256"],
    }
    return instrument_app(
        app,
        settings=load_settings(environ={}, http=http),
        tracer_provider=tel.provider,
        meter_provider=tel.meter_provider,
        observers=[],
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt.key"
    path.write_text(SECRET)
    return path


def _bearer(**claims: Any) -> str:
    payload = {"sub": "alice", "exp": int(time.time()) + 600, **claims}
    return "Bearer " + jwt.encode(payload, SECRET, algorithm="HS256")


def _db_spans(tel: Telemetry) -> list[dict[str, Any]]:
    return [
        dict(s.attributes or {}) for s in tel.spans() if "FROM notes" in str((s.attributes or {}).get(A.DB_STATEMENT))
    ]


@pytest.mark.parametrize("kind", SCOPES)
async def test_a_team_member_reads_only_their_teams_rows(
    kind: str, engine: sa.engine.Engine, tel: Telemetry, key_file: Path
) -> None:
    app = _app(engine, tel, key_file)
    headers = {"x-tenant-id": "acme", "x-team-id": "t-1"}
    answer = await DRIVERS[kind](app, PATHS[kind], peer=TRUSTED_PEER, **headers)
    assert answer == {"tenant": "acme", "team": "t-1", "rows": [["acme", "t-1"], ["acme", "t-1"]]}
    assert tel.server()[TEAM] == "t-1"
    assert [(span[A.TENANT_ID], span[TEAM]) for span in _db_spans(tel)] == [("acme", "t-1")]


@pytest.mark.parametrize("kind", SCOPES)
async def test_untrusted_baggage_names_no_team_and_reads_nothing(
    kind: str, engine: sa.engine.Engine, tel: Telemetry, key_file: Path
) -> None:
    app = _app(engine, tel, key_file)
    spoofed = {"baggage": "tenant.id=acme,tenant.team.id=t-1", "x-team-id": "t-1"}
    answer = await DRIVERS[kind](app, PATHS[kind], peer=UNTRUSTED_PEER, **spoofed)
    assert answer == NOTHING
    server = tel.server()
    assert A.TENANT_ID not in server and TEAM not in server
    assert all(TEAM not in span and A.TENANT_ID not in span for span in _db_spans(tel))
    assert [value for _, value in tel.points(A.METRIC_IGNORED_HEADERS)] == [2]  # the team header, the baggage


@pytest.mark.parametrize("kind", SCOPES)
async def test_a_verified_organization_with_a_team_only_claimed_in_baggage_reads_nothing(
    kind: str, engine: sa.engine.Engine, tel: Telemetry, key_file: Path
) -> None:
    """The organization is trusted (a verified token), the team is only a peer's claim: the team setting is
    cleared, so the team policy lets no row through; the token's own team claim does."""
    app = _app(engine, tel, key_file)
    claimed = {"authorization": _bearer(tenant_id="acme"), "baggage": "tenant.team.id=t-1", "x-team-id": "t-1"}
    answer = await DRIVERS[kind](app, PATHS[kind], peer=UNTRUSTED_PEER, **claimed)
    assert answer == {"tenant": "acme", "team": None, "rows": []}
    assert TEAM not in tel.server()
    tel.clear()
    verified = {"authorization": _bearer(tenant_id="acme", team_id="t-2"), "baggage": "tenant.team.id=t-1"}
    answer = await DRIVERS[kind](app, PATHS[kind], peer=UNTRUSTED_PEER, **verified)
    assert answer == {"tenant": "acme", "team": "t-2", "rows": [["acme", "t-2"]]}


def test_a_team_left_on_a_pooled_connection_is_cleared(engine: sa.engine.Engine) -> None:
    """A session-level ``SET app.team_id`` (and organization) left by other code: the next transaction of an
    organization-only context, or of no context at all, sees no team."""
    with engine.connect() as conn:  # the pool's one connection
        conn.execute(sa.text("SET app.team_id = 't-1'"))
        conn.execute(sa.text("SET app.tenant_id = 'acme'"))
        conn.commit()
    with tenant_context("acme"):
        assert _read(engine)["rows"] == []
    assert _read(engine)["rows"] == []
    with tenant_context("acme", team="t-1"):
        assert _read(engine)["rows"] == [["acme", "t-1"], ["acme", "t-1"]]
    with tenant_context("globex", team="t-1"):  # the same team name in another organization
        assert _read(engine)["rows"] == [["globex", "t-1"]]


@pytest.mark.parametrize("driver", ["psycopg2", "asyncpg"])
async def test_the_team_setting_binds_on_other_drivers(
    driver: str, engine: sa.engine.Engine, team_db: dict[str, Any]
) -> None:
    """The assist's statement binds every setting and value as a parameter: pyformat (psycopg2) and numbered
    (asyncpg) placeholders both reach PostgreSQL, and the team policy sees the team."""
    url = engine.url.set(drivername=f"postgresql+{driver}")
    schema = team_db["schema"]
    query = sa.text("SELECT organization_id, team_id FROM notes ORDER BY id")
    with tenant_context("acme", team="t-2"):
        if driver == "asyncpg":
            aengine = sqlalchemy.ext.asyncio.create_async_engine(
                url, connect_args={"server_settings": {"search_path": schema}}
            )
            try:
                async with aengine.connect() as conn:
                    rows = [list(r) for r in await conn.execute(query)]
            finally:
                await aengine.dispose()
        else:
            other = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
            try:
                with other.connect() as conn:
                    rows = [list(r) for r in conn.execute(query)]
            finally:
                other.dispose()
    assert rows == [["acme", "t-2"]]
