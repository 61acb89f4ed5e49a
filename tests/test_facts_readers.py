"""SpanFacts.from_attributes reads every fact the instrumentation puts on a span (one pass over the span's keys), and
tenantwatch's own key wins over the semantic-convention key of the same fact whatever their order on the span."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tenantwatch import attributes as A
from tenantwatch.context import set_tenant_hierarchy, tenant_hierarchy
from tenantwatch.facts import SpanFacts

_NOT_ON_THE_SPAN = {"duration_ms", "request_tenant"}
"""Fields the processor learns elsewhere (the span's times, the request's server span)."""


def _sample(field: dataclasses.Field[object]) -> object:
    """A non-default value for ``field``, by its annotation."""
    kind = str(field.type)
    name = field.name
    if name == "tenant_filter":
        return "missing"
    if name == "operation":
        return "UPDATE"
    if name == "tenant_keys":
        return (("team", "team-7"),)
    if name in ("key_values", "written_key_values"):
        return (("team", (f"{name}-1", f"{name}-2")),)
    if kind == "tuple[int, ...]":
        return (3, 4)
    if kind.startswith("tuple"):
        return (f"{name}-a", f"{name}-b")
    if kind.startswith("int"):
        return 17
    return f"{name}-value"


@pytest.fixture
def team_hierarchy() -> Iterator[None]:
    root, finer = tenant_hierarchy()
    set_tenant_hierarchy("organization", ["team"])
    yield
    set_tenant_hierarchy(root, finer)


@pytest.mark.usefixtures("team_hierarchy")
def test_every_fact_on_the_span_is_read_back() -> None:
    fields = [f for f in dataclasses.fields(SpanFacts) if f.name not in _NOT_ON_THE_SPAN]
    facts = SpanFacts(**{f.name: _sample(f) for f in fields})
    # statement, system and route are set by OpenTelemetry's instrumentations, the rest by tenantwatch's
    attributes = {
        A.DB_QUERY_TEXT: facts.statement,
        A.DB_SYSTEM_NAME: facts.system,
        A.HTTP_ROUTE: facts.route,
        **facts.to_attributes(),
    }
    back = SpanFacts.from_attributes(attributes, duration_ms=2.5)
    assert back.duration_ms == 2.5
    for field in fields:
        assert getattr(back, field.name) == getattr(facts, field.name), field.name


@pytest.mark.parametrize(
    ("own", "semconv", "field", "own_value", "semconv_value"),
    [
        (A.DB_QUERY_TEXT, A.DB_STATEMENT, "statement", "SELECT 1", "SELECT 2"),
        (A.DB_SYSTEM_NAME, A.DB_SYSTEM, "system", "postgresql", "sqlite"),
        (A.DB_OPERATION, A.DB_OPERATION_NAME, "operation", "SELECT", "select"),
        (A.DB_COLLECTION_NAME, A.DB_SQL_TABLE, "main_table", "objectives", "plans"),
        (A.DB_RETURNED_ROWS, A.DB_RESPONSE_RETURNED_ROWS, "returned_rows", 5, 9),
    ],
)
@pytest.mark.parametrize("own_first", [True, False])
def test_the_first_key_of_a_fact_wins_in_any_order(
    own: str, semconv: str, field: str, own_value: object, semconv_value: object, own_first: bool
) -> None:
    pairs = [(own, own_value), (semconv, semconv_value)]
    attributes = dict(pairs if own_first else reversed(pairs))
    assert getattr(SpanFacts.from_attributes(attributes), field) == own_value
    assert getattr(SpanFacts.from_attributes({semconv: semconv_value}), field) == semconv_value


def test_defaults_and_odd_values() -> None:
    facts = SpanFacts.from_attributes(
        {
            A.DB_TENANT_FILTER: "",
            A.CODE_LINENO: "41",
            A.DB_RETURNED_ROWS: True,
            A.DB_TABLES: ("objectives", 3),
            A.TENANT_ID: 12,
            "http.request.method": "GET",
        }
    )
    assert facts.tenant_filter == "not_applicable"
    assert facts.code_lineno == 41
    assert facts.returned_rows is None  # a bool is not a row count
    assert facts.tables == ("objectives", "3")
    assert facts.tenant_id == "12"
    assert SpanFacts.from_attributes(None) == SpanFacts()
    assert SpanFacts.from_attributes({}, duration_ms=1.0) == SpanFacts(duration_ms=1.0)
