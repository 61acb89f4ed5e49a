"""compare(): finding groups against a baseline, as new / known / moved / stale, and what render() says of them."""

from __future__ import annotations

from pathlib import Path

from tenantwatch.core.findings import Finding, finding_fingerprint
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.gate import Baseline, BaselineEntry, compare, refreshed, render
from tenantwatch.tools.groups import FindingGroups


def _groups(root: Path, *findings: tuple[str, str, int, str]) -> FindingGroups:
    """(rule, severity, line, function) findings of one statement in ``root/app/views.py``."""
    groups = FindingGroups()
    for rule, severity, line, function in findings:
        facts = SpanFacts(
            statement="SELECT objectives.id FROM objectives",
            statement_fingerprint="stmt-1",
            code_filepath=str(root / "app" / "views.py"),
            code_lineno=line,
            code_function=function,
        )
        finding = Finding(
            rule=rule, severity=severity, message=f"{rule} here", fingerprint=finding_fingerprint(rule, facts)
        )  # type: ignore[arg-type]
        groups.add(finding, facts)
    return groups


def _baseline(groups: FindingGroups, root: Path, reason: str = "reviewed") -> Baseline:
    return Baseline(tuple(BaselineEntry.from_group(g, root=root, reason=reason) for g in groups), path="b.yaml")


def test_a_finding_in_the_baseline_is_known_and_one_that_is_not_is_new(tmp_path: Path) -> None:
    accepted = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all"))
    run = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all"), ("slow_query", "warning", 20, "x"))
    result = compare(run, _baseline(accepted, tmp_path), root=tmp_path)
    assert [g.rule for g, _ in result.known] == ["missing_tenant_filter"]
    assert [g.rule for g in result.new] == ["slow_query"]
    assert result.failed and not result.stale and not result.moved
    assert result.baseline_state() == {g.fingerprint: s for g, s in zip(run, ["unchanged", "new"], strict=True)}


def test_the_same_finding_in_a_checkout_at_another_path_is_known(tmp_path: Path) -> None:
    """The finding fingerprint holds the absolute path; the baseline's relative path, function and line still match."""
    dev, ci = tmp_path / "home" / "dev" / "okr", tmp_path / "builds" / "okr"
    accepted = _groups(dev, ("missing_tenant_filter", "critical", 10, "list_all"))
    run = _groups(ci, ("missing_tenant_filter", "critical", 10, "list_all"))
    assert next(iter(run)).fingerprint != next(iter(accepted)).fingerprint
    result = compare(run, _baseline(accepted, dev), root=ci)
    assert len(result.known) == 1 and not result.new and not result.failed


def test_a_finding_on_another_line_of_the_same_function_is_moved_not_new(tmp_path: Path) -> None:
    accepted = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all"))
    run = _groups(tmp_path, ("missing_tenant_filter", "critical", 13, "list_all"))
    result = compare(run, _baseline(accepted, tmp_path), root=tmp_path)
    assert [(g.code_lineno, e.line) for g, e in result.moved] == [(13, 10)]
    assert not result.new and not result.stale and not result.failed
    assert "moved (still accepted; refresh the baseline" in render(result)
    assert "missing_tenant_filter app/views.py:10 in list_all -> line 13" in render(result)


def test_the_same_statement_in_another_function_is_new(tmp_path: Path) -> None:
    accepted = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all"))
    run = _groups(tmp_path, ("missing_tenant_filter", "critical", 30, "export"))
    result = compare(run, _baseline(accepted, tmp_path), root=tmp_path)
    assert len(result.new) == 1 and len(result.stale) == 1 and result.failed


def test_an_entry_nothing_matched_is_stale(tmp_path: Path) -> None:
    accepted = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all"))
    result = compare(FindingGroups(), _baseline(accepted, tmp_path), root=tmp_path)
    assert [e.rule for e in result.stale] == ["missing_tenant_filter"] and not result.failed
    text = render(result)
    assert "0 new (0 at warning or above), 0 known, 0 moved, 1 stale (baseline b.yaml)" in text
    assert "fixed? remove them with `tenantwatch baseline FINDINGS.json --prune`" in text
    assert "missing_tenant_filter at app/views.py:10 in list_all" in text


def test_new_findings_below_fail_on_are_listed_but_do_not_fail(tmp_path: Path) -> None:
    run = _groups(tmp_path, ("slow_query", "warning", 20, "report"))
    result = compare(run, None, root=tmp_path, fail_on="high")
    assert len(result.new) == 1 and not result.failing and not result.failed
    assert "tenantwatch gate passed: 1 new (0 at high or above)" in render(result)
    assert compare(run, None, root=tmp_path).failed  # default: warning and above


def test_render_lists_each_new_finding_with_location_and_details(tmp_path: Path) -> None:
    result = compare(_groups(tmp_path, ("missing_tenant_filter", "critical", 10, "list_all")), None, root=tmp_path)
    text = render(result, details=lambda g: [f"test: t.py::t ({g.rule})"])
    assert "tenantwatch gate FAILED: 1 new (1 at warning or above), 0 known, 0 moved, 0 stale (no baseline" in text
    assert "CRITICAL missing_tenant_filter at app/views.py:10 in list_all (1x, fingerprint" in text
    assert "      test: t.py::t (missing_tenant_filter)" in text


def test_refreshed_adds_new_entries_unreviewed_keeps_reasons_moves_lines_and_prunes_only_when_asked(
    tmp_path: Path,
) -> None:
    old = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "a"), ("slow_query", "warning", 20, "b"),
                  ("large_result", "warning", 30, "c"))  # fmt: skip
    run = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "a"), ("slow_query", "warning", 22, "b"),
                  ("unscoped_write", "critical", 40, "d"))  # fmt: skip
    baseline = _baseline(old, tmp_path, reason="ok by ana")
    kept, counts = refreshed(compare(run, baseline, root=tmp_path), baseline)
    assert counts == {"added": 1, "moved": 1, "kept": 1, "stale": 1, "pruned": 0}
    by_rule = {e.rule: e for e in kept.entries}
    assert by_rule["slow_query"].line == 22 and by_rule["slow_query"].reason == "ok by ana"
    assert by_rule["missing_tenant_filter"].reason == "ok by ana"
    assert by_rule["unscoped_write"].reason == "" and by_rule["large_result"].reason == "ok by ana"
    assert [e.rule for e in kept.unreviewed()] == ["unscoped_write"]
    pruned, counts = refreshed(compare(run, baseline, root=tmp_path), baseline, prune=True)
    assert counts["pruned"] == 1 and "large_result" not in {e.rule for e in pruned.entries}
    again = compare(run, pruned, root=tmp_path)
    assert len(again.known) == 3 and not again.new and not again.moved and not again.stale


def test_render_names_baseline_entries_without_a_reason_and_still_passes(tmp_path: Path) -> None:
    """What ``scan --baseline`` and the pytest gate print: accepted, but the empty reasons are named."""
    run = _groups(tmp_path, ("missing_tenant_filter", "critical", 10, "a"), ("slow_query", "warning", 20, "b"))
    entries = [BaselineEntry.from_group(g, root=tmp_path, reason=r) for g, r in zip(run, ["", "ok"], strict=True)]
    result = compare(run, Baseline(tuple(entries), path="b.yaml"), root=tmp_path)
    text = render(result)
    assert not result.failed and text.startswith("tenantwatch gate passed: 0 new (0 at warning or above), 2 known")
    assert "1 baseline entry has no reason: review them; `tenantwatch baseline --check` fails on them" in text
    reviewed = compare(run, _baseline(run, tmp_path), root=tmp_path)
    assert "no reason" not in render(reviewed)
    failing = render(reviewed, also_failed=["no database statements were judged"])
    assert failing.startswith("tenantwatch gate FAILED: 0 new")
    assert "tenantwatch gate FAILED: no database statements were judged" in failing
