"""SARIF from grouped findings: one result per fingerprint at its code location, rules described from metadata."""

from __future__ import annotations

from pathlib import Path

from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.rules import missing_tenant_filter
from tenantwatch.tools.groups import FindingGroups
from tenantwatch.tools.sarif import sarif_document


def test_a_result_per_group_with_location_fingerprint_and_rule_metadata(tmp_path: Path) -> None:
    groups = FindingGroups()
    facts = SpanFacts(code_filepath=str(tmp_path / "app" / "views.py"), code_lineno=42, code_function="list_okrs")
    finding = Finding(
        rule="missing_tenant_filter", severity="critical", message="no filter", fingerprint="abc", table="objectives"
    )
    groups.add(finding, facts, trace_id="0" * 32)
    groups.add(finding, facts)
    document = sarif_document(groups, root=tmp_path, baseline_state={"abc": "new"})
    assert document["version"] == "2.1.0"
    run = document["runs"][0]
    (rule,) = run["tool"]["driver"]["rules"]
    assert rule["id"] == "missing_tenant_filter" and rule["defaultConfiguration"]["level"] == "error"
    assert rule["help"]["text"] == missing_tenant_filter.RULE.meta.remediation
    (result,) = run["results"]
    assert result["level"] == "error" and result["baselineState"] == "new"
    assert result["partialFingerprints"] == {"tenantwatch/v1": "abc"}
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "app/views.py"
    assert location["region"]["startLine"] == 42
    assert result["properties"]["count"] == 2


def test_an_unknown_rule_from_a_stored_document_still_gets_a_descriptor() -> None:
    groups = FindingGroups()
    groups.add(Finding(rule="retired_rule", severity="info", message="m", fingerprint="x"), SpanFacts())
    run = sarif_document(groups)["runs"][0]
    assert run["tool"]["driver"]["rules"] == [{"id": "retired_rule", "name": "retired_rule"}]
    assert run["results"][0]["level"] == "note" and "locations" not in run["results"][0]


def test_a_location_outside_the_root_is_an_absolute_file_uri(tmp_path: Path) -> None:
    groups = FindingGroups()
    elsewhere = tmp_path / "elsewhere" / "models.py"
    groups.add(Finding(rule="missing_tenant_filter", severity="critical", message="m", fingerprint="f"),
               SpanFacts(code_filepath=str(elsewhere), code_lineno=3))  # fmt: skip
    result = sarif_document(groups, root=tmp_path / "project")["runs"][0]["results"][0]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == elsewhere.as_uri()
