"""The ASGI middleware end to end: resolvers, span attributes, request metrics, security signals, blocking, baggage."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from asgi_support import findings, get, token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A

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
