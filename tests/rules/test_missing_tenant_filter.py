"""missing_tenant_filter: the statement rule that reads the scope walk's `missing` verdicts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from processor_support import UNFILTERED
from rule_support import DEFAULTS, rules

from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

CASES: list[tuple[str, SpanFacts, list[str]]] = [
    ("select without filter", UNFILTERED, ["missing_tenant_filter"]),
    ("missing filter inside unscoped() is tagged, not flagged", replace(UNFILTERED, unscoped_reason="billing"), []),
    (
        "unanalyzable statement: no guessing",
        replace(UNFILTERED, analysis_error="too deep", tenant_filter="unknown"),
        [],
    ),
    ("verdict unknown without error text", replace(UNFILTERED, tenant_filter="unknown"), []),
]
"""(name, facts, the rules that fire): at least one case where the rule fires and one where it does not."""


@pytest.mark.parametrize(("facts", "expected"), [(f, e) for _, f, e in CASES], ids=[c[0] for c in CASES])
def test_missing_tenant_filter_cases(facts: SpanFacts, expected: list[str]) -> None:
    assert rules(facts) == expected


def test_missing_filter_is_one_finding_per_table_naming_scopes() -> None:
    facts = replace(
        UNFILTERED,
        tables=("objectives", "key_results"),
        tenant_tables=("objectives", "key_results"),
        unfiltered=("cte:recent:objectives", "main:objectives", "subquery:1:key_results"),
    )
    found = evaluate(facts, DEFAULTS)
    assert [(f.rule, f.table) for f in found] == [
        ("missing_tenant_filter", "objectives"),
        ("missing_tenant_filter", "key_results"),
    ]
    assert "cte:recent" in found[0].message and "main" in found[0].message
    assert "subquery:1" in found[1].message
    assert all(f.severity == "critical" for f in found)


# --- latent: the rows returned were all the context tenant's ------------------------------------------------------

_INSPECTED_OWN = replace(
    UNFILTERED,
    returned_rows=1,
    tenant_rows_inspected=1,
    tenant_rows_own=1,
    tenant_rows_other=0,
    tenant_rows_uninspected=0,
    tenant_rows_tables=("objectives",),
)
_BY_KEY = replace(_INSPECTED_OWN, keyed=("main:objectives",))


def _only(facts: SpanFacts, settings: object = DEFAULTS) -> tuple[str, str]:
    (finding,) = evaluate(facts, settings)  # type: ignore[arg-type]
    assert finding.rule == "missing_tenant_filter"
    return finding.severity, finding.message


def test_lookup_by_key_that_returned_only_own_rows_is_a_latent_warning() -> None:
    severity, message = _only(_BY_KEY)
    assert severity == "warning"
    assert message.endswith("latent, a lookup by key: the 1 row(s) it returned were all the context tenant's")


def test_lookup_by_key_that_returned_nothing_is_latent_too() -> None:
    severity, message = _only(replace(_BY_KEY, returned_rows=0, tenant_rows_inspected=0, tenant_rows_own=0))
    assert (severity, message.endswith("latent, a lookup by key: it returned no row")) == ("warning", True)


def test_list_query_without_filter_stays_critical_whatever_it_returned() -> None:
    severity, message = _only(replace(_INSPECTED_OWN, returned_rows=40, tenant_rows_inspected=40, tenant_rows_own=40))
    assert severity == "critical"
    assert "latent, a read: the 40 row(s)" in message


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(replace(_BY_KEY, tenant_rows_inspected=None), id="tenant column not in the result"),
        pytest.param(replace(_BY_KEY, tenant_rows_uninspected=5), id="cap cut rows"),
        pytest.param(replace(_BY_KEY, tenant_rows_tables=("key_results",)), id="another table inspected"),
        pytest.param(
            replace(_BY_KEY, unfiltered=("subquery:1:objectives",), keyed=()), id="unfiltered scope is a subquery"
        ),
    ],
)
def test_not_latent_without_having_seen_every_row(facts: SpanFacts) -> None:
    severity, message = _only(facts)
    assert severity == "critical"
    assert "latent" not in message


def test_latent_severities_are_settings() -> None:
    from tenantwatch.config import load_settings

    settings = load_settings(
        environ={}, rules={"missing_tenant_filter": {"latent_key_severity": "info", "latent_severity": "high"}}
    )
    assert _only(_BY_KEY, settings)[0] == "info"
    assert _only(_INSPECTED_OWN, settings)[0] == "high"
    assert _only(replace(_INSPECTED_OWN, tenant_rows_inspected=None), settings)[0] == "critical"
