"""The fast attribute path gives exactly what the public API and the facts contract give."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.trace import INVALID_SPAN

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.facts import facts_for_statement
from tenantwatch.instrumentation._attributes import AttributeBuilder, set_span_attributes
from tenantwatch.instrumentation._code_location import find_caller
from tenantwatch.sql.analyzer import Analyzer

SAMPLE = {
    A.DB_TABLES: ("items", "orders"),
    A.DB_TENANT_FILTER: "present",
    A.DB_TENANT_VALUES: ("1", "2"),
    A.CODE_LINENO: 42,
    A.DB_FETCH_DURATION: 1.5,
    A.DB_RESPONSE_RETURNED_ROWS: 7,
}


def _span(limits: SpanLimits | None = None) -> Any:
    provider = TracerProvider(span_limits=limits) if limits else TracerProvider()
    return provider.get_tracer("test").start_span("db")


def test_fast_path_stores_what_set_attributes_stores() -> None:
    fast, public = _span(), _span()
    fast.set_attribute("db.statement", "SELECT 1")
    public.set_attribute("db.statement", "SELECT 1")
    set_span_attributes(fast, dict(SAMPLE))
    public.set_attributes(dict(SAMPLE))
    fast.end()
    public.end()
    assert dict(fast.attributes) == dict(public.attributes)


@pytest.mark.parametrize(
    "limits", [SpanLimits(max_span_attribute_length=3), SpanLimits(max_span_attributes=4)], ids=["length", "count"]
)
def test_limits_are_honoured(limits: SpanLimits) -> None:
    fast, public = _span(limits), _span(limits)
    set_span_attributes(fast, dict(SAMPLE))
    public.set_attributes(dict(SAMPLE))
    assert dict(fast.attributes) == dict(public.attributes)
    assert fast.dropped_attributes == public.dropped_attributes


def test_ended_and_non_sdk_spans_are_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    ended = _span()
    ended.end()
    set_span_attributes(ended, dict(SAMPLE))
    assert dict(ended.attributes) == {}
    assert "Setting attribute on ended span" in caplog.text  # what the public API says, too
    caplog.clear()  # expected here; the autouse guard rejects it everywhere else
    set_span_attributes(INVALID_SPAN, dict(SAMPLE))  # no-op API span: nothing to write, nothing raised


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT id FROM items WHERE organization_id = %(org)s AND id > %(floor)s", {"org": 1, "floor": 3}),
        ("SELECT id FROM items WHERE organization_id IN (%(orgs_1)s, %(orgs_2)s)", {"orgs_1": 1, "orgs_2": "2"}),
        ("SELECT id FROM items WHERE organization_id IN ?", ([1, 2, 2],)),
        ("INSERT INTO items (id, organization_id, name) VALUES (?, ?, ?)", (1, 7, "x")),
        ("UPDATE items SET name = 'x'", {}),
        ("SELECT * FROM countries", None),
        ("not sql at all ((", None),
    ],
)
def test_builder_matches_the_facts_contract(sql: str, params: Any) -> None:
    settings = Settings(tenant_tables={"items": "organization_id"})
    analyzer = Analyzer(settings)
    builder = AttributeBuilder()
    analysis = analyzer.analyze(sql)
    for context in (tenant_context("1", user_id="u", role="admin"), unscoped("audit")):
        with context as ctx:
            built = builder.build(analysis, params, False, skip=0)
            where = find_caller(0)
            assert where is not None
            expected = facts_for_statement(
                analysis,
                params,
                ctx,
                code_function=where.function,
                code_filepath=where.filepath,
                code_lineno=built[A.CODE_LINENO],
            ).to_attributes()
        assert built == builder.semconv.rename(dict(expected))
