"""A request observer that fails on every request never reaches the application, and its failure reaches the
application's logs once a minute, not once a request."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from tenantwatch.config import load_settings
from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.asgi import TenantwatchMiddleware


class BrokenObserver:
    def before(self, request: RequestInfo) -> tuple[int, str] | None:
        raise RuntimeError("observer bug before")

    def after(self, request: RequestInfo, status_code: int) -> None:
        raise RuntimeError("observer bug after")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def _get(middleware: TenantwatchMiddleware) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/projects",
        "raw_path": b"/projects",
        "query_string": b"",
        "headers": [(b"host", b"api.example.com")],
        "client": ("203.0.113.7", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return int(sent[0]["status"])


async def test_a_failing_observer_is_logged_once_per_minute_not_once_per_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    middleware = TenantwatchMiddleware(
        app,
        settings=load_settings(environ={}),
        observers=[BrokenObserver()],
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
    )
    with caplog.at_level(logging.WARNING, logger="tenantwatch"):
        statuses = [await _get(middleware) for _ in range(25)]
    assert statuses == [200] * 25
    observer_lines = [r for r in caplog.records if "BrokenObserver" in r.getMessage()]
    assert [r.getMessage() for r in observer_lines] == [  # one line per hook, each with its traceback
        "tenantwatch: internal error in BrokenObserver.before, ignored",
        "tenantwatch: internal error in BrokenObserver.after, ignored",
    ]
    assert all(r.exc_info is not None for r in observer_lines)
