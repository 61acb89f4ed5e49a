"""Tenant context: contextvars, decorator forms, unscoped work, W3C baggage and the explicit trust in it."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from tenantwatch.context import TenantContext, current_context, tenant_context, trust_baggage, unscoped


def test_no_context_by_default() -> None:
    assert current_context() == TenantContext()


def test_context_manager_sets_and_restores() -> None:
    with tenant_context("acme", user_id=7, role="member") as ctx:
        assert ctx.tenant_id == "acme"
        assert current_context() == TenantContext("acme", "7", "member")
        with tenant_context("globex"):
            assert current_context().tenant_id == "globex"
            assert current_context().user_id is None
        assert current_context().tenant_id == "acme"
    assert current_context().tenant_id is None


def test_context_is_written_to_baggage_and_propagated() -> None:
    carrier: dict[str, str] = {}
    with tenant_context("acme", user_id="u-1", role="admin"):
        assert baggage.get_baggage("tenant.id") == "acme"
        W3CBaggagePropagator().inject(carrier)
    assert "tenant.id=acme" in carrier["baggage"]
    assert baggage.get_baggage("tenant.id") is None


def _attached(header: str) -> contextvars.Token[otel_context.Context]:
    return otel_context.attach(W3CBaggagePropagator().extract({"baggage": header}))


def test_incoming_baggage_alone_is_not_the_tenant_context() -> None:
    """Baggage is what a peer claims: without a trust decision it names no tenant, user or role."""
    token = _attached("tenant.id=globex,enduser.id=mallory,enduser.role=superuser")
    try:
        assert current_context() == TenantContext()
        assert baggage.get_baggage("tenant.id") == "globex"  # still there to read, just not promoted
    finally:
        otel_context.detach(token)


def test_trust_baggage_promotes_the_current_baggage_for_its_body() -> None:
    token = _attached("tenant.id=acme,enduser.id=u-9,enduser.role=member")
    try:
        with trust_baggage() as ctx:
            assert ctx == TenantContext("acme", "u-9", "member")
            assert current_context() == ctx
        assert current_context() == TenantContext()
    finally:
        otel_context.detach(token)


def test_trust_baggage_reads_an_extracted_context_without_attaching_it() -> None:
    incoming = W3CBaggagePropagator().extract({"baggage": "tenant.id=%20acme%20,enduser.role=" + "r" * 300})
    with trust_baggage(incoming):
        assert current_context().tenant_id == "acme"  # cleaned like any other value
        assert current_context().role == "r" * 256
        assert baggage.get_baggage("tenant.id") == "acme"  # mirrored for outgoing calls
    assert current_context() == TenantContext()
    assert baggage.get_baggage("tenant.id") is None


def test_trust_baggage_without_a_tenant_is_an_empty_context() -> None:
    """A role or user without a tenant is not promoted either, and an outer context is replaced, not kept."""
    incoming = W3CBaggagePropagator().extract({"baggage": "enduser.id=mallory,enduser.role=superuser"})
    with tenant_context("acme", role="member"), trust_baggage(incoming):
        assert current_context() == TenantContext()
        assert baggage.get_baggage("enduser.role") is None


async def test_trust_baggage_as_a_decorator_reads_the_baggage_of_each_call() -> None:
    @trust_baggage()
    async def handle() -> str | None:
        return current_context().tenant_id

    seen = []
    for tenant in ("a", "b"):
        token = _attached(f"tenant.id={tenant}")
        try:
            seen.append(await handle())
        finally:
            otel_context.detach(token)
    assert seen == ["a", "b"]


def test_decorator_on_sync_function_is_reentrant() -> None:
    @tenant_context("acme")
    def work(depth: int) -> list[str | None]:
        seen = [current_context().tenant_id]
        if depth:
            seen += work(depth - 1)
        return seen

    assert work(2) == ["acme", "acme", "acme"]
    assert current_context().tenant_id is None


async def test_decorator_on_coroutine_and_tasks_inherit() -> None:
    @tenant_context("acme")
    async def work() -> tuple[str | None, str | None]:
        child = asyncio.create_task(asyncio.sleep(0, result=current_context().tenant_id))
        return current_context().tenant_id, await child

    assert await work() == ("acme", "acme")
    assert current_context().tenant_id is None


async def test_concurrent_tasks_keep_their_own_tenant() -> None:
    async def as_tenant(tenant: str) -> str | None:
        with tenant_context(tenant):
            await asyncio.sleep(0.01)
            return current_context().tenant_id

    assert await asyncio.gather(as_tenant("a"), as_tenant("b")) == ["a", "b"]


def test_threads_with_copied_context_see_the_tenant() -> None:
    seen: list[str | None] = []
    with tenant_context("acme"):
        ctx = contextvars.copy_context()
    thread = threading.Thread(target=lambda: seen.append(ctx.run(lambda: current_context().tenant_id)))
    thread.start()
    thread.join()
    assert seen == ["acme"]


def test_unscoped_keeps_user_and_role_and_requires_a_reason() -> None:
    with tenant_context("acme", user_id="ops", role="superuser"), unscoped("nightly roll-up"):
        ctx = current_context()
        assert ctx.is_unscoped
        assert ctx.unscoped_reason == "nightly roll-up"
        assert (ctx.tenant_id, ctx.user_id, ctx.role) == ("acme", "ops", "superuser")
    with pytest.raises(ValueError, match="reason"):
        unscoped("  ")


def test_values_are_cleaned_and_bounded() -> None:
    with tenant_context("  " + "x" * 1000 + " "):
        assert current_context().tenant_id == "x" * 256
    with tenant_context(""):
        assert current_context().tenant_id is None
