"""``tenantwatch report``: write a daily or weekly report as one self-contained HTML file, Markdown and JSON.

Thin: the sources, the model and the renderers live in :mod:`tenantwatch.tools.report`. Exit codes: 0 written,
1 no data at all in the period (nothing written unless ``--allow-empty``), 2 usage errors, an unreadable findings
document, Prometheus down or not Prometheus, or plotly missing for the HTML.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from tenantwatch.cli._common import EXIT_OK, UsageError
from tenantwatch.cli._time import moment

__all__ = ["EXIT_EMPTY", "add_parser", "run"]

EXIT_EMPTY: Final = 1
"""No source had any data for the period (and ``--allow-empty`` was not given)."""

_EXAMPLES: Final = """\
examples:
  tenantwatch report --prometheus http://127.0.0.1:9090                      # the last 24 h -> report.html
  tenantwatch report --prometheus http://prom:9090 --period weekly \\
      --output weekly.html --markdown weekly.md --json weekly.json
  tenantwatch report --findings scan.json --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z
  tenantwatch report --prometheus http://prom:9090 --since 24h --until 1h      # same grammar as scan --since
  tenantwatch scan traces.jsonl --json > scan.json && \\
      tenantwatch report --prometheus http://prom:9090 --findings scan.json --title "okr-api, week 48"

exit codes: 0 written, 1 no data in the period (see --allow-empty), 2 usage error, unreadable findings document,
Prometheus unreachable or not Prometheus, plotly missing (pip install 'tenantwatch[report]')."""


def add_parser(sub: Any) -> None:
    """Register ``report`` on the subcommand parsers."""
    report = sub.add_parser(
        "report",
        help="write a daily or weekly report (one self-contained HTML file, Markdown, JSON)",
        description=(
            "Report a period: findings by rule, severity, tenant and route over time, top finding fingerprints with "
            "first-seen dates, query volume per tenant and its spikes, large results and slow queries, incidents on "
            "a timeline. Data from Prometheus range queries (the collector's metrics) and/or finding-group "
            "documents of `tenantwatch scan --json`. Each section names its sources and says when one had no data."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("--prometheus", metavar="URL", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    report.add_argument(
        "--findings",
        metavar="FILE",
        action="append",
        default=[],
        help="a findings document written by `tenantwatch scan --json` (repeatable; merged)",
    )
    when = report.add_mutually_exclusive_group()
    when.add_argument(
        "--period", choices=("daily", "weekly"), help="the last day or week up to --until (default daily)"
    )
    when.add_argument(
        "--since",
        metavar="TIME",
        help="start of the period: a duration back from now (30m, 24h, 7d) or RFC 3339 (2026-12-01T00:00:00Z)",
    )
    report.add_argument(
        "--until", metavar="TIME", help="end of the period: a duration back from now (1h) or RFC 3339 (default now)"
    )
    report.add_argument(
        "--step", metavar="SECONDS", type=int, help="step of the time charts (default: about 60 points per period)"
    )
    report.add_argument("-o", "--output", metavar="FILE", default="report.html", help="HTML file (default report.html)")
    report.add_argument("--no-html", action="store_true", help="write no HTML (only --markdown/--json)")
    report.add_argument("--markdown", metavar="FILE", help="also write the report as Markdown ('-': stdout)")
    report.add_argument(
        "--json", dest="json_file", metavar="FILE", help="also write the report's data as JSON ('-': stdout)"
    )
    report.add_argument("--title", help="the report's title (default: tenantwatch <period> report, <start> to <end>)")
    report.add_argument(
        "--allow-empty", action="store_true", help="write the report even when no source has data (exit 0)"
    )
    report.add_argument(
        "--timeout", metavar="SECONDS", type=float, default=10.0, help="per Prometheus request (default 10)"
    )
    report.set_defaults(handler=run)


def _time(text: str, option: str, now: datetime) -> datetime:
    """The grammar of ``scan --since``: a duration back from ``now`` (24h), ``now``, or an RFC 3339 time."""
    return datetime.fromtimestamp(moment(text, option, now.timestamp()), UTC)


def _write(target: str, text: str, stdout: IO[str]) -> None:
    if target == "-":
        stdout.write(text)
        return
    path = Path(target)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent if str(path.parent) else ".")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it 0600; a report is for sharing
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"cannot write {target}: {error.strerror or error}") from None


def run(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Build the report and write every format asked for; returns the exit code."""
    from tenantwatch.tools.report import (
        Period,
        PrometheusClient,
        PrometheusError,
        ReportDependencyError,
        build_report,
        load_findings,
        render_html,
        render_json,
        render_markdown,
    )

    if not args.prometheus and not args.findings:
        raise UsageError("nothing to report from: give --prometheus URL, --findings FILE, or both")
    if args.no_html and not args.markdown and not args.json_file:
        raise UsageError("--no-html leaves nothing to write: add --markdown FILE or --json FILE")
    if args.step is not None and args.step < 1:
        raise UsageError("--step must be at least 1 second")
    now = datetime.now(UTC)
    until = _time(args.until, "--until", now) if args.until else now
    try:
        if args.since:
            period = Period.between(_time(args.since, "--since", now), until, step_seconds=args.step)
        else:
            period = Period.named(args.period or "daily", end=until, step_seconds=args.step)
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        findings = load_findings(args.findings) if args.findings else None
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        client = PrometheusClient(args.prometheus, timeout=args.timeout) if args.prometheus else None
        if client is not None:
            client.check()
        report = build_report(period, prometheus=client, findings=findings, title=args.title)
    except PrometheusError as error:
        raise UsageError(str(error)) from None
    empty = [section.title for section in report.sections if not section.has_data]
    if not report.has_data and not args.allow_empty:
        stderr.write(
            f"tenantwatch report: no data from any source ({'; '.join(report.sources)}) between "
            f"{period.to_json()['start']} and {period.to_json()['end']}: nothing written "
            "(check the period and the sources, or pass --allow-empty to write an empty report)\n"
        )
        return EXIT_EMPTY
    try:
        page = None if args.no_html else render_html(report)
    except ReportDependencyError as error:
        raise UsageError(str(error)) from None
    written: list[str] = []
    if page is not None:
        _write(args.output, page, stdout)
        written.append(args.output)
    if args.markdown:
        _write(args.markdown, render_markdown(report), stdout)
        written.append(args.markdown)
    if args.json_file:
        _write(args.json_file, render_json(report), stdout)
        written.append(args.json_file)
    charts = sum(len(section.charts) for section in report.sections)
    stderr.write(
        f"wrote {', '.join(written)}: {len(report.sections) - len(empty)} of {len(report.sections)} sections with "
        f"data, {charts} charts" + (f"; no data: {', '.join(empty)}" if empty else "") + "\n"
    )
    return EXIT_OK
