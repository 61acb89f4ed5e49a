"""The report as Markdown (``--markdown FILE``): every section with its sources and notes, each chart as a table of
its series (total, peak and when), each table as it is. Pipes and newlines in values are escaped."""

from __future__ import annotations

from tenantwatch.tools.report.model import Chart, Report, Table, iso

__all__ = ["render_markdown"]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _table(columns: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines.extend("| " + " | ".join(_cell(value) for value in row) + " |" for row in rows)
    return lines


def _chart(chart: Chart) -> list[str]:
    lines = [f"**{_cell(chart.title)}** ({chart.y_title})", ""]
    columns, rows = chart.summary()
    return [*lines, *_table(columns, [list(row) for row in rows]), ""]


def _data_table(table: Table) -> list[str]:
    return [f"**{_cell(table.title)}**", "", *_table(table.columns, [list(r) for r in table.rows]), ""]


def render_markdown(report: Report) -> str:
    period = report.period
    out = [
        f"# {_cell(report.title)}",
        "",
        f"Period: {iso(period.start)} to {iso(period.end)} ({period.name}, step {period.step_seconds}s). "
        f"Generated {iso(report.generated_at)}.",
        "",
        "Sources:",
        "",
        *(f"- {_cell(source)}" for source in report.sources),
        "",
    ]
    if not report.has_data:
        out += ["**No data from any source in this period.**", ""]
    for section in report.sections:
        out += [f"## {_cell(section.title)}", ""]
        out += [f"- Source: {_cell(source)}" for source in section.sources]
        out += [f"- Note: {_cell(note)}" for note in section.notes]
        if section.sources or section.notes:
            out.append("")
        for chart in section.charts:
            out += _chart(chart)
        for table in section.tables:
            out += _data_table(table)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"
