"""The report as ONE self-contained HTML file: plotly charts with plotly.js inlined, no request at view time.

Needs the ``report`` extra (``pip install 'tenantwatch[report]'``: plotly). Every chart is a ``<div class="chart">``
with the id ``chart-<chart id>``; trace colours come from :data:`PALETTE` in order, so a rendering check can look for
them. Counts per step are stacked bars over their step and quantiles lines with markers, every y-axis from zero;
under each chart (but the timeline) a ``<table class="chart-totals">`` holds the Markdown's totals. Text from the
data (tenant buckets, table names, statements) is HTML-escaped; nothing is loaded from a network: no CDN script, no
web font, no MathJax.
"""

from __future__ import annotations

import html
import json
from typing import Any, Final

from tenantwatch.tools.report.model import Chart, Period, Report, Section, Table, iso

__all__ = ["PALETTE", "ReportDependencyError", "render_html"]

PALETTE: Final = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
"""Trace colours, first series first (cycled)."""

_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.meta, .sources, .note { color: #555; font-size: .9rem; } .note { background: #fff8e1; padding: .3rem .6rem; }
.empty-report { background: #fdecea; padding: .6rem; font-weight: bold; }
.chart { height: 380px; } table { border-collapse: collapse; font-size: .85rem; margin: .6rem 0 1.2rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
caption { text-align: left; white-space: nowrap; font-weight: bold; padding: .2rem 0; }
th { background: #f4f4f4; } td.num { text-align: right; } code { font-size: .8rem; }
"""


_DASHES: Final = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
_SYMBOLS: Final = ("circle", "square", "diamond", "triangle-up", "x", "cross", "star", "pentagon")


class ReportDependencyError(RuntimeError):
    """plotly is not installed (the ``report`` extra)."""


def _plotly() -> Any:
    try:
        import plotly.graph_objects as go
        import plotly.io as pio
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ReportDependencyError(
            "the HTML report needs plotly: pip install 'tenantwatch[report]' (or write only --markdown/--json)"
        ) from None
    return go, pio, get_plotlyjs


def _figure(chart: Chart, go: Any, period: Period) -> Any:
    figure = go.Figure()
    step_ms = period.step_seconds * 1000
    for index, series in enumerate(chart.series):
        colour = PALETTE[index % len(PALETTE)]
        if chart.kind == "bar":
            figure.add_trace(go.Bar(name=series.name, x=list(series.x), y=series.y, marker_color=colour))
            continue
        x = [iso(float(v)) for v in series.x]
        if chart.kind == "timeline":  # one row per kind of incident, a marker per occurrence sized by its count
            figure.add_trace(
                go.Scatter(
                    name=series.name,
                    x=x,
                    y=[series.name] * len(x),
                    mode="markers",
                    text=[
                        f"{count:g} x {who}" for count, who in zip(series.y, series.text or [""] * len(x), strict=True)
                    ],
                    marker={
                        "color": colour,
                        "size": [min(30, 10 + 2 * count) for count in series.y],
                        "symbol": "diamond",
                    },
                )
            )
        elif chart.summable:  # counts per step: stacked bars over the step each count covers
            figure.add_trace(
                go.Bar(
                    name=series.name,
                    x=x,
                    y=series.y,
                    width=step_ms,
                    offset=-step_ms,  # a point at t counts the step ending at t: the bar spans [t - step, t]
                    marker={"color": colour, "line": {"width": 0}},
                    hovertemplate="%{y:g} in the step to %{x}<extra>%{fullData.name}</extra>",
                )
            )
        else:  # a quantile per step: lines, each with its own dash and symbol so equal series stay visible
            figure.add_trace(
                go.Scatter(
                    name=series.name,
                    x=x,
                    y=series.y,
                    mode="lines+markers",
                    line={"color": colour, "width": 2, "dash": _DASHES[index % len(_DASHES)]},
                    marker={"color": colour, "size": 7, "symbol": _SYMBOLS[index % len(_SYMBOLS)]},
                )
            )
    figure.update_layout(
        title={"text": html.escape(chart.title)},
        yaxis_title=chart.y_title if chart.kind != "timeline" else None,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        legend={"orientation": "h", "y": -0.2, "traceorder": "normal"},  # stacked bars would reverse it
        showlegend=chart.kind != "bar" or len(chart.series) > 1,  # one bar series: its name is the y title
        barmode="stack",  # identical series stack instead of hiding each other
    )
    if chart.kind != "timeline":
        figure.update_yaxes(rangemode="tozero")  # a count of 48 against 47 is not a cliff
    if chart.kind != "bar":  # the whole period, so a quiet stretch shows as quiet, not as a zoom on the busy one
        figure.update_xaxes(range=[iso(period.start), iso(period.end)], type="date")
    return figure


def _table(table: Table, *, css: str = "") -> str:
    head = "".join(f"<th>{html.escape(column)}</th>" for column in table.columns)
    body = []
    for row in table.rows:
        cells = []
        for value in row:
            if isinstance(value, int | float):
                cells.append(f'<td class="num">{value:g}</td>')
            else:
                cells.append(f"<td>{html.escape('-' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{html.escape(table.title)}</caption>"
    opening = f'<table class="{css}">' if css else "<table>"
    return f"{opening}{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(section: Section, go: Any, pio: Any, period: Period) -> str:
    parts = [f'<section id="section-{html.escape(section.id)}">', f"<h2>{html.escape(section.title)}</h2>"]
    if section.sources:
        items = "".join(f"<li>{html.escape(source)}</li>" for source in section.sources)
        parts.append(f'<ul class="sources">{items}</ul>')
    parts.extend(f'<p class="note">{html.escape(note)}</p>' for note in section.notes)
    for chart in section.charts:
        div = pio.to_html(
            _figure(chart, go, period),
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=f"chart-{chart.id}",
            default_height="380px",
            config={"displaylogo": False, "responsive": True, "displayModeBar": False},
        )
        parts.append(
            f'<div class="chart-box" data-chart="{html.escape(chart.id)}" data-kind="{chart.kind}">{div}</div>'
        )
        if chart.kind != "timeline":  # the incidents table lists every event already
            columns, rows = chart.summary()
            parts.append(_table(Table(f"{chart.title} ({chart.y_title})", columns, rows), css="chart-totals"))
    parts.extend(_table(table) for table in section.tables)
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The whole page; raises :class:`ReportDependencyError` without plotly."""
    go, pio, get_plotlyjs = _plotly()
    period = report.period
    sources = "".join(f"<li>{html.escape(source)}</li>" for source in report.sources)
    empty = "" if report.has_data else '<p class="empty-report">No data from any source in this period.</p>'
    index = "".join(
        f'<li><a href="#section-{html.escape(s.id)}">{html.escape(s.title)}</a>{"" if s.has_data else " (no data)"}'
        "</li>"
        for s in report.sections
    )
    body = "\n".join(_section(section, go, pio, period) for section in report.sections)
    manifest = json.dumps([c.id for s in report.sections for c in s.charts])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(report.title)}</title>
<meta name="generator" content="tenantwatch report">
<style>{_STYLE}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head>
<body data-charts='{html.escape(manifest)}'>
<h1>{html.escape(report.title)}</h1>
<p class="meta">Period {iso(period.start)} to {iso(period.end)} ({html.escape(period.name)}, step
{period.step_seconds}s); generated {iso(report.generated_at)}.</p>
<ul class="sources">{sources}</ul>
{empty}
<ol class="index">{index}</ol>
{body}
</body>
</html>
"""
