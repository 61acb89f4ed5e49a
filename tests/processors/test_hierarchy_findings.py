"""A tenant hierarchy in what the processor exports: findings say which key they are about (event, log record,
metric label by key name), log records carry the finer keys' values, and no metric gains a per-team value label."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from processor_support import CLEAN, UNFILTERED, Pipeline, findings_of

from tenantwatch import attributes as A
from tenantwatch.context import set_tenant_hierarchy

TEAM = A.tenant_key_attribute("team")


@pytest.fixture(autouse=True)
def _organization_and_team() -> Iterator[None]:
    set_tenant_hierarchy("organization", ["team"])
    yield
    set_tenant_hierarchy("tenant")


def _labels(pipeline: Pipeline, metric: str) -> list[dict[str, object]]:
    return [labels for labels, _point in pipeline.points(metric)]


def test_a_finding_about_a_finer_key_names_it_on_the_event_the_log_record_and_the_metric(
    pipeline: Pipeline,
) -> None:
    """cross_tenant names the key that differs; the processor exports it, by name only: the findings counter gets
    one series per key name, never per team value."""
    for team in ("t-2", "t-3", "t-4"):
        pipeline.db_span(replace(CLEAN, tenant_keys=(("team", "t-1"),), key_values=(("team", (team,)),)))
    (event,) = findings_of(pipeline.spans()[0])
    assert (event[A.RULE], event[A.FINDING_TENANT_KEY]) == ("cross_tenant", "team")
    record = pipeline.log_records()[0].log_record
    assert (record.attributes or {})[A.FINDING_TENANT_KEY] == "team"
    assert (record.attributes or {})[TEAM] == "t-1"
    assert "filters on team 't-2' but the context team is 't-1'" in str(record.body)
    ((labels, point),) = pipeline.points(A.METRIC_FINDINGS)
    assert labels == {
        A.RULE: "cross_tenant",
        A.SEVERITY: "critical",
        A.DB_COLLECTION_NAME: "objectives",
        A.TENANT_BUCKET: "acme",
        A.FINDING_TENANT_KEY: "team",
    }
    assert point.value == 3


def test_findings_about_the_root_key_and_every_metric_keep_their_labels(pipeline: Pipeline) -> None:
    """A team in context changes no label: tenant.bucket is the organization's, no team value is ever a label."""
    for team in ("t-1", "t-2"):
        pipeline.db_span(replace(UNFILTERED, tenant_keys=(("team", team),)))
    (event,) = findings_of(pipeline.spans()[0])
    assert A.FINDING_TENANT_KEY not in event
    records = [r.log_record.attributes or {} for r in pipeline.log_records()]
    # one bug of one organization: the second team's record is held back by the cooldown, as for one tenant key
    assert [(r[A.TENANT_ID], r[TEAM]) for r in records] == [("acme", "t-1")]
    for metric in (A.METRIC_FINDINGS, A.METRIC_OPERATION_DURATION, A.METRIC_RETURNED_ROWS):
        (labels,) = _labels(pipeline, metric)  # one series for both teams
        assert labels[A.TENANT_BUCKET] == "acme"
        assert not any("team" in str(key) or "t-1" in str(value) for key, value in labels.items())
