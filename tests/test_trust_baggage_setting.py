"""``trust_baggage`` (``TENANTWATCH_TRUST_BAGGAGE``): the operator's decision that every peer is trusted, so incoming
baggage is the tenant where nothing set a context; off by default, and the ASGI middleware still decides per peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context

from tenantwatch import load_settings, tenant_context
from tenantwatch.context import current_context, set_baggage_trust
from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor


@pytest.fixture
def spoofed() -> Iterator[None]:
    ctx = baggage.set_baggage("tenant.id", "globex")
    ctx = baggage.set_baggage("enduser.role", "superuser", ctx)
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)
        set_baggage_trust(False)


def test_baggage_is_not_the_context_by_default(spoofed: None) -> None:
    assert current_context().tenant_id is None
    assert current_context().role is None


def test_the_setting_defaults_off_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().trust_baggage is False
    monkeypatch.setenv("TENANTWATCH_TRUST_BAGGAGE", "true")
    assert load_settings().trust_baggage is True


def test_instrumenting_with_the_setting_trusts_baggage_and_uninstrumenting_stops(spoofed: None) -> None:
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    instrumentor.instrument(settings=load_settings(trust_baggage=True, discover=False), install_processor=False)
    try:
        assert current_context().tenant_id == "globex"
        assert current_context().role == "superuser"
        with tenant_context(None):  # what the ASGI middleware sets for an untrusted peer still wins
            assert current_context().tenant_id is None
        with tenant_context("acme"):
            assert current_context().tenant_id == "acme"
    finally:
        instrumentor.uninstrument()
    assert current_context().tenant_id is None


def test_instrumenting_without_the_setting_keeps_baggage_a_claim(spoofed: None) -> None:
    instrumentor = TenantwatchSQLAlchemyInstrumentor()
    instrumentor.instrument(settings=load_settings(discover=False), install_processor=False)
    try:
        assert current_context().tenant_id is None
    finally:
        instrumentor.uninstrument()
