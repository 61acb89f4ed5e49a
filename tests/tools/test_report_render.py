"""The report's renderers on fixed data: exact Markdown and JSON, empty sections said explicitly, a self-contained
HTML page with every chart and escaped values."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from tenantwatch.tools.report import (
    Chart,
    Period,
    Report,
    Section,
    Series,
    Table,
    render_html,
    render_json,
    render_markdown,
)

START = datetime(2026, 12, 1, tzinfo=UTC)
END = datetime(2026, 12, 2, tzinfo=UTC)
T = START.timestamp()


def _report() -> Report:
    period = Period.named("daily", end=END, step_seconds=3600)
    report = Report("Daily | okr-api", period, datetime(2026, 12, 2, 0, 5, tzinfo=UTC), ["Prometheus http://p:9090"])
    rules = Section("findings_by_rule", "Findings by rule")
    rules.add_chart(
        Chart("by-rule", "New findings", "time", "findings", [Series("missing_tenant_filter", [T, T + 3600], [2, 5])]),
        source="Prometheus http://p:9090: q1",
        empty="unused",
    )
    rules.add_chart(
        Chart(
            "by-rule-total", "Scanned", "bar", "findings", [Series("findings", ["large_result", "slow_query"], [3, 1])]
        ),
        source="findings document scan.json",
        empty="unused",
    )
    report.sections.append(rules)
    volume = Section("query_volume", "Query volume per tenant")
    volume.add_chart(
        Chart("volume", "Statements", "time", "statements", [Series("acme", [T], [0])]),
        source="Prometheus http://p:9090: q2",
        empty="no data from Prometheus for statements (db_client_operation_duration_seconds_count) in this period",
    )
    report.sections.append(volume)
    top = Section("top_fingerprints", "Top finding fingerprints")
    top.add_table(
        Table("Most frequent", ["fingerprint", "count", "code location"], [["ab|cd", 7, None]]),
        source="findings document scan.json",
        empty="unused",
    )
    report.sections.append(top)
    return report


MARKDOWN = """\
# Daily \\| okr-api

Period: 2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z (daily, step 3600s). Generated 2026-12-02T00:05:00Z.

Sources:

- Prometheus http://p:9090

## Findings by rule

- Source: Prometheus http://p:9090: q1
- Source: findings document scan.json

**New findings** (findings)

| series | total | peak | peak at |
|---|---|---|---|
| missing_tenant_filter | 7 | 5 | 2026-12-01T01:00:00Z |

**Scanned** (findings)

|  | findings |
|---|---|
| large_result | 3 |
| slow_query | 1 |

## Query volume per tenant

- Source: Prometheus http://p:9090: q2
- Note: no data from Prometheus for statements (db_client_operation_duration_seconds_count) in this period

## Top finding fingerprints

- Source: findings document scan.json

**Most frequent**

| fingerprint | count | code location |
|---|---|---|
| ab\\|cd | 7 | - |
"""


def test_markdown_is_exact_on_fixed_data_and_says_which_source_had_no_data() -> None:
    assert render_markdown(_report()) == MARKDOWN


def test_markdown_of_a_report_without_data_says_so_at_the_top() -> None:
    report = _report()
    report.sections = [report.sections[1]]
    text = render_markdown(report)
    assert "**No data from any source in this period.**" in text.split("## ")[0]


def test_json_is_exact_on_fixed_data() -> None:
    document = json.loads(render_json(_report()))
    assert document == {
        "format": "tenantwatch.report",
        "version": 1,
        "title": "Daily | okr-api",
        "generated_at": "2026-12-02T00:05:00Z",
        "period": {
            "name": "daily",
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-02T00:00:00Z",
            "step_seconds": 3600,
        },
        "has_data": True,
        "sources": ["Prometheus http://p:9090"],
        "sections": [
            {
                "id": "findings_by_rule",
                "title": "Findings by rule",
                "has_data": True,
                "sources": ["Prometheus http://p:9090: q1", "findings document scan.json"],
                "notes": [],
                "charts": [
                    {
                        "id": "by-rule",
                        "title": "New findings",
                        "kind": "time",
                        "y_title": "findings",
                        "series": [
                            {
                                "name": "missing_tenant_filter",
                                "x": ["2026-12-01T00:00:00Z", "2026-12-01T01:00:00Z"],
                                "y": [2, 5],
                                "total": 7,
                            }
                        ],
                    },
                    {
                        "id": "by-rule-total",
                        "title": "Scanned",
                        "kind": "bar",
                        "y_title": "findings",
                        "series": [{"name": "findings", "x": ["large_result", "slow_query"], "y": [3, 1], "total": 4}],
                    },
                ],
                "tables": [],
            },
            {
                "id": "query_volume",
                "title": "Query volume per tenant",
                "has_data": False,
                "sources": ["Prometheus http://p:9090: q2"],
                "notes": [
                    "no data from Prometheus for statements (db_client_operation_duration_seconds_count) in this period"
                ],
                "charts": [],
                "tables": [],
            },
            {
                "id": "top_fingerprints",
                "title": "Top finding fingerprints",
                "has_data": True,
                "sources": ["findings document scan.json"],
                "notes": [],
                "charts": [],
                "tables": [
                    {
                        "title": "Most frequent",
                        "columns": ["fingerprint", "count", "code location"],
                        "rows": [["ab|cd", 7, None]],
                    }
                ],
            },
        ],
    }


def test_a_p95_chart_has_no_total_in_json_and_shows_the_last_value_in_markdown() -> None:
    report = _report()
    chart = Chart("p95", "p95 duration", "time", "s", [Series("notes", [T, T + 60], [0.25, 0.5])], summable=False)
    report.sections[0].charts = [chart]
    document = json.loads(render_json(report))
    assert document["sections"][0]["charts"][0]["series"][0]["total"] is None
    assert "| notes | 0.5 | 0.5 | 2026-12-01T00:01:00Z |" in render_markdown(report)
    assert "| series | last | peak | peak at |" in render_markdown(report)


def test_html_is_one_self_contained_page_with_every_chart_and_escaped_values() -> None:
    report = _report()
    report.sections[2].tables[0].rows.append(["<script>alert(1)</script>", 1, "x.py:1"])
    page = render_html(report)
    assert page.count("<script") == page.count("</script>")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # plotly.js inlined, no CDN, no font
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # the library itself is in the page
    assert 'id="chart-by-rule"' in page and 'id="chart-by-rule-total"' in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "no data from Prometheus for statements" in page
    assert "Daily | okr-api" in page


def _figure(page: str, chart_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and layout plotly draws for ``chart-<chart_id>``, read back from the page."""
    match = re.search(r'Plotly\.newPlot\(\s*"chart-' + re.escape(chart_id) + r'",\s*', page)
    assert match, chart_id
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, match.end())
    layout, _ = decoder.raw_decode(page, page.index("{", end))
    return data, layout


def _daily_born_in_the_last_step() -> Report:
    """The trial's daily report: every series born in the last step, two of them identical."""
    period = Period.named("daily", end=END, step_seconds=1440)
    report = Report("Daily", period, END, ["Prometheus http://p:9090"])
    last = END.timestamp()
    section = Section("findings_by_tenant", "Findings by tenant")
    section.add_chart(
        Chart("by-tenant", "New findings", "time", "findings", [Series("1", [last], [48]), Series("2", [last], [48])]),
        source="Prometheus http://p:9090: q",
        empty="unused",
    )
    section.add_chart(
        Chart("p95", "p95 duration", "time", "s", [Series("tasks", [last], [0.02])], summable=False),
        source="Prometheus http://p:9090: q2",
        empty="unused",
    )
    report.sections.append(section)
    return report


def test_counts_per_step_are_stacked_bars_over_their_step_from_zero_so_equal_series_both_show() -> None:
    page = render_html(_daily_born_in_the_last_step())
    data, layout = _figure(page, "by-tenant")
    assert [(t["type"], t["name"], t["y"]) for t in data] == [("bar", "1", [48]), ("bar", "2", [48])]
    assert layout["barmode"] == "stack"  # tenant 2 stacks on tenant 1 instead of hiding it
    assert layout["yaxis"]["rangemode"] == "tozero"  # 48 is drawn as 48 high, not as a dot between 47 and 49
    # the one point is a bar as wide as the step (24 min of a day), ending at the period's end: visible
    assert all(t["width"] == 1440 * 1000 and t["offset"] == -1440 * 1000 for t in data)
    assert layout["xaxis"]["range"] == ["2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z"]


def test_a_quantile_chart_keeps_lines_from_zero_with_a_marker_on_a_lone_point() -> None:
    data, layout = _figure(render_html(_daily_born_in_the_last_step()), "p95")
    assert [(t["type"], t["mode"]) for t in data] == [("scatter", "lines+markers")]
    assert layout["yaxis"]["rangemode"] == "tozero"


def test_every_chart_in_the_html_has_its_totals_table_like_the_markdown() -> None:
    page = render_html(_report())
    assert (
        '<table class="chart-totals"><caption>New findings (findings)</caption><thead><tr><th>series</th>'
        "<th>total</th><th>peak</th><th>peak at</th></tr></thead><tbody><tr><td>missing_tenant_filter</td>"
        '<td class="num">7</td><td class="num">5</td><td>2026-12-01T01:00:00Z</td></tr></tbody></table>'
    ) in page
    assert (
        "<caption>Scanned (findings)</caption><thead><tr><th></th><th>findings</th></tr></thead><tbody><tr><td>"
        'large_result</td><td class="num">3</td></tr>'
    ) in page
    _, layout = _figure(page, "by-rule-total")
    assert layout["showlegend"] is False  # one bar series: a legend saying "findings" tells nothing
    _, layout = _figure(render_html(_daily_born_in_the_last_step()), "p95")
    assert layout["showlegend"] is True  # a time chart names its one series
