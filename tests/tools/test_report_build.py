"""Building a report: what each section takes from Prometheus and from findings documents, the explicit no-data
notes, spikes, the period and its bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.tools.groups import FindingGroups
from tenantwatch.tools.report import Period, PrometheusClient, Series, build_report, load_findings, spikes
from tenantwatch.tools.report.prometheus import RangeResult, new_per_step

END = datetime(2026, 12, 2, tzinfo=UTC)
PERIOD = Period.named("daily", end=END, step_seconds=3600)
T = PERIOD.start.timestamp()


class FakePrometheus(PrometheusClient):
    """Answers range queries from canned results: the first key found in the expression wins."""

    def __init__(self, answers: dict[str, list[RangeResult]]) -> None:
        super().__init__("http://prom.example:9090")
        self.answers = answers
        self.asked: list[str] = []

    def query_range(self, expr: str, period: Period) -> list[RangeResult]:
        self.asked.append(expr)
        for key, results in self.answers.items():
            if key in expr:
                return results
        return []


def _groups_file(tmp_path: Path, name: str = "scan.json", *, hours: tuple[int, ...] = (1, 2)) -> Path:
    groups = FindingGroups()
    for hour in hours:
        at = int((T + hour * 3600) * 1e9)
        for rule, severity, fingerprint, tenant, route in (
            ("missing_tenant_filter", "critical", "f-mtf", "acme", "/okrs"),
            ("large_result", "warning", "f-large", "globex", None),
            ("repeated_violations", "high", "f-rep", "acme", None),
        ):
            finding = Finding(rule=rule, severity=severity, message="m", fingerprint=fingerprint, table="objectives")  # type: ignore[arg-type]
            facts = SpanFacts(
                statement="SELECT * FROM objectives",
                code_filepath="app.py",
                code_lineno=3,
                code_function="f",
                tenant_id=tenant,
                route=route,
            )
            groups.add(finding, facts, time_ns=at, trace_id="1" * 32)
    path = tmp_path / name
    path.write_text(json.dumps(groups.to_json()))
    return path


def test_prometheus_findings_become_one_series_per_label_value_with_their_source() -> None:
    prom = FakePrometheus(
        {
            "sum by (tenantwatch_rule) (": [
                RangeResult({"tenantwatch_rule": "slow_query"}, [(T, 1.0)]),
                RangeResult({"tenantwatch_rule": "cross_tenant"}, [(T, 0.0), (T + 3600, 2.0)]),
            ]
        }
    )
    report = build_report(PERIOD, prometheus=prom, now=END)
    section = report.section("findings_by_rule")
    assert [(s.name, s.total) for s in section.charts[0].series] == [("cross_tenant", 2.0), ("slow_query", 1.0)]
    assert section.sources == [
        "Prometheus http://prom.example:9090: " + new_per_step("tenantwatch_findings_total", "tenantwatch_rule", 3600)
    ]
    assert "tenantwatch_findings_total offset 3600s or tenantwatch_findings_total * 0" in section.sources[0]
    # nothing else answered: every other Prometheus part says so, naming the metric
    assert report.section("findings_by_severity").notes == [
        "no data from Prometheus for new findings per step by severity (tenantwatch_findings_total) in this period"
    ]
    assert report.section("query_volume").notes == [
        "no data from Prometheus for statements per step by tenant (db_client_operation_duration_seconds_count) "
        "in this period"
    ]
    assert report.section("top_fingerprints").notes == [
        "no findings documents given (--findings): Prometheus counts findings but has no fingerprint label"
    ]
    assert report.has_data


def test_a_report_without_any_data_has_no_data_and_every_section_says_why() -> None:
    report = build_report(PERIOD, prometheus=FakePrometheus({}), now=END)
    assert not report.has_data
    for section in report.sections:
        assert section.notes, section.id
        assert not section.charts and not section.tables


def test_query_volume_spikes_are_listed_with_time_tenant_and_ratio() -> None:
    steady = [(T + i * 3600, 20.0) for i in range(10)]
    burst = [*steady[:5], (T + 5 * 3600, 400.0), *steady[6:]]
    prom = FakePrometheus(
        {
            "db_client_operation_duration_seconds_count": [
                RangeResult({"tenant_bucket": "acme"}, steady),
                RangeResult({"tenant_bucket": "globex"}, burst),
            ]
        }
    )
    section = build_report(PERIOD, prometheus=prom, now=END).section("query_volume")
    assert [s.name for s in section.charts[0].series] == ["acme", "globex"]
    assert section.tables[0].rows == [["2026-12-01T05:00:00Z", "globex", 400.0, 20.0, 20.0]]


def test_a_steady_volume_says_there_was_no_spike() -> None:
    prom = FakePrometheus(
        {
            "db_client_operation_duration_seconds_count": [
                RangeResult({"tenant_bucket": "acme"}, [(T, 20.0), (T + 1, 25.0)])
            ]
        }
    )
    section = build_report(PERIOD, prometheus=prom, now=END).section("query_volume")
    assert not section.tables
    assert section.notes[-1].startswith("no spikes: no tenant's step reached 3x its median step")


def test_spikes_need_the_factor_and_the_minimum() -> None:
    assert spikes([Series("a", [0.0, 1.0, 2.0], [1.0, 1.0, 9.0])]) == []  # 9x the median but fewer than 10 queries
    found = spikes([Series("a", [0.0, 1.0, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 29.0, 30.0])])
    assert [(s.time, s.value, s.ratio) for s in found] == [(4.0, 30.0, 3.0)]  # 29 is under 3x the median of 10


def test_incidents_from_prometheus_and_findings_documents_on_one_timeline(tmp_path: Path) -> None:
    prom = FakePrometheus(
        {
            'tenantwatch_rule=~"repeated_violations|brute_force|query_rate_spike"': [
                RangeResult({"tenantwatch_rule": "brute_force", "tenant_bucket": "acme"}, [(T, 0.0), (T + 3600, 1.0)])
            ],
            "tenantwatch_blocks_total": [RangeResult({"reason": "client"}, [(T + 7200, 1.0)])],
        }
    )
    findings = load_findings([str(_groups_file(tmp_path))])
    section = build_report(PERIOD, prometheus=prom, findings=findings, now=END).section("incidents")
    assert section.tables[0].rows == [
        ["2026-12-01T01:00:00Z", "brute_force", "acme", 1.0, "Prometheus"],
        ["2026-12-01T01:00:00Z", "repeated_violations", "acme", 2, f"findings document {tmp_path / 'scan.json'}"],
        ["2026-12-01T02:00:00Z", "block started", "client", 1.0, "Prometheus"],
    ]
    assert [s.name for s in section.charts[0].series] == [
        "brute_force (acme)",
        "block started (client)",
        "repeated_violations (acme, scanned)",
    ]


def test_findings_documents_give_totals_top_fingerprints_and_large_results_by_fingerprint(tmp_path: Path) -> None:
    findings = load_findings([str(_groups_file(tmp_path)), str(_groups_file(tmp_path, "more.json", hours=(3,)))])
    report = build_report(PERIOD, findings=findings, now=END)
    assert report.sources == [
        f"findings documents {tmp_path / 'scan.json'}, {tmp_path / 'more.json'}: 3 finding groups, 9 findings, "
        "3 groups seen in the period"
    ]
    bars = report.section("findings_by_tenant").charts[0].series[0]
    assert (bars.x, bars.y) == (["acme", "globex"], [6.0, 3.0])
    route = report.section("findings_by_route").charts[0].series[0]
    assert (route.x, route.y) == (["(no route)", "/okrs"], [6.0, 3.0])
    top = report.section("top_fingerprints").tables[0]
    assert top.rows[0] == [
        "f-large",
        "large_result",
        "warning",
        "objectives",
        3,
        "2026-12-01T01:00:00Z",
        "2026-12-01T03:00:00Z",
        "app.py:3 in f",
        None,
        "m",
    ]
    large = report.section("large_results")
    assert [row[0] for row in large.tables[0].rows] == ["f-large"]
    assert report.section("slow_queries").notes == [
        f"no slow_query findings in findings documents {tmp_path / 'scan.json'}, {tmp_path / 'more.json'} "
        "in this period"
    ]
    assert report.section("query_volume").notes == [
        "Prometheus not queried (no --prometheus): query volume comes from its metrics only"
    ]


def test_groups_seen_only_outside_the_period_are_left_out(tmp_path: Path) -> None:
    findings = load_findings([str(_groups_file(tmp_path, hours=(30,)))])  # a day after the period
    report = build_report(PERIOD, findings=findings, now=END)
    assert not report.has_data
    assert report.section("findings_by_rule").notes == [
        f"no findings in findings document {tmp_path / 'scan.json'} in this period"
    ]


def test_a_file_that_is_not_a_findings_document_is_named_in_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "sarif"}')
    with pytest.raises(ValueError, match=r"bad\.json: not a tenantwatch findings document"):
        load_findings([str(bad)])
    with pytest.raises(ValueError, match=r"cannot read findings document .*missing\.json"):
        load_findings([str(tmp_path / "missing.json")])


def test_period_bounds_and_default_step() -> None:
    assert Period.named("weekly", end=END).start == END - timedelta(days=7)
    assert Period.named("weekly", end=END).step_seconds == 10080  # about 60 points
    assert Period.between(END - timedelta(minutes=1), END).step_seconds == 5  # never below 5 s
    with pytest.raises(ValueError, match=r"ends .* before it starts"):
        Period.between(END, END - timedelta(hours=1))
    with pytest.raises(ValueError, match="unknown period 'monthly'"):
        Period.named("monthly", end=END)


def test_the_prometheus_url_is_shown_without_its_credentials() -> None:
    client = PrometheusClient("https://reader:s3cret@prom.example:9090/prometheus/")
    assert client.url == "https://prom.example:9090/prometheus"
    report = build_report(PERIOD, prometheus=FakePrometheus({}), now=END)
    assert "s3cret" not in json.dumps(report.sources)


def _repeated_violations_file(tmp_path: Path) -> Path:
    """What a scan of the trial app gives: repeated_violations per tenant and per user, from the real rule, on the
    same statement and code location (the groups differ only by the subject they count)."""
    from tenantwatch.config import Settings
    from tenantwatch.rules.repeated_violations import RULE

    settings = Settings()
    serious = Finding(rule="missing_tenant_filter", severity="critical", message="m", fingerprint="f-mtf")
    groups = FindingGroups()
    for hour, tenant in ((1, "1"), (2, "2")):
        window = RULE.open_window(settings, settings.state)
        facts = SpanFacts(
            statement="SELECT * FROM tasks", code_filepath="myapp/service.py", code_lineno=19, tenant_id=tenant,
            user_id=f"u-{tenant}",
        )  # fmt: skip
        for finding in window.after([serious] * 5, facts, 100.0):
            groups.add(finding, facts, time_ns=int((T + hour * 3600) * 1e9), trace_id="1" * 32)
    path = tmp_path / "rv.json"
    path.write_text(json.dumps(groups.to_json()))
    return path


def test_repeated_violations_per_tenant_and_per_user_are_told_apart_by_their_subject(tmp_path: Path) -> None:
    findings = load_findings([str(_repeated_violations_file(tmp_path))])
    report = build_report(PERIOD, findings=findings, now=END)
    top = report.section("top_fingerprints").tables[0]
    assert top.columns[-1] == "message"
    rows = {tuple(row[:-1]) for row in top.rows}
    assert len(rows) == 4  # four groups, and each row now differs from the others
    messages = sorted(str(row[-1]) for row in top.rows)
    assert messages == [
        "tenant '1' has 5 high or critical findings within 3600 s (threshold 5)",
        "tenant '2' has 5 high or critical findings within 3600 s (threshold 5)",
        "user 'u-1' has 5 high or critical findings within 3600 s (threshold 5)",
        "user 'u-2' has 5 high or critical findings within 3600 s (threshold 5)",
    ]
    incidents = report.section("incidents")
    assert [row[1:4] for row in incidents.tables[0].rows] == [
        ["repeated_violations", "tenant '1'", 1],
        ["repeated_violations", "user 'u-1'", 1],
        ["repeated_violations", "tenant '2'", 1],
        ["repeated_violations", "user 'u-2'", 1],
    ]
    names = [series.name for series in incidents.charts[0].series]
    assert len(names) == len(set(names)) == 4
    assert "repeated_violations (user 'u-1', scanned)" in names


def test_incidents_of_one_kind_and_subject_share_one_legend_entry(tmp_path: Path) -> None:
    groups = FindingGroups()
    message = "client 10.0.0.7 had 12 auth failures within 60 s (threshold 10)"
    for hour, fingerprint in ((1, "f-a"), (3, "f-b")):  # same client, seen by two services: two fingerprints
        finding = Finding(rule="brute_force", severity="high", message=message, fingerprint=fingerprint)
        groups.add(finding, SpanFacts(tenant_id="acme"), time_ns=int((T + hour * 3600) * 1e9))
    path = tmp_path / "bf.json"
    path.write_text(json.dumps(groups.to_json()))
    chart = build_report(PERIOD, findings=load_findings([str(path)]), now=END).section("incidents").charts[0]
    assert [(s.name, s.x) for s in chart.series] == [
        ("brute_force (client 10.0.0.7, scanned)", [T + 3600, T + 3 * 3600])
    ]
