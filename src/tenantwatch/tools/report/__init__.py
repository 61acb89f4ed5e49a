"""``tenantwatch report``: a daily or weekly report of findings, query volume, large and slow queries and incidents.

Data comes from Prometheus range queries (:mod:`.prometheus`) and/or finding-group documents written by
``tenantwatch scan --json`` (:mod:`.findings`); :mod:`.build` assembles the :class:`~.model.Report`, and one renderer
per format lays it out: :mod:`.html` (one self-contained file, plotly charts, needs the ``report`` extra),
:mod:`.markdown` and :mod:`.json_form`. Every section names its sources and says explicitly when a source had no data.
"""

from __future__ import annotations

from tenantwatch.tools.report.build import build_report, spikes
from tenantwatch.tools.report.findings import FindingsSource, load_findings
from tenantwatch.tools.report.html import PALETTE, ReportDependencyError, render_html
from tenantwatch.tools.report.json_form import render_json, report_document
from tenantwatch.tools.report.markdown import render_markdown
from tenantwatch.tools.report.model import Chart, Period, Report, Section, Series, Table
from tenantwatch.tools.report.prometheus import PrometheusClient, PrometheusError

__all__ = [
    "PALETTE",
    "Chart",
    "FindingsSource",
    "Period",
    "PrometheusClient",
    "PrometheusError",
    "Report",
    "ReportDependencyError",
    "Section",
    "Series",
    "Table",
    "build_report",
    "load_findings",
    "render_html",
    "render_json",
    "render_markdown",
    "report_document",
    "spikes",
]
