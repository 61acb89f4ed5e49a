"""Tenant hierarchies through the ASGI middleware: the source that names the organization names the team too
(trusted header, verified JWT claim, custom callable, trusted baggage), never an untrusted peer, never without the
organization. Checked where a user sees it: the app's tenant context, the server span and the db span."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from asgi_support import get, token
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenantwatch import attributes as A
from tenantwatch.context import TenantContext, current_context, set_tenant_hierarchy
from tenantwatch.core.request import RequestInfo

TRUSTED = {"trusted_proxies": ["10.0.0.0/8"]}
TRUSTED_PEER, UNTRUSTED_PEER = "10.1.2.3", "203.0.113.7"
TEAM = A.tenant_key_attribute("team")


@pytest.fixture(autouse=True)
def _reset_hierarchy() -> Iterator[None]:
    yield
    set_tenant_hierarchy("tenant")


def _organization_and_team() -> None:
    """Declared after the stack is built: the instrumentor sets the hierarchy from its settings when it starts."""
    set_tenant_hierarchy("organization", ["team"])


def _app(engine: sa.engine.Engine) -> Starlette:
    def whoami(request: Request) -> JSONResponse:
        ctx = current_context()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT id FROM items WHERE organization_id = :org"), {"org": ctx.tenant_id}).all()
        return JSONResponse({"tenant": ctx.tenant_id, "team": ctx.value_of("team"), "role": ctx.role})

    return Starlette(routes=[Route("/whoami", whoami)])


def _db_span(stack: Any) -> dict[str, Any]:
    spans = [
        dict(s.attributes or {}) for s in stack.spans() if "FROM items" in str((s.attributes or {}).get(A.DB_STATEMENT))
    ]
    assert spans, "the app's query was not traced"
    return spans[-1]


def _failures(stack: Any) -> list[tuple[dict[str, Any], int]]:
    return [(labels, point.value) for labels, point in stack.points(A.METRIC_RESOLUTION_FAILURES)]


async def test_a_trusted_proxy_names_the_team_with_the_organization(build: Any) -> None:
    stack, app = build(http={**TRUSTED, "key_headers": {"team": "X-Team-Id"}}, inner=_app)
    _organization_and_team()
    response = await get(app, "/whoami", peer=TRUSTED_PEER, **{"x-tenant-id": "acme", "x-team-id": "t-1"})
    assert response.json() == {"tenant": "acme", "team": "t-1", "role": None}
    server = stack.server()
    assert (server[A.TENANT_ID], server[TEAM], server[A.TENANT_SOURCE]) == ("acme", "t-1", "header")
    db = _db_span(stack)
    assert (db[A.TENANT_ID], db[TEAM]) == ("acme", "t-1")


async def test_an_untrusted_peer_cannot_set_or_change_the_team_by_header(build: Any) -> None:
    stack, app = build(
        http={**TRUSTED, "key_headers": {"team": "x-team-id"}, "key_claims": {"team": "team_id"}}, inner=_app
    )
    _organization_and_team()
    response = await get(app, "/whoami", peer=UNTRUSTED_PEER, **{"x-tenant-id": "acme", "x-team-id": "t-2"})
    assert response.json() == {"tenant": None, "team": None, "role": None}
    assert TEAM not in stack.server() and TEAM not in _db_span(stack)
    assert [point.value for _, point in stack.points(A.METRIC_IGNORED_HEADERS)] == [1]
    # the team header alone is a spoofing attempt too, and counted as one
    await get(app, "/whoami", peer=UNTRUSTED_PEER, **{"x-team-id": "t-2"})
    assert [point.value for _, point in stack.points(A.METRIC_IGNORED_HEADERS)] == [2]
    # a verified token names organization and team: the untrusted header does not change the team
    bearer = token({"tenant_id": "acme", "team_id": "t-1"})
    response = await get(app, "/whoami", peer=UNTRUSTED_PEER, authorization=f"Bearer {bearer}", **{"x-team-id": "t-2"})
    assert response.json() == {"tenant": "acme", "team": "t-1", "role": "member"}
    assert stack.server()[TEAM] == "t-1"


async def test_a_verified_claim_names_the_team(build: Any) -> None:
    stack, app = build(http={"key_claims": {"team": "team_id"}}, inner=_app)
    _organization_and_team()
    bearer = token({"tenant_id": "acme", "team_id": "t-1"})
    response = await get(app, "/whoami", authorization=f"Bearer {bearer}")
    assert response.json() == {"tenant": "acme", "team": "t-1", "role": "member"}
    assert (stack.server()[TEAM], _db_span(stack)[TEAM]) == ("t-1", "t-1")
    # a token without the team claim: the organization alone, no team left over from the previous request
    response = await get(app, "/whoami", authorization=f"Bearer {token({'tenant_id': 'acme'})}")
    assert response.json() == {"tenant": "acme", "team": None, "role": "member"}
    assert TEAM not in stack.server()


@pytest.mark.parametrize("source", ["header", "jwt", "callable", "baggage"])
async def test_a_team_without_the_organization_is_ignored_and_counted(source: str, build: Any) -> None:
    def resolver(request: RequestInfo) -> dict[str, str] | None:
        team = request.header("x-app-team")
        return {"team": team} if team else None

    http = {**TRUSTED, "key_headers": {"team": "x-team-id"}, "key_claims": {"team": "team_id"}}
    stack, app = build(http=http, inner=_app, resolver=resolver if source == "callable" else None)
    _organization_and_team()
    headers = {
        "header": {"x-team-id": "t-1"},
        "jwt": {"authorization": f"Bearer {token({'tenant_id': None, 'team_id': 't-1'})}"},
        "callable": {"x-app-team": "t-1"},
        "baggage": {"baggage": "tenant.team.id=t-1"},
    }[source]
    response = await get(app, "/whoami", peer=TRUSTED_PEER, **headers)
    assert response.json() == {"tenant": None, "team": None, "role": None}
    server = stack.server()
    assert server[A.TENANT_RESOLUTION_FAILED] == A.RESOLUTION_FAILED_KEY_WITHOUT_ROOT
    assert TEAM not in server and TEAM not in _db_span(stack)
    assert _failures(stack) == [({"reason": "key_without_root"}, 1)]


async def test_a_callable_returns_the_team_in_a_context_or_a_mapping(build: Any) -> None:
    def resolver(request: RequestInfo) -> TenantContext | dict[str, str]:
        if request.header("x-form") == "mapping":
            return {"organization": "acme", "team": "t-2"}
        return TenantContext("acme", role="member", keys=(("team", "t-1"),))

    stack, app = build(inner=_app, resolver=resolver)
    _organization_and_team()
    assert (await get(app, "/whoami")).json() == {"tenant": "acme", "team": "t-1", "role": "member"}
    assert (stack.server()[TEAM], stack.server()[A.TENANT_SOURCE]) == ("t-1", "callable")
    assert (await get(app, "/whoami", **{"x-form": "mapping"})).json() == {
        "tenant": "acme",
        "team": "t-2",
        "role": None,
    }
    assert _db_span(stack)[TEAM] == "t-2"


async def test_trusted_baggage_carries_the_team_and_untrusted_baggage_nothing(build: Any) -> None:
    stack, app = build(http=TRUSTED, inner=_app)
    _organization_and_team()
    sent = {"baggage": "tenant.id=acme,tenant.team.id=t-1"}
    assert (await get(app, "/whoami", peer=TRUSTED_PEER, **sent)).json() == {
        "tenant": "acme",
        "team": "t-1",
        "role": None,
    }
    assert (stack.server()[TEAM], stack.server()[A.TENANT_SOURCE]) == ("t-1", "baggage")
    assert (await get(app, "/whoami", peer=UNTRUSTED_PEER, **sent)).json() == {
        "tenant": None,
        "team": None,
        "role": None,
    }
    assert TEAM not in stack.server() and TEAM not in _db_span(stack)


async def test_finer_keys_come_only_from_the_source_that_named_the_organization(build: Any) -> None:
    """A verified token names the organization; a trusted peer's team header or baggage does not add a team to it
    (mixing sources would let a weaker one pick the team inside a verified organization)."""
    stack, app = build(http={**TRUSTED, "key_headers": {"team": "x-team-id"}}, inner=_app)
    _organization_and_team()
    bearer = token({"tenant_id": "acme"})
    sent = {"authorization": f"Bearer {bearer}", "x-team-id": "t-9", "baggage": "tenant.team.id=t-9"}
    response = await get(app, "/whoami", peer=TRUSTED_PEER, **sent)
    assert response.json() == {"tenant": "acme", "team": None, "role": "member"}
    assert TEAM not in stack.server()


async def test_with_one_tenant_key_finer_headers_are_not_read(build: Any) -> None:
    """The simple default: no hierarchy declared, so a configured team header changes nothing."""
    stack, app = build(http={**TRUSTED, "key_headers": {"team": "x-team-id"}}, inner=_app)
    response = await get(app, "/whoami", peer=TRUSTED_PEER, **{"x-tenant-id": "acme", "x-team-id": "t-1"})
    assert response.json() == {"tenant": "acme", "team": None, "role": None}
    assert TEAM not in stack.server()
    assert _failures(stack) == []
