"""Tenant hierarchies in the context: finer keys next to the root tenant, in baggage and on span facts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from tenantwatch.context import (
    TenantContext,
    current_context,
    set_tenant_hierarchy,
    tenant_context,
    trust_baggage,
    unscoped,
)
from tenantwatch.facts import SpanFacts, facts_for_statement
from tenantwatch.sql.model import StatementAnalysis


@pytest.fixture(autouse=True)
def _organization_and_team() -> Iterator[None]:
    set_tenant_hierarchy("organization", ["team"])
    yield
    set_tenant_hierarchy("tenant")


def test_keywords_and_mapping_give_the_same_context() -> None:
    with tenant_context("acme", team="t-1") as by_keyword:
        assert current_context().value_of("organization") == "acme"
        assert current_context().value_of("team") == "t-1"
    with tenant_context({"organization": "acme", "team": "t-1"}) as by_mapping:
        pass
    assert by_keyword == by_mapping == TenantContext("acme", keys=(("team", "t-1"),))
    assert by_keyword.value_of("tenant") == "acme"  # the default name stays an alias of the root
    assert by_keyword.value_of("region") is None


def test_uuid_values_are_canonical_text() -> None:
    team = uuid.UUID("6f1c1d2e-0000-4000-8000-0000000000aa")
    with tenant_context("acme", team=team) as ctx:
        assert ctx.value_of("team") == str(team)


def test_finer_keys_travel_in_baggage_and_leave_with_the_context() -> None:
    carrier: dict[str, str] = {}
    with tenant_context("acme", team="t-1"):
        assert baggage.get_baggage("tenant.team.id") == "t-1"
        W3CBaggagePropagator().inject(carrier)
        with tenant_context("acme"):  # a nested context without the team must not inherit it
            assert baggage.get_baggage("tenant.team.id") is None
    assert "tenant.team.id=t-1" in carrier["baggage"]
    assert baggage.get_baggage("tenant.team.id") is None
    with trust_baggage(W3CBaggagePropagator().extract(carrier)) as trusted:
        assert trusted.value_of("team") == "t-1"


def test_unscoped_keeps_the_finer_keys() -> None:
    with tenant_context("acme", team="t-1"), unscoped("report") as ctx:
        assert ctx.value_of("team") == "t-1"


def test_span_facts_carry_the_finer_keys_both_ways() -> None:
    context = TenantContext("acme", keys=(("team", "t-1"),))
    facts = facts_for_statement(StatementAnalysis("SELECT"), None, context)
    attributes = facts.to_attributes()
    assert attributes["tenant.id"] == "acme"
    assert attributes["tenant.team.id"] == "t-1"
    back = SpanFacts.from_attributes(attributes)
    assert back.tenant_value("team") == "t-1"
    assert back.tenant_value("organization") == "acme"
