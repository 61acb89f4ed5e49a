"""Resolver rules a user relies on: trust boundaries, token checks and caching, subdomain and path edge cases."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from asgi_support import SECRET, get, token
from fastapi import FastAPI

from tenantwatch import attributes as A
from tenantwatch.config import load_settings
from tenantwatch.context import current_context
from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import jwt as jwt_resolver
from tenantwatch.instrumentation.resolvers.jwt import JWTResolver


def request_with(**headers: str) -> RequestInfo:
    return RequestInfo(
        method="GET",
        path="/",
        query_string="",
        headers=tuple((k.lower(), v) for k, v in headers.items()),
        client_address="203.0.113.7",
        host="api.example.com",
    )


async def test_forwarded_for_from_an_untrusted_peer_does_not_change_client_address(build: Any) -> None:
    stack, app = build(http={"trusted_proxies": ["10.0.0.0/8"]})
    await get(app, "/whoami", peer="203.0.113.7", **{"x-forwarded-for": "198.51.100.4"})
    assert stack.server()[A.CLIENT_ADDRESS] == "203.0.113.7"


async def test_client_address_is_the_right_most_hop_that_is_not_a_trusted_proxy(build: Any) -> None:
    stack, app = build(http={"trusted_proxies": ["10.0.0.0/8"]})
    # the client forged the first hop; our proxies appended the real client and each other
    await get(app, "/whoami", peer="10.0.0.1", **{"x-forwarded-for": "1.2.3.4, 198.51.100.9, 10.0.0.2"})
    assert stack.server()[A.CLIENT_ADDRESS] == "198.51.100.9"


async def test_trust_headers_honors_the_tenant_header_from_any_peer(build: Any) -> None:
    stack, app = build(http={"trust_headers": True})
    response = await get(app, "/whoami", peer="203.0.113.7", **{"x-tenant-id": "5", "x-user-role": "admin"})
    assert response.json() == {"tenant": "5", "user": None, "role": "admin"}
    assert stack.points(A.METRIC_IGNORED_HEADERS) == []


async def test_alg_none_is_refused_even_when_configured(build: Any) -> None:
    stack, app = build(http={"jwt_algorithms": ["none", "HS256"]})
    unsigned = jwt.encode({"tenant_id": "1", "exp": int(time.time()) + 60}, None, algorithm="none")
    assert (await get(app, "/whoami", authorization=f"Bearer {unsigned}")).json()["tenant"] is None
    assert stack.server()[A.TOKEN_REJECTED] == "unsigned"


async def test_a_valid_token_from_an_untrusted_peer_still_counts_and_beats_a_spoofed_header(build: Any) -> None:
    stack, app = build(http={"trusted_proxies": ["10.0.0.0/8"]})
    response = await get(app, "/whoami", authorization=f"Bearer {token()}", **{"x-tenant-id": "2"})
    assert response.json()["tenant"] == "1"
    assert stack.server()[A.TENANT_SOURCE] == "jwt"


async def test_wrong_issuer_and_premature_tokens_are_rejected(build: Any) -> None:
    stack, app = build(http={"jwt_issuer": "https://idp.example.com"})
    wrong = token({"iss": "https://evil.example.com"})
    assert (await get(app, "/whoami", authorization=f"Bearer {wrong}")).json()["tenant"] is None
    assert stack.server()[A.TOKEN_REJECTED] == "invalid_issuer"
    early = token({"iss": "https://idp.example.com", "nbf": int(time.time()) + 600})
    assert (await get(app, "/whoami", authorization=f"Bearer {early}")).json()["tenant"] is None
    assert stack.server()[A.TOKEN_REJECTED] == "not_yet_valid"
    good = token({"iss": "https://idp.example.com"})
    assert (await get(app, "/whoami", authorization=f"Bearer {good}")).json()["tenant"] == "1"
    reasons = sorted(labels["reason"] for labels, _ in stack.points(A.METRIC_REJECTED_TOKENS))
    assert reasons == ["invalid_issuer", "not_yet_valid"]


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(SECRET)
    clock = Clock()
    resolver = JWTResolver(load_settings(environ={}, http={"jwt_key_file": str(key)}).http, clock=clock)
    request = request_with(authorization=f"Bearer {token({'exp': int(clock.now) + 60})}")
    first = resolver.resolve(request)
    assert first is not None and first.tenant_id == "1"
    again = resolver.resolve(request)  # from the cache
    assert again == first
    clock.now += 61
    expired = resolver.resolve(request)
    assert expired is not None and expired.tenant_id is None and expired.rejected == "expired"


def test_remembered_tokens_are_forgotten_when_the_key_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwt_resolver._KeyFile, "_RECHECK_SECONDS", 0.0)
    key = tmp_path / "key"
    key.write_text(SECRET)
    resolver = JWTResolver(load_settings(environ={}, http={"jwt_key_file": str(key)}).http)
    request = request_with(authorization=f"Bearer {token()}")
    found = resolver.resolve(request)
    assert found is not None and found.tenant_id == "1"
    key.write_text("a-rotated-secret-a-rotated-secret-a-rotated")
    stat = key.stat()
    os.utime(key, (stat.st_atime, stat.st_mtime + 5))
    rotated = resolver.resolve(request)
    assert rotated is not None and rotated.tenant_id is None and rotated.rejected == "invalid_signature"


def test_the_token_cache_is_bounded(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text(SECRET)
    resolver = JWTResolver(load_settings(environ={}, http={"jwt_key_file": str(key)}).http, cache_size=8)
    for tenant in range(50):
        found = resolver.resolve(request_with(authorization=f"Bearer {token({'tenant_id': str(tenant)})}"))
        assert found is not None and found.tenant_id == str(tenant)
    assert len(resolver._verified) == 8


@pytest.mark.parametrize(
    ("host", "tenant"),
    [
        ("acme.example.com", "acme"),
        ("ACME.Example.com:8443", "acme"),
        ("example.com", None),
        ("acme.example.com.evil.net", None),
        ("a.b.example.com", None),
        ("notexample.com", None),
    ],
)
async def test_subdomain_resolver(build: Any, host: str, tenant: str | None) -> None:
    _, app = build(http={"subdomain_base": "example.com", "resolvers": ["subdomain"]})
    response = await get(app, "/whoami", host=host)
    assert response.json()["tenant"] == tenant


def fastapi_app(engine: Any) -> FastAPI:
    api = FastAPI()

    @api.get("/orgs/summary")
    async def summary() -> dict[str, Any]:
        return {"tenant": current_context().tenant_id}

    @api.get("/orgs/{org_id}/objectives/{objective_id}")
    async def objective(org_id: str, objective_id: int) -> dict[str, Any]:
        return {"tenant": current_context().tenant_id}

    @api.get("/teams/{org_id}")
    async def team(org_id: str) -> dict[str, Any]:
        return {"tenant": current_context().tenant_id}

    return api


async def test_path_resolver_reads_the_matched_routes_parameter(build: Any) -> None:
    stack, app = build(http={"path_param": "org_id", "resolvers": ["path"]}, inner=fastapi_app)
    assert (await get(app, "/orgs/acme/objectives/3")).json()["tenant"] == "acme"
    server = stack.server()
    assert server[A.TENANT_SOURCE] == "path"
    assert server[A.HTTP_ROUTE] == "/orgs/{org_id}/objectives/{objective_id}"
    # a route whose template names org_id anywhere, not only after /orgs/
    assert (await get(app, "/teams/globex")).json()["tenant"] == "globex"
    # a matched route without the parameter: no tenant (the segment rule would have said "summary")
    assert (await get(app, "/orgs/summary")).json()["tenant"] is None


async def test_path_resolver_falls_back_to_the_segment_rule_without_a_router(build: Any) -> None:
    async def raw(scope: Any, receive: Any, send: Any) -> None:
        body = str(current_context().tenant_id).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    _, app = build(http={"path_param": "org_id", "resolvers": ["path"]}, inner=lambda engine: raw)
    assert (await get(app, "/orgs/initech/things")).text == "initech"
    assert (await get(app, "/things")).text == "None"


async def test_a_sync_callable_resolver_runs_first_and_none_falls_through(build: Any) -> None:
    from tenantwatch.context import TenantContext

    def resolver(request: RequestInfo) -> TenantContext | None:
        org = request.header("x-org")
        return TenantContext(tenant_id=org, role="member") if org else None

    stack, app = build(resolver=resolver)
    bearer = f"Bearer {token({'tenant_id': '1'})}"
    assert (await get(app, "/whoami", authorization=bearer, **{"x-org": "custom"})).json()["tenant"] == "custom"
    assert stack.server()[A.TENANT_SOURCE] == "callable"
    assert (await get(app, "/whoami", authorization=bearer)).json()["tenant"] == "1"  # None: the JWT decides
    assert stack.server()[A.TENANT_SOURCE] == "jwt"
