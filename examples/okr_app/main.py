"""The OKR service: correct endpoints next to deliberately buggy ones, instrumented with tenantwatch as a user would.

    DATABASE_URL=postgresql+psycopg://... uvicorn examples.okr_app.main:app

Every request needs ``Authorization: Bearer <jwt>`` (see auth.py). The app's current-user dependency
(:func:`principal`) verifies it and runs the request in ``tenantwatch.tenant_context(<organization UUID>,
team=<team UUID>)``, as an adopter wraps their own auth dependency; tenantwatch's JWT resolver verifies the same
token for the server span. The buggy endpoints are the classic multi-tenant mistakes, one per tenantwatch rule;
docs/okr-app.md lists what each one triggers.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request
from sqlalchemy import Engine, Uuid, bindparam, create_engine, event, func, insert, select, text, update

import tenantwatch

from . import auth
from .models import CheckIn, KeyResult, Objective
from .seed import DEFAULT_TENANTS, Tenant, seed

DEFAULT_URL = "sqlite:///okr.db"

TENANT_KEYS: dict[str, Any] = {
    "organization": {"columns": ["organization_id"], "root": "organizations"},
    "team": {"columns": ["team_id"], "parent": "organization", "root": "teams"},
}
"""The app's tenant hierarchy, organization ⊃ team (the same as ``tenant_keys`` in examples/rules.yaml): a filter on
either key scopes a table, and each key is checked against the caller's value of that key."""


def okr_settings(rules_file: str | os.PathLike[str] | None = None, **overrides: Any) -> tenantwatch.Settings:
    """The tenantwatch settings of the app: its tenant hierarchy, and the bearer token verified with the app's
    secret. ``rules_file`` and ``overrides`` go to :func:`tenantwatch.load_settings` (``environ``, ``rules``, ...;
    ``tenant_keys=None`` leaves the hierarchy to the rules file)."""
    overrides.setdefault("http", {"jwt_key_file": auth.secret_file(), "resolvers": ["jwt"]})
    overrides.setdefault("tenant_keys", TENANT_KEYS)
    return tenantwatch.load_settings(rules_file, **overrides)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the organization (tenant), team, user and role from the verified bearer token."""

    org: uuid.UUID
    user: str | None
    role: str | None
    team: uuid.UUID | None = None

    def team_id(self) -> uuid.UUID:
        """The caller's team; 403 for a token that names none."""
        if self.team is None:
            raise HTTPException(status_code=403, detail="this token names no team")
        return self.team


ContextForm = Literal["uuid", "text", "hex"]
"""How :func:`principal` hands the organization id to ``tenant_context``: the ``uuid.UUID`` itself, its dashed text
or its 32 hex digits. Applications do all three; tenantwatch compares them canonically with what the database binds
(a UUID on PostgreSQL, hex text on SQLite)."""

_CONTEXT_FORMS: dict[str, Callable[[uuid.UUID], object]] = {"uuid": lambda u: u, "text": str, "hex": lambda u: u.hex}


def _caller(request: Request) -> Caller:
    """The caller named by the request's verified bearer token; 401 without one."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise ValueError("no bearer token")
        claims = auth.verify(token.strip())
        team = claims.get("team_id")
        return Caller(
            org=uuid.UUID(str(claims["tenant_id"])),
            user=str(claims["sub"]),
            role=str(claims["role"]),
            team=None if team is None else uuid.UUID(str(team)),
        )
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise HTTPException(status_code=401, detail="a valid bearer token is required") from exc


async def principal(request: Request) -> AsyncIterator[Caller]:
    """The current-user dependency: the caller, with the rest of the request run in their tenant context.

    An *async* generator on purpose: FastAPI runs it in the request's task, so the context entered before ``yield``
    holds for the endpoint (sync endpoints run in the thread pool with a copy of it) and is left after it. The
    organization id goes to the context in the app's :data:`ContextForm` (``app.state.context_form``).
    """
    caller = _caller(request)
    to_context = _CONTEXT_FORMS[getattr(request.app.state, "context_form", "uuid")]
    keys = {} if caller.team is None else {"team": to_context(caller.team)}
    with tenantwatch.tenant_context(to_context(caller.org), user_id=caller.user, role=caller.role, **keys):
        yield caller


Who = Annotated[Caller, Depends(principal)]


def _pg_sleep(seconds: float) -> int:
    """``pg_sleep`` for SQLite, so the slow report is slow on both databases."""
    time.sleep(float(seconds))
    return 0


def _engine(url: str) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _functions(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            dbapi_connection.create_function("pg_sleep", 1, _pg_sleep)

    return engine


_ORG = bindparam("org", type_=Uuid())
"""The organization id in raw ``text()`` SQL: typed, so each database gets the form its column holds (a native
``uuid`` on PostgreSQL, hex text on SQLite) instead of whatever the driver makes of a ``uuid.UUID``."""


def build_api(engine: Engine, *, context_form: ContextForm = "uuid") -> FastAPI:
    api = FastAPI(title="OKR example (tenantwatch)")
    api.state.context_form = context_form

    @api.get("/healthz")
    def healthz() -> dict[str, str]:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    # --- correct endpoints -----------------------------------------------------------------------------------

    @api.get("/objectives")
    def list_objectives(who: Who, limit: int = 20) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Objective.id, Objective.title, Objective.status)
                .where(Objective.organization_id == who.org)
                .order_by(Objective.id)
                .limit(min(limit, 100))
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/objectives/{objective_id}")
    def get_objective(who: Who, objective_id: int) -> dict[str, Any]:
        with engine.connect() as conn:
            row = conn.execute(
                select(Objective.id, Objective.title, Objective.status).where(
                    Objective.id == objective_id, Objective.organization_id == who.org
                )
            ).first()
        if row is None:
            raise HTTPException(status_code=404)
        return dict(row._mapping)

    @api.get("/objectives/{objective_id}/key-results")
    def key_results(who: Who, objective_id: int) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(KeyResult.id, KeyResult.title, KeyResult.progress).where(
                    KeyResult.objective_id == objective_id, KeyResult.organization_id == who.org
                )
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/search")
    def search(who: Who, q: str) -> list[dict[str, Any]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(Objective.id, Objective.title)
                .where(Objective.organization_id == who.org, Objective.title.like(f"%{q}%"))
                .limit(20)
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.post("/objectives/{objective_id}/done")
    def mark_done(who: Who, objective_id: int) -> dict[str, int]:
        with engine.begin() as conn:
            changed = conn.execute(
                update(Objective)
                .where(Objective.id == objective_id, Objective.organization_id == who.org)
                .values(status="done")
            ).rowcount
        return {"updated": changed}

    @api.post("/objectives/archive")
    def archive_done(who: Who) -> dict[str, int]:
        """Archives the caller's done objectives: a bulk update, scoped to the tenant."""
        with engine.begin() as conn:
            changed = conn.execute(
                update(Objective)
                .where(Objective.organization_id == who.org, Objective.status == "done")
                .values(status="archived")
            ).rowcount
        return {"updated": changed}

    # --- correct team endpoints: filtered by the finer key (team) only ----------------------------------------

    @api.get("/team/key-results")
    def team_key_results(who: Who) -> list[dict[str, Any]]:
        """The caller's team's key results: ``team_id`` alone scopes them (a team is inside one organization)."""
        with engine.connect() as conn:
            rows = conn.execute(
                select(KeyResult.id, KeyResult.title, KeyResult.progress)
                .where(KeyResult.team_id == who.team_id())
                .order_by(KeyResult.id)
                .limit(100)
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/team/check-ins")
    def team_check_ins(who: Who) -> list[dict[str, Any]]:
        """The caller's team's check-ins (a table that only has ``team_id``)."""
        with engine.connect() as conn:
            rows = conn.execute(
                select(CheckIn.id, CheckIn.key_result_id, CheckIn.progress, CheckIn.note)
                .where(CheckIn.team_id == who.team_id())
                .order_by(CheckIn.id)
                .limit(100)
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.post("/team/key-results/{key_result_id}/check-ins")
    def check_in(who: Who, key_result_id: int, progress: int, note: str = "") -> dict[str, int]:
        """Records a check-in on one of the caller's team's key results (INSERT with the team's id)."""
        team = who.team_id()
        with engine.begin() as conn:
            found = conn.execute(
                select(KeyResult.id).where(KeyResult.id == key_result_id, KeyResult.team_id == team)
            ).first()
            if found is None:
                raise HTTPException(status_code=404)
            conn.execute(
                insert(CheckIn).values(team_id=team, key_result_id=key_result_id, progress=progress, note=note)
            )
        return {"created": 1}

    # --- deliberately buggy endpoints ------------------------------------------------------------------------

    @api.get("/buggy/objectives")
    def buggy_list_all(who: Who) -> list[dict[str, Any]]:
        """Forgot the tenant filter: every tenant's objectives (missing_tenant_filter)."""
        with engine.connect() as conn:
            rows = conn.execute(select(Objective.id, Objective.title).order_by(Objective.id).limit(50)).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/buggy/objectives/{objective_id}")
    def buggy_lookup(who: Who, objective_id: int, org_id: uuid.UUID) -> dict[str, Any]:
        """Trusts an organization id from the query string (cross_tenant when it is not the caller's)."""
        with engine.connect() as conn:
            row = conn.execute(
                select(Objective.id, Objective.title).where(
                    Objective.id == objective_id, Objective.organization_id == org_id
                )
            ).first()
        return {} if row is None else dict(row._mapping)

    @api.post("/buggy/objectives/archive-all")
    def buggy_archive_all(who: Who) -> dict[str, int]:
        """Archives done objectives of EVERY tenant (unscoped_write)."""
        with engine.begin() as conn:
            changed = conn.execute(
                update(Objective).where(Objective.status == "done").values(status="archived")
            ).rowcount
        return {"updated": changed}

    @api.post("/admin/objectives/{objective_id}/title")
    def admin_retitle(who: Who, objective_id: int, title: str) -> dict[str, int]:
        """A write by an admin/superuser session (superuser_write), scoped correctly otherwise."""
        with engine.begin() as conn:
            changed = conn.execute(
                update(Objective)
                .where(Objective.id == objective_id, Objective.organization_id == who.org)
                .values(title=title)
            ).rowcount
        return {"updated": changed}

    @api.get("/buggy/export")
    def buggy_export(who: Who) -> dict[str, int]:
        """Exports every objective of the tenant in one go (large_result above 1,000 rows)."""
        with engine.connect() as conn:
            rows = conn.execute(
                select(Objective.id, Objective.title, Objective.status).where(Objective.organization_id == who.org)
            ).all()
        return {"exported": len(rows)}

    @api.get("/buggy/report")
    def buggy_report(who: Who) -> dict[str, int]:
        """A report query that takes 0.6 s (slow_query)."""
        with engine.connect() as conn:
            count = conn.execute(
                text(
                    "WITH pause AS MATERIALIZED (SELECT pg_sleep(0.6) AS slept) "
                    "SELECT count(*) FROM objectives CROSS JOIN pause WHERE objectives.organization_id = :org"
                ).bindparams(_ORG),
                {"org": who.org},
            ).scalar_one()
        return {"objectives": int(count)}

    @api.get("/buggy/search")
    def buggy_search(who: Who, q: str) -> list[dict[str, Any]]:
        """Raw SQL with a string-built WHERE (injection_signal: the request value is in the SQL text)."""
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT id, title FROM objectives WHERE organization_id = :org AND title LIKE '%{q}%' LIMIT 20"
                ).bindparams(_ORG),
                {"org": who.org},
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/buggy/team/key-results")
    def buggy_team_key_results(who: Who, team_id: uuid.UUID) -> list[dict[str, Any]]:
        """Trusts a team id from the query string: another team's key results, even inside the caller's own
        organization (cross_tenant on the ``team`` key)."""
        with engine.connect() as conn:
            rows = conn.execute(
                select(KeyResult.id, KeyResult.title)
                .where(KeyResult.team_id == team_id)
                .order_by(KeyResult.id)
                .limit(100)
            ).all()
        return [dict(r._mapping) for r in rows]

    @api.post("/buggy/team/key-results/{key_result_id}/check-ins")
    def buggy_check_in(who: Who, key_result_id: int, team_id: uuid.UUID, progress: int) -> dict[str, int]:
        """Stamps the check-in with a team id from the query string instead of the caller's (cross_tenant: it
        writes another team's row)."""
        with engine.begin() as conn:
            conn.execute(
                insert(CheckIn).values(team_id=team_id, key_result_id=key_result_id, progress=progress, note="")
            )
        return {"created": 1}

    @api.get("/buggy/check-ins")
    def buggy_check_ins(who: Who) -> list[dict[str, Any]]:
        """Forgot the team filter on a team-only table: every team's check-ins, of every organization
        (missing_tenant_filter)."""
        with engine.connect() as conn:
            rows = conn.execute(select(CheckIn.id, CheckIn.note).order_by(CheckIn.id.desc()).limit(50)).all()
        return [dict(r._mapping) for r in rows]

    @api.get("/stats")
    def stats(who: Who) -> dict[str, int]:
        with engine.connect() as conn:
            total = conn.execute(
                select(func.count()).select_from(Objective).where(Objective.organization_id == who.org)
            ).scalar_one()
        return {"objectives": int(total)}

    return api


def create_app(
    database_url: str | None = None,
    *,
    tenants: tuple[Tenant, ...] = DEFAULT_TENANTS,
    settings: tenantwatch.Settings | None = None,
    context_form: ContextForm = "uuid",
    **configure: Any,
) -> tuple[Any, tenantwatch.TenantwatchHandle, Engine]:
    """The instrumented ASGI app, the tenantwatch handle and the engine. ``configure`` goes to
    :func:`tenantwatch.configure` (exporters, service name, ...); ``context_form`` is how the tenant is handed to the
    context (:data:`ContextForm`)."""
    engine = _engine(database_url or os.environ.get("DATABASE_URL") or DEFAULT_URL)
    seed(engine, tenants)
    # tenantwatch, as a user sets it up: verify the bearer token, then instrument SQLAlchemy and the app.
    if settings is None:
        settings = okr_settings()
    configure.setdefault("service_name", os.environ.get("OTEL_SERVICE_NAME") or "okr-app")
    handle = tenantwatch.configure(settings=settings, engine=engine, **configure)
    return handle.instrument_app(build_api(engine, context_form=context_form)), handle, engine


def __getattr__(name: str) -> Any:
    """``app`` is built on first access (``uvicorn examples.okr_app.main:app``), not at import."""
    if name == "app":
        application = create_app()[0]
        globals()["app"] = application
        return application
    raise AttributeError(name)
