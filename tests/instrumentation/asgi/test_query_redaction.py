"""Server spans never carry query-string secrets; request metrics never grow a label per client-chosen method."""

from __future__ import annotations

from typing import Any

import httpx
from asgi_support import get

from tenantwatch import attributes as A

SECRETS = ("s3cr3t-token-value", "hunter2", "sk_live_abc123", "oauth-code-xyz", "sess-99")
QUERY = (
    "/items?page=2&access_token=s3cr3t-token-value&password=hunter2&api_key=sk_live_abc123"
    "&code=oauth-code-xyz&SessionId=sess-99&q=shoes"
)


async def test_query_string_values_are_redacted_by_key_on_the_server_span(build: Any) -> None:
    stack, app = build()
    await get(app, QUERY)
    (server,) = stack.servers()
    text = repr(dict(server.attributes or {}))
    for secret in SECRETS:
        assert secret not in text
    url = str((server.attributes or {})[A.HTTP_URL])
    assert url.endswith(
        "/items?page=2&access_token=REDACTED&password=REDACTED&api_key=REDACTED&code=REDACTED"
        "&SessionId=REDACTED&q=shoes"
    )


async def test_the_redacted_keys_are_configurable(build: Any) -> None:
    stack, app = build(http={"redact_query_keys": "page"})
    await get(app, QUERY)
    url = str(stack.server()[A.HTTP_URL])
    assert "page=REDACTED" in url
    assert "password=hunter2" in url  # only the configured words count


async def test_new_semconv_url_query_is_redacted(build: Any, monkeypatch: Any) -> None:
    from opentelemetry.instrumentation import _semconv

    stability = _semconv._OpenTelemetrySemanticConventionStability  # restored as it was after the test
    monkeypatch.setattr(stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})
    monkeypatch.setattr(stability, "_initialized", False)
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    stack, app = build()
    await get(app, QUERY)
    server = stack.server()
    assert A.URL_QUERY in server
    for secret in SECRETS:
        assert secret not in repr(server)


async def test_unknown_methods_share_one_label_value(build: Any) -> None:
    stack, app = build()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example.com") as client:
        for index in range(30):
            await client.request(f"X{index}", "/whoami")
        await client.get("/whoami")
    methods = {labels[A.HTTP_REQUEST_METHOD] for labels, _ in stack.points(A.METRIC_HTTP_REQUESTS)}
    assert methods == {"GET", A.OTHER_METHOD}
