"""Findings grouped by fingerprint: counts, first/last seen, examples, and the JSON document round trip."""

from __future__ import annotations

import pytest

from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.groups import MAX_EXAMPLES, MAX_TENANTS, OTHER_TENANTS, FindingGroups


def _finding(fingerprint: str = "f1", severity: str = "warning") -> Finding:
    return Finding(rule="missing_tenant_filter", severity=severity, message="m", fingerprint=fingerprint, table="t")  # type: ignore[arg-type]


FACTS = SpanFacts(statement="SELECT * FROM t", code_filepath="app.py", code_lineno=7, code_function="f", tenant_id="a")


def test_one_group_per_fingerprint_with_count_first_last_seen_and_highest_severity() -> None:
    groups = FindingGroups()
    groups.add(_finding(), FACTS, time_ns=30, trace_id="t1")
    groups.add(_finding(severity="critical"), FACTS, time_ns=10, trace_id="t2")
    groups.add(_finding("f2"), FACTS, time_ns=20, trace_id="t3")
    first = groups.get("f1")
    assert first is not None
    assert (first.count, first.first_seen_ns, first.last_seen_ns, first.severity) == (2, 10, 30, "critical")
    assert first.trace_ids == ["t1", "t2"]
    assert first.code_location == "app.py:7 in f"
    assert [g.fingerprint for g in groups] == ["f1", "f2"]  # most severe first
    assert groups.findings == 3


def test_examples_and_tenants_stay_bounded() -> None:
    groups = FindingGroups()
    for i in range(MAX_TENANTS + 20):
        facts = SpanFacts(tenant_id=f"tenant-{i}")
        groups.add(_finding(), facts, trace_id=f"trace-{i}")
    group = groups.get("f1")
    assert group is not None
    assert len(group.trace_ids) == MAX_EXAMPLES
    assert len(group.tenants) == MAX_TENANTS + 1
    assert group.tenants[OTHER_TENANTS] == 20


def test_json_round_trip_and_merge() -> None:
    groups = FindingGroups()
    groups.spans = 5
    groups.add(_finding(), FACTS, time_ns=10, trace_id="t1")
    again = FindingGroups.from_json(groups.to_json())
    assert again.to_json() == groups.to_json()
    again.merge(groups)
    merged = again.get("f1")
    assert merged is not None and merged.count == 2 and again.spans == 10


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"format": "other"}, "not a tenantwatch findings document"),
        ({"format": "tenantwatch.findings", "version": 9}, "unsupported findings document version"),
        (
            {"format": "tenantwatch.findings", "version": 1, "groups": [{"rule": "r"}]},
            "groups[0]: a finding group lacks",
        ),
        (
            {"format": "tenantwatch.findings", "version": 1, "groups": [{"fingerprint": 1, "rule": "r"}]},
            "fingerprint must be a string",
        ),
    ],
)
def test_a_bad_document_is_a_clear_error(document: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        FindingGroups.from_json(document)
