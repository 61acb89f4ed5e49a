"""The report as a JSON document (``--json FILE``): the same data the HTML charts and the Markdown tables show.

::

    {"format": "tenantwatch.report", "version": 1, "title": ..., "generated_at": ..., "period": {...},
     "has_data": true, "sources": [...],
     "sections": [{"id": "findings_by_rule", "title": ..., "has_data": ..., "sources": [...], "notes": [...],
                   "charts": [{"id", "title", "kind", "y_title", "series": [{"name", "x", "y", "total"}]}],
                   "tables": [{"title", "columns", "rows"}]}]}

Time-chart ``x`` values are ISO 8601 UTC times; bar ``x`` values are the categories; ``total`` is ``null`` where values
do not add up (a p95 per step).
"""

from __future__ import annotations

import json
from typing import Any

from tenantwatch.tools.report.model import REPORT_FORMAT, REPORT_VERSION, Chart, Report, Section, Series, iso

__all__ = ["render_json", "report_document"]


def _series(series: Series, chart: Chart) -> dict[str, Any]:
    x: list[Any] = [iso(float(v)) for v in series.x] if chart.kind != "bar" else list(series.x)
    total = series.total if chart.summable else None
    out: dict[str, Any] = {"name": series.name, "x": x, "y": list(series.y), "total": total}
    if series.text is not None:
        out["text"] = list(series.text)
    return out


def _section(section: Section) -> dict[str, Any]:
    return {
        "id": section.id,
        "title": section.title,
        "has_data": section.has_data,
        "sources": list(section.sources),
        "notes": list(section.notes),
        "charts": [
            {
                "id": chart.id,
                "title": chart.title,
                "kind": chart.kind,
                "y_title": chart.y_title,
                "series": [_series(series, chart) for series in chart.series],
            }
            for chart in section.charts
        ],
        "tables": [
            {"title": table.title, "columns": list(table.columns), "rows": [list(row) for row in table.rows]}
            for table in section.tables
        ],
    }


def report_document(report: Report) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "title": report.title,
        "generated_at": iso(report.generated_at),
        "period": report.period.to_json(),
        "has_data": report.has_data,
        "sources": list(report.sources),
        "sections": [_section(section) for section in report.sections],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_document(report), indent=2, ensure_ascii=False) + "\n"
