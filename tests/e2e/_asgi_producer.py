"""Run in a subprocess by the pipeline test: a small tenantwatch-instrumented ASGI service exporting OTLP to the
collector, driven through normal requests, a bad token, auth failures and a response-action block, so every HTTP
metric the dashboards and alert rules name is produced by the real middleware."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time

import httpx
import jwt
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import tenantwatch
from tenantwatch.context import current_context

SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e"


def main() -> int:
    workdir = tempfile.mkdtemp()
    with open(os.path.join(workdir, "key"), "w") as handle:
        handle.write(SECRET)
    engine = sa.create_engine(f"sqlite:///{os.path.join(workdir, 'e2e.db')}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE notes (id integer PRIMARY KEY, organization_id text NOT NULL, body text)"))
        conn.execute(sa.text("INSERT INTO notes VALUES (1, 'acme', 'a'), (2, 'globex', 'b')"))
    settings = tenantwatch.load_settings(
        http={"jwt_key_file": os.path.join(workdir, "key"), "jwt_algorithms": ["HS256"]},
        blocking={"enabled": True, "threshold": 2, "block_seconds": 60},
    )
    handle = tenantwatch.configure(engine=engine, settings=settings)

    def notes(request: Request) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id FROM notes WHERE organization_id = :t"), {"t": current_context().tenant_id}
            ).all()
        return JSONResponse({"count": len(rows)})

    def all_notes(request: Request) -> JSONResponse:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id FROM notes")).all()
        return JSONResponse({"count": len(rows)})

    def login(request: Request) -> Response:
        return Response(status_code=401)

    app = handle.instrument_app(
        Starlette(routes=[Route("/notes", notes), Route("/all-notes", all_notes), Route("/login", login)])
    )
    good = jwt.encode({"tenant_id": "acme", "sub": "alice", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    expired = jwt.encode({"tenant_id": "acme", "exp": int(time.time()) - 10}, SECRET, algorithm="HS256")

    async def drive() -> list[int]:
        statuses = []
        transport = httpx.ASGITransport(app=app, client=("198.51.100.77", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            for path, token in (
                ("/notes", good),
                ("/notes", expired),
                ("/login", None),
                ("/login", None),
                ("/all-notes", good),
                ("/all-notes", good),
                ("/notes", good),
            ):
                headers = {"authorization": f"Bearer {token}"} if token else {}
                statuses.append((await client.get(path, headers=headers)).status_code)
        return statuses

    statuses = asyncio.run(drive())
    handle.shutdown()
    print(" ".join(map(str, statuses)))
    return 0 if statuses[-1] == 429 else 1


if __name__ == "__main__":
    sys.exit(main())
