"""Assemble a :class:`~tenantwatch.tools.report.model.Report` from Prometheus and/or finding-group documents.

Sections, in order (ids in brackets, the same in every format):

* findings by rule [``findings_by_rule``], severity [``findings_by_severity``], tenant [``findings_by_tenant``] and
  route [``findings_by_route``]: new findings per step from ``tenantwatch_findings_total`` (routes from the
  collector's span metrics, whose db spans carry ``http.route`` only when the application sets it), totals from the
  findings documents;
* top finding fingerprints with first-seen dates [``top_fingerprints``] (findings documents only: Prometheus has no
  fingerprint label);
* query volume per tenant and its spikes [``query_volume``];
* large results [``large_results``] and slow queries [``slow_queries``]: per table from Prometheus, per fingerprint
  from the findings documents;
* incidents on a timeline [``incidents``]: repeated violations, brute force and query-rate spikes (findings), blocks
  started by response actions (``tenantwatch_blocks_total``) and requests refused while blocked
  (``tenantwatch_http_blocked_total``).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from tenantwatch.tools.groups import FindingGroup
from tenantwatch.tools.report.findings import FindingsSource
from tenantwatch.tools.report.model import Chart, Period, Report, Section, Series, Table, iso
from tenantwatch.tools.report.prometheus import PrometheusClient, RangeResult, new_per_step

__all__ = ["INCIDENT_RULES", "SPIKE_FACTOR", "SPIKE_MINIMUM", "Spike", "build_report", "spikes", "subject"]

FINDINGS: Final = "tenantwatch_findings_total"
QUERIES: Final = "db_client_operation_duration_seconds_count"
DURATION_BUCKETS: Final = "db_client_operation_duration_seconds_bucket"
ROWS_BUCKETS: Final = "tenantwatch_db_returned_rows_bucket"
SPAN_CALLS: Final = "traces_span_metrics_calls_total"
BLOCKS: Final = "tenantwatch_blocks_total"
HTTP_BLOCKED: Final = "tenantwatch_http_blocked_total"

INCIDENT_RULES: Final = ("repeated_violations", "brute_force", "query_rate_spike")
SPIKE_FACTOR: Final = 3.0
"""A step is a spike when its query count is at least this many times the tenant's median step in the period..."""
SPIKE_MINIMUM: Final = 10.0
"""... and at least this many queries (a tenant going from 1 to 3 queries is no spike)."""
TOP_FINGERPRINTS: Final = 20
_STATEMENT_CHARS: Final = 160
_MESSAGE_CHARS: Final = 120
_SUBJECT: Final = re.compile(r"""^(?:(tenant|user) ('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(client) (\S+)) """)
"""The subject a keyed rule counts, as its message starts: ``tenant '1'``, ``user 'u-1'`` (repeated_violations,
query_rate_spike), ``client 10.0.0.7`` (brute_force). The finding has no structured subject field, and its
fingerprint is a hash of it."""
_NONE: Final = "(none)"
_MISSING: Final = {"db_collection_name": "(no table)", "tenant_bucket": "(no tenant)", "http_route": "(no route)"}
"""Series name for a result without the label (a statement on no table, ...)."""


@dataclass(frozen=True, slots=True)
class Spike:
    series: str
    time: float
    value: float
    median: float

    @property
    def ratio(self) -> float:
        return self.value / max(self.median, 1.0)


def spikes(series: Sequence[Series], *, factor: float = SPIKE_FACTOR, minimum: float = SPIKE_MINIMUM) -> list[Spike]:
    """Steps of each time series at or above ``factor`` x its own median step (and ``minimum``), in time order."""
    found: list[Spike] = []
    for one in series:
        if not one.y:
            continue
        median = statistics.median(one.y)
        for x, value in zip(one.x, one.y, strict=True):
            if value >= minimum and value >= factor * max(median, 1.0):
                found.append(Spike(one.name, float(x), value, median))  # type: ignore[arg-type]
    return sorted(found, key=lambda spike: (spike.time, spike.series))


class _Prometheus:
    """The report's questions to Prometheus over one period."""

    def __init__(self, client: PrometheusClient, period: Period) -> None:
        self.client = client
        self.period = period
        self.window = f"{max(period.step_seconds, 60)}s"
        """Rate window for quantiles: at least a minute so a rate has two samples at any scrape interval."""

    def source(self, expr: str) -> str:
        return f"Prometheus {self.client.url}: {expr}"

    def series(self, expr: str, label: str) -> list[Series]:
        results = self.client.query_range(expr, self.period)
        missing = _MISSING.get(label, _NONE)
        ordered = sorted((r for r in results if r.points), key=_order(label))  # all-NaN quantiles have no points
        return [_series(result, result.labels.get(label) or missing) for result in ordered]

    def new_findings(self, by: str, matcher: str = "") -> str:
        selector = f"{FINDINGS}{{{matcher}}}" if matcher else FINDINGS
        return new_per_step(selector, by, self.period.step_seconds)

    def time_chart(self, section: Section, chart: Chart, *, expr: str, label: str, metric: str) -> Chart:
        """Fill ``chart`` with one series per ``label`` value of ``expr`` and add it to ``section`` (or say why not)."""
        chart.series = self.series(expr, label)
        empty = f"no data from Prometheus for {chart.title.lower()} ({metric}) in this period"
        section.add_chart(chart, source=self.source(expr), empty=empty)
        return chart


def _order(label: str) -> Callable[[RangeResult], tuple[str, list[tuple[str, str]]]]:
    return lambda result: (result.labels.get(label) or "", sorted(result.labels.items()))


def _series(result: RangeResult, name: str) -> Series:
    return Series(name, [stamp for stamp, _ in result.points], [value for _, value in result.points])


def _bars(counts: Counter[str], name: str) -> Series:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return Series(name, [key for key, _ in ordered], [float(value) for _, value in ordered])


def _when(time_ns: int | None) -> str | None:
    return iso(time_ns / 1e9) if time_ns is not None else None


def _statement(group: FindingGroup) -> str | None:
    text = group.statement
    if text is None or len(text) <= _STATEMENT_CHARS:
        return text
    return text[: _STATEMENT_CHARS - 1] + "…"


def _message(group: FindingGroup) -> str:
    text = " ".join(group.message.split())
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def subject(group: FindingGroup) -> str:
    """Who an incident finding counts: the tenant, user or client its message names (``user 'u-1'``), else the
    context tenants of its occurrences."""
    match = _SUBJECT.match(group.message)
    if match is not None:
        kind, who = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
        return f"{kind} {who}"
    return ", ".join(sorted(t or "(no tenant)" for t in group.tenants)) or _NONE


def build_report(
    period: Period,
    *,
    prometheus: PrometheusClient | None = None,
    findings: FindingsSource | None = None,
    title: str | None = None,
    now: datetime | None = None,
) -> Report:
    """Ask every given source about ``period``; raises :class:`PrometheusError` if Prometheus fails mid-way."""
    if prometheus is None and findings is None:
        raise ValueError("a report needs Prometheus, findings documents or both")
    report = Report(
        title=title
        or f"tenantwatch {'' if period.name == 'custom' else period.name + ' '}report, "
        f"{iso(period.start)} to {iso(period.end)}",
        period=period,
        generated_at=now or datetime.now(UTC),
    )
    prom = _Prometheus(prometheus, period) if prometheus is not None else None
    if prometheus is not None:
        report.sources.append(f"Prometheus {prometheus.url} (range queries, step {period.step_seconds}s)")
    if findings is not None:
        kept = findings.in_period(period)
        report.sources.append(
            f"{findings.name}: {len(findings.groups)} finding groups, {findings.groups.findings} findings, "
            f"{len(kept)} groups seen in the period"
        )
    for label, key, title_text in (
        ("tenantwatch_rule", "rule", "rule"),
        ("tenantwatch_severity", "severity", "severity"),
        ("tenant_bucket", "tenant", "tenant"),
    ):
        section = Section(f"findings_by_{key}", f"Findings by {title_text}")
        if prom is not None:
            chart = Chart(f"findings-by-{key}-over-time", f"New findings per step by {title_text}", "time", "findings")
            prom.time_chart(section, chart, expr=prom.new_findings(label), label=label, metric=FINDINGS)
            if key == "tenant":
                section.notes.append(
                    "Tenants are the metrics' bounded tenant buckets: the first tenants a process saw, "
                    "every later one under __other__, work without a tenant under __none__."
                )
        if findings is not None:
            _findings_bars(section, findings, period, key, title_text)
        report.sections.append(section)
    report.sections.append(_by_route(prom, findings, period))
    report.sections.append(_top_fingerprints(findings, period))
    report.sections.append(_query_volume(prom))
    report.sections.append(
        _per_rule(prom, findings, period, rule="large_result", section_id="large_results", title="Large results")
    )
    report.sections.append(
        _per_rule(prom, findings, period, rule="slow_query", section_id="slow_queries", title="Slow queries")
    )
    report.sections.append(_incidents(prom, findings, period))
    return report


def _findings_bars(section: Section, findings: FindingsSource, period: Period, key: str, title: str) -> None:
    counts = findings.counts(period, key)
    chart = Chart(f"findings-by-{key}-total", f"Findings by {title} (scanned traces)", "bar", "findings")
    chart.series.append(_bars(counts, "findings"))
    section.add_chart(chart, source=findings.name, empty=f"no findings in {findings.name} in this period")


def _by_route(prom: _Prometheus | None, findings: FindingsSource | None, period: Period) -> Section:
    section = Section("findings_by_route", "Findings by route")
    if prom is not None:
        expr = new_per_step(f'{SPAN_CALLS}{{tenantwatch_severity!=""}}', "http_route", period.step_seconds)
        chart = Chart("findings-by-route-over-time", "Spans with findings per step by route", "time", "spans")
        chart.series = [s for s in prom.series(expr, "http_route") if s.name != _MISSING["http_route"]]
        section.add_chart(
            chart,
            source=prom.source(expr),
            empty=f"no data from Prometheus for findings by route ({SPAN_CALLS} with tenantwatch_severity and "
            "http_route: db spans carry http.route only when the application sets it) in this period",
        )
    if findings is not None:
        _findings_bars(section, findings, period, "route", "route")
    return section


def _top_fingerprints(findings: FindingsSource | None, period: Period) -> Section:
    section = Section("top_fingerprints", "Top finding fingerprints")
    if findings is None:
        section.notes.append(
            "no findings documents given (--findings): Prometheus counts findings but has no fingerprint label"
        )
        return section
    table = Table(
        "Most frequent findings (one row per finding fingerprint)",
        [
            "fingerprint",
            "rule",
            "severity",
            "table",
            "count",
            "first seen",
            "last seen",
            "code location",
            "route",
            "message",
        ],
    )
    groups = sorted(findings.in_period(period), key=lambda g: (-g.count, g.fingerprint))[:TOP_FINGERPRINTS]
    for group in groups:
        table.rows.append(
            [
                group.fingerprint,
                group.rule,
                group.severity,
                group.table,
                group.count,
                _when(group.first_seen_ns),
                _when(group.last_seen_ns),
                group.code_location or None,
                group.route,
                _message(group),  # what tells apart groups of one rule and place (repeated_violations per user)
            ]
        )
    section.add_table(table, source=findings.name, empty=f"no findings in {findings.name} in this period")
    return section


def _query_volume(prom: _Prometheus | None) -> Section:
    section = Section("query_volume", "Query volume per tenant")
    if prom is None:
        section.notes.append("Prometheus not queried (no --prometheus): query volume comes from its metrics only")
        return section
    chart = prom.time_chart(
        section,
        Chart("query-volume", "Statements per step by tenant", "time", "statements"),
        expr=new_per_step(QUERIES, "tenant_bucket", prom.period.step_seconds),
        label="tenant_bucket",
        metric=QUERIES,
    )
    found = spikes(chart.series)
    table = Table(
        f"Spikes (a step at least {SPIKE_FACTOR:g}x the tenant's median step, at least {SPIKE_MINIMUM:g} statements)",
        ["time", "tenant", "statements", "median step", "ratio"],
        [[iso(s.time), s.series, s.value, s.median, round(s.ratio, 1)] for s in found],
    )
    if chart.has_data:
        if table.rows:
            section.tables.append(table)
        else:
            section.notes.append(
                f"no spikes: no tenant's step reached {SPIKE_FACTOR:g}x its median step (and {SPIKE_MINIMUM:g} "
                "statements) in this period"
            )
    return section


def _per_rule(
    prom: _Prometheus | None, findings: FindingsSource | None, period: Period, *, rule: str, section_id: str, title: str
) -> Section:
    section = Section(section_id, title)
    if prom is not None:
        prom.time_chart(
            section,
            Chart(f"{rule}-by-table", f"New {rule} findings per step by table", "time", "findings"),
            expr=prom.new_findings("db_collection_name", f'tenantwatch_rule="{rule}"'),
            label="db_collection_name",
            metric=f'{FINDINGS}{{tenantwatch_rule="{rule}"}}',
        )
        buckets, what, unit = (
            (ROWS_BUCKETS, "returned rows", "rows") if rule == "large_result" else (DURATION_BUCKETS, "duration", "s")
        )
        expr = f"histogram_quantile(0.95, sum by (le, db_collection_name) (rate({buckets}[{prom.window}])))"
        chart = Chart(f"{rule}-p95", f"p95 {what} by table", "time", unit, summable=False)
        prom.time_chart(section, chart, expr=expr, label="db_collection_name", metric=buckets)
    if findings is not None:
        table = Table(
            f"{rule} findings by fingerprint",
            ["fingerprint", "table", "count", "first seen", "last seen", "code location", "statement"],
        )
        for group in findings.in_period(period):
            if group.rule == rule:
                table.rows.append(
                    [
                        group.fingerprint,
                        group.table,
                        group.count,
                        _when(group.first_seen_ns),
                        _when(group.last_seen_ns),
                        group.code_location or None,
                        _statement(group),
                    ]
                )
        section.add_table(table, source=findings.name, empty=f"no {rule} findings in {findings.name} in this period")
    return section


def _incidents(prom: _Prometheus | None, findings: FindingsSource | None, period: Period) -> Section:
    section = Section("incidents", "Incidents")
    chart = Chart("incidents-timeline", "Incidents on a timeline", "timeline", "occurrences")
    table = Table("Incidents", ["time", "kind", "who", "count", "source"])
    if prom is not None:
        rules = "|".join(INCIDENT_RULES)
        questions: list[tuple[str, str, str]] = [
            (
                prom.new_findings("tenantwatch_rule, tenant_bucket", f'tenantwatch_rule=~"{rules}"'),
                "tenantwatch_rule",
                "tenant_bucket",
            ),
            (new_per_step(BLOCKS, "reason", period.step_seconds), "", "reason"),
            (new_per_step(HTTP_BLOCKED, "reason", period.step_seconds), "", "reason"),
        ]
        for expr, kind_label, who_label in questions:
            section.sources.append(prom.source(expr))
            for result in prom.client.query_range(expr, period):
                kind = result.labels.get(kind_label) if kind_label else None
                if kind is None:
                    kind = "block started" if BLOCKS in expr else "request refused while blocked"
                who = result.labels.get(who_label) or _NONE
                points = [(t, v) for t, v in result.points if v > 0]
                if not points:
                    continue
                chart.series.append(
                    Series(f"{kind} ({who})", [t for t, _ in points], [v for _, v in points], [who] * len(points))
                )
                table.rows.extend([iso(t), kind, who, v, "Prometheus"] for t, v in points)
        if not chart.has_data:
            section.notes.append(
                f"no data from Prometheus for incidents ({FINDINGS} of {', '.join(INCIDENT_RULES)}, {BLOCKS}, "
                f"{HTTP_BLOCKED}) in this period"
            )
    if findings is not None:
        section.sources.append(findings.name)
        before = len(table.rows)
        scanned: dict[str, Series] = {}
        for group in findings.in_period(period):
            if group.rule not in INCIDENT_RULES or group.first_seen_ns is None:
                continue
            who = subject(group)
            name = f"{group.rule} ({who}, scanned)"
            one = scanned.get(name)
            if one is None:  # one legend entry and one timeline row per kind and subject, several markers on it
                one = scanned[name] = Series(name, [], [], [])
                chart.series.append(one)
            one.x.append(group.first_seen_ns / 1e9)  # type: ignore[arg-type]
            one.y.append(float(group.count))
            assert one.text is not None
            one.text.append(f"{who} ({group.fingerprint})")
            table.rows.append([iso(group.first_seen_ns / 1e9), group.rule, who, group.count, findings.name])
        if len(table.rows) == before:
            section.notes.append(f"no incidents ({', '.join(INCIDENT_RULES)}) in {findings.name} in this period")
    if chart.has_data:
        section.charts.append(chart)
        table.rows.sort(key=lambda row: (str(row[0]), str(row[1]), str(row[2])))
        section.tables.append(table)
    return section
