"""``tenantwatch scan``: judge stored traces with the live rules; print the findings grouped by fingerprint.

Arguments and printing only: reading and judging are :func:`tenantwatch.tools.scan.scan_sources`. Output goes
through :func:`emit`, one function taking the :class:`~tenantwatch.tools.groups.FindingGroups` (a table by default,
``--json`` the groups document, ``--sarif FILE`` a SARIF log beside either).

Exit codes: 0 done (no group at or above ``--fail-on``), 1 a group at or above ``--fail-on``, 2 usage or input
error: bad arguments or rules file, an unreadable or empty source (unless ``--allow-empty``), records that could not
be read (every readable one is still judged and printed), spans the processor could not judge.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

from tenantwatch import environment_variables as env
from tenantwatch.attributes import SEVERITIES
from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError, printable
from tenantwatch.cli._time import UNITS as _UNITS
from tenantwatch.cli._time import moment as _moment
from tenantwatch.cli._time import seconds as _seconds
from tenantwatch.config import ConfigError, load_settings
from tenantwatch.tools.gate.baseline import Baseline, BaselineError
from tenantwatch.tools.gate.compare import DEFAULT_FAIL_ON, GateResult, compare, render
from tenantwatch.tools.groups import FindingGroup, FindingGroups

__all__ = ["add_parser", "emit", "run"]

FAIL_ON_CHOICES: Final = (*SEVERITIES, "never")
_TABLE_EXAMPLES: Final = 3
"""Example traces listed per group under the table (--json has every example kept)."""
_EPILOG: Final = """\
examples:
  tenantwatch scan traces.json                       a file exporter file (format: json)
  tenantwatch scan traces.pb traces-old.json.gz      protobuf and gzip, several files
  gzip -dc traces.json.gz | tenantwatch scan -       stdin
  tenantwatch scan traces.json --since 2026-12-01T00:00:00Z --until 6h    spans that ended in that range
  tenantwatch scan --jaeger http://localhost:16686 --service okr-api --since 24h
  tenantwatch scan --jaeger http://jaeger:16686 --service okr-api --since 2026-12-01T00:00:00Z \\
      --until 2026-12-02T00:00:00Z --attribute tenantwatch.severity=critical --json > findings.json
  tenantwatch scan traces.json --config rules.yaml --sarif tenantwatch.sarif --fail-on high

exit codes: 0 ok, 1 a finding group at or above --fail-on, 2 usage or input error (unreadable or empty source,
records that could not be read: every readable record is still judged and printed).
"""


def add_parser(sub: Any) -> None:
    """Register ``scan`` on the subcommand parsers."""
    scan = sub.add_parser(
        "scan",
        help="judge stored traces (file exporter files, Jaeger) with the same rules as the live processor",
        description=(
            "Read stored traces (the collector file exporter's JSON or protobuf files, or Jaeger's query API), judge "
            "every span with the rules as the live processor does, and print the findings grouped by fingerprint. "
            "Findings the live run stored on the spans are not counted again: scan judges the stored facts anew."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scan.add_argument(
        "paths",
        nargs="*",
        metavar="FILE",
        help="file exporter output (json or proto, .gz, zstd), pretty-printed OTLP/JSON (jq .) or the console "
        "exporter's output; - for stdin (a directory: give the files in it)",
    )
    scan.add_argument(
        "--config", metavar="FILE", help=f"rules file, as used live (default: ${env.TENANTWATCH_RULES_FILE})"
    )
    scan.add_argument(
        "--since",
        help="start: a duration back from now (30m, 1h, 7d) or RFC 3339; Jaeger: traces started since (default 1h), "
        "files: spans that end since (default: all)",
    )
    scan.add_argument(
        "--until", help="end: a duration back from now or RFC 3339 (default: now); files: spans that end by then"
    )
    jaeger = scan.add_argument_group("Jaeger")
    jaeger.add_argument("--jaeger", metavar="URL", help="Jaeger query base URL (uses /api/v3/services and /traces)")
    jaeger.add_argument("--service", help="service whose traces to read (required with --jaeger)")
    jaeger.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keep traces where one span (or its resource) has KEY=VALUE (repeatable: all of them); checked by scan "
        "itself, Jaeger's HTTP API ignores the filter",
    )
    jaeger.add_argument("--page-size", type=int, default=200, metavar="N", help="traces per request (default 200)")
    jaeger.add_argument(
        "--window", default="15m", metavar="DURATION", help="time range per request (halved when a page is full)"
    )
    out = scan.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the findings document (tools/groups.py) as JSON")
    out.add_argument("--sarif", metavar="FILE", help="also write a SARIF 2.1.0 log to FILE")
    out.add_argument(
        "--jaeger-ui", metavar="URL", help="Jaeger UI base URL for trace links (default: the --jaeger URL)"
    )
    out.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default=None,
        help="lowest severity of a finding group that makes the exit code 1 (default: never; with --baseline: "
        "warning, counting only findings not in the baseline)",
    )
    out.add_argument(
        "--baseline",
        metavar="FILE",
        help="the CI gate on stored traces: compare with a reviewed baseline (tenantwatch baseline); exit 1 on a new "
        "finding at or above --fail-on, known ones pass, stale entries are listed",
    )
    out.add_argument(
        "--root",
        metavar="DIR",
        default=".",
        help="the project root: the baseline's paths (--baseline) and the SARIF locations (--sarif) are relative to it "
        "(default: the current directory)",
    )
    out.add_argument("--allow-empty", action="store_true", help="a source without spans is not an error")
    out.add_argument("--progress", action="store_true", help="show progress on stderr even when it is not a terminal")
    out.add_argument("--quiet", action="store_true", help="no progress and no notes on stderr (problems still shown)")


# --- arguments --------------------------------------------------------------------------------------------------------


def _attributes(pairs: Sequence[str]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--attribute {pair!r} must be KEY=VALUE")
        attributes[key] = value
    return attributes


def _sources(args: argparse.Namespace, stdin: IO[str]) -> list[Any]:
    from tenantwatch.tools.scan import FileSource, JaegerSource

    if not args.paths and not args.jaeger:
        raise UsageError("give trace files (or - for stdin) and/or --jaeger URL --service NAME")
    if args.paths.count("-") > 1:
        raise UsageError("- (stdin) can be given once")
    if "-" in args.paths and hasattr(stdin, "isatty") and stdin.isatty():
        raise UsageError("- reads traces from stdin, which is a terminal: pipe a file exporter file in")
    now = time.time()
    since = _moment(args.since, "--since", now) if args.since else None
    until = _moment(args.until, "--until", now) if args.until else None
    if since is not None and until is not None and until <= since:
        raise UsageError("--until must be after --since")
    sources: list[Any] = []
    for path in args.paths:
        if path != "-" and Path(path).is_dir():
            raise UsageError(
                f"{path}: is a directory; give the trace files in it (for example {path.rstrip('/')}/*.json)"
            )
        if path != "-" and not Path(path).exists():
            raise UsageError(f"{path}: no such file")
        sources.append(FileSource(path, getattr(stdin, "buffer", None), since=since, until=until))
    if args.jaeger:
        if not args.service:
            raise UsageError("--jaeger needs --service (Jaeger's search is per service)")
        if not args.jaeger.startswith(("http://", "https://")):
            raise UsageError(f"--jaeger {args.jaeger!r} must be an http:// or https:// URL")
        if args.page_size < 1:
            raise UsageError("--page-size must be at least 1")
        start = since if since is not None else now - _UNITS["h"]
        end = until if until is not None else now
        if end <= start:
            raise UsageError("--until must be after --since")
        sources.append(
            JaegerSource(
                args.jaeger,
                args.service,
                start,
                end,
                _attributes(args.attribute),
                page_size=args.page_size,
                window=_seconds(args.window, "--window"),
            )
        )
    elif args.attribute or args.service:
        raise UsageError("--service and --attribute apply to --jaeger only (--since/--until apply to files too)")
    return sources


# --- progress ---------------------------------------------------------------------------------------------------------


class _Progress:
    """One line on stderr, rewritten at most twice a second: spans read, findings, bytes of total."""

    def __init__(self, stderr: IO[str]) -> None:
        self._stderr = stderr
        self._last = 0.0
        self._shown = False
        self._latest: tuple[Any, FindingGroups] | None = None

    def __call__(self, stats: Any, groups: FindingGroups, *, force: bool = False) -> None:
        self._latest = (stats, groups)
        now = time.monotonic()
        if now - self._last < 0.5 and not force:
            return
        self._last = now
        done = _size(stats.bytes_read)
        total = f" of {_size(stats.bytes_total)}" if stats.bytes_total else ""
        self._stderr.write(
            f"\rscan: {stats.spans:,} spans, {groups.findings:,} findings in {len(groups)} groups, {done}{total}   "
        )
        self._stderr.flush()
        self._shown = True

    def close(self) -> None:
        """Show the final counts and end the line."""
        if self._latest is not None:
            self(*self._latest, force=True)
        if self._shown:
            self._stderr.write("\n")
            self._stderr.flush()


def _size(count: int | None) -> str:
    value = float(count or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


# --- output -----------------------------------------------------------------------------------------------------------


def _when(time_ns: int | None) -> str:
    if time_ns is None:
        return "-"
    return datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _links(trace_ids: Sequence[str], ui: str | None) -> list[str]:
    if ui:
        return [f"{ui.rstrip('/')}/trace/{trace_id}" for trace_id in trace_ids]
    return list(trace_ids)


def _safe(text: str) -> str:
    """Stored data as plain text on a terminal: control characters (escape sequences) shown as escapes."""
    return printable("".join(c if c.isprintable() else repr(c)[1:-1] for c in text))


def _location(group: FindingGroup) -> str:
    """The code location, relative to the working directory when it lies under it (as in the SARIF log)."""
    location = group.code_location
    if group.code_filepath and os.path.isabs(group.code_filepath):
        relative = os.path.relpath(group.code_filepath)
        if not relative.startswith(".."):
            location = location.replace(group.code_filepath, relative, 1)
    return _safe(location or (f"route {group.route}" if group.route else "-"))


def _table(groups: FindingGroups, ui: str | None, stdout: IO[str]) -> None:
    """One row per group, then each group's finding message (tenant 'a' vs user 'u-1': what tells apart groups of one
    rule and location) and its example traces (whole lines, so links stay clickable)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    terminal = hasattr(stdout, "isatty") and stdout.isatty()
    console = Console(file=stdout, highlight=False, width=None if terminal else 160)
    table = Table(title="tenantwatch scan: findings by fingerprint")
    for name, options in (
        ("#", {"justify": "right"}),
        ("severity", {"no_wrap": True}),
        ("rule", {"no_wrap": True}),
        ("table", {}),
        ("count", {"justify": "right"}),
        ("first seen", {}),
        ("last seen", {}),
        ("code location", {"overflow": "fold"}),
    ):
        table.add_column(name, **options)
    colours = {"critical": "red", "high": "magenta", "warning": "yellow"}
    ordered = list(groups)
    for number, group in enumerate(ordered, 1):
        table.add_row(  # Text, not markup: table names and code locations come from stored data
            str(number),
            Text(group.severity, style=colours.get(group.severity, "white")),
            Text(_safe(group.rule)),
            Text(_safe(group.table or "-")),
            f"{group.count:,}",
            _when(group.first_seen_ns),
            _when(group.last_seen_ns),
            Text(_location(group)),
        )
    console.print(table)
    stdout.write("what each group found (groups of one rule and location differ by the key they count by):\n")
    for number, group in enumerate(ordered, 1):
        stdout.write(f"  #{number} {_safe(group.rule)}: {_safe(group.message)}\n")
    stdout.write("example traces:\n")
    for number, group in enumerate(ordered, 1):
        for link in _links(group.trace_ids[:_TABLE_EXAMPLES], ui):
            stdout.write(f"  #{number} {_safe(group.rule)}: {link}\n")
        if len(group.trace_ids) > _TABLE_EXAMPLES:
            stdout.write(f"  #{number} {group.rule}: ... {len(group.trace_ids) - _TABLE_EXAMPLES} more in --json\n")


def _scan_summary(stats: Any) -> dict[str, Any]:
    return {
        "records": stats.records,
        "bytes": stats.bytes_read,
        "stored_findings": stats.stored_findings,
        "problem_count": stats.problem_count,
        "problems": [str(problem) for problem in stats.problems],
        "empty_sources": list(stats.empty_sources),
        "unjudged_spans": stats.failed,
        "filtered_spans": stats.filtered_spans,
        "outside_window": stats.outside_window,
    }


def _print(
    groups: FindingGroups,
    stats: Any,
    *,
    json_output: bool,
    jaeger_ui: str | None,
    stdout: IO[str],
    gate: GateResult | None = None,
) -> None:
    if json_output:
        document = groups.to_json()
        document["scan"] = _scan_summary(stats)
        if gate is not None:
            document["gate"] = _gate_summary(gate)
        stdout.write(json.dumps(document) + "\n")
    else:
        if len(groups):
            _table(groups, jaeger_ui, stdout)
        stdout.write(
            f"{groups.spans:,} spans judged, {groups.findings:,} findings in {len(groups)} fingerprint groups"
            + (
                f"; the stored spans carried {stats.stored_findings:,} findings of the live run (not counted again)"
                if stats.stored_findings
                else ""
            )
            + (f"; {stats.filtered_spans:,} spans left out by --attribute" if stats.filtered_spans else "")
            + (f"; {stats.outside_window:,} spans left out by --since/--until" if stats.outside_window else "")
            + "\n"
        )
        left_out = stats.filtered_spans + stats.outside_window
        if stats.stored_findings and stats.stored_findings != groups.findings and left_out:
            stdout.write(
                f"note: scan counts {groups.findings:,}, the spans read stored {stats.stored_findings:,}: the "
                f"{left_out:,} spans left out by --attribute/--since/--until are not judged (the stored count is of "
                "every span read)\n"
            )
        elif stats.stored_findings and stats.stored_findings != groups.findings:
            stdout.write(
                f"note: scan counts {groups.findings:,}, the live run stored {stats.stored_findings:,}: windowed "
                "rules (repeated_violations, brute_force, query_rate_spike, ...) are judged over the spans read as "
                "one run (live, their windows restart with each process), with the dedupe and cooldown settings of "
                f"--config (default: ${env.TENANTWATCH_RULES_FILE}); pass the live rules file to compare "
                "(docs/cli.md, scan)\n"
            )
        if gate is not None:
            stdout.write(render(gate))
            if not render(gate).endswith("\n"):
                stdout.write("\n")
    stdout.flush()


def _gate_summary(gate: GateResult) -> dict[str, Any]:
    """The gate's verdict in the ``--json`` document: counts and the fingerprints of each kind."""
    return {
        "baseline": gate.baseline_path,
        "failed": gate.failed,
        "fail_on": gate.fail_on,
        "new": [group.fingerprint for group in gate.new],
        "failing": [group.fingerprint for group in gate.failing],
        "known": [group.fingerprint for group, _ in gate.known],
        "moved": [group.fingerprint for group, _ in gate.moved],
        "stale": [entry.fingerprint for entry in gate.stale],
    }


def _silence(stdout: IO[str]) -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test double)
        pass


def emit(
    groups: FindingGroups,
    stats: Any,
    *,
    json_output: bool,
    sarif: str | None,
    jaeger_ui: str | None,
    fail_on: str,
    stdout: IO[str],
    stderr: IO[str],
    gate: GateResult | None = None,
    sarif_root: Path | None = None,
) -> int:
    """Print ``groups`` (table or JSON), write the SARIF file, say what went wrong; returns the exit code. With a
    ``gate`` (``--baseline``), only its new findings at or above its ``fail_on`` make the exit code 1."""
    if sarif:
        from tenantwatch.tools.sarif import sarif_document

        state = gate.baseline_state() if gate is not None else None
        root = gate.root if gate is not None and gate.root is not None else (sarif_root or Path.cwd())
        try:
            Path(sarif).write_text(json.dumps(sarif_document(groups, root=root, baseline_state=state), indent=2) + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write --sarif {sarif}: {exc.strerror or exc}") from None
    try:
        _print(groups, stats, json_output=json_output, jaeger_ui=jaeger_ui, stdout=stdout, gate=gate)
    except BrokenPipeError:  # `tenantwatch scan ... | head`: the reader left; still report problems and exit code
        _silence(stdout)
    status = EXIT_OK
    for problem in stats.problems:
        stderr.write(_safe(f"tenantwatch scan: {problem}") + "\n")
    if stats.problem_count > len(stats.problems):
        stderr.write(f"tenantwatch scan: ... and {stats.problem_count - len(stats.problems)} more unreadable parts\n")
    if stats.problem_count:
        stderr.write(
            f"tenantwatch scan: {stats.problem_count} unreadable part(s) skipped; every readable span was judged\n"
        )
        status = EXIT_USAGE
    if stats.failed:
        stderr.write(f"tenantwatch scan: {stats.failed} span(s) could not be judged (run with -v for details)\n")
        status = EXIT_USAGE
    if status == EXIT_OK and (gate.failed if gate is not None else _fails(groups, fail_on)):
        status = EXIT_FINDINGS
    return status


def _fails(groups: FindingGroups, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    threshold = SEVERITIES.index(fail_on)
    return any(group.severity in SEVERITIES and SEVERITIES.index(group.severity) >= threshold for group in groups)


def run(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """Scan every source; returns the exit code."""
    from tenantwatch.tools.scan import InputError, ReadStats, scan_sources

    sources = _sources(args, stdin)
    baseline = _baseline(args.baseline) if args.baseline else None
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc), details={"issues": [issue.to_json() for issue in exc.issues]}) from exc
    if settings.mode == "off" and not args.quiet:
        stderr.write("tenantwatch scan: note: mode is off in the configuration; scan judges as in monitor mode\n")
    show = not args.quiet and (args.progress or (hasattr(stderr, "isatty") and stderr.isatty()))
    progress = _Progress(stderr) if show else None
    stats = ReadStats()
    try:
        groups = scan_sources(sources, settings, stats=stats, progress=progress)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    finally:
        if progress is not None:
            progress.close()
    gate = None
    if baseline is not None:
        gate = compare(groups, baseline, root=Path(args.root), fail_on=args.fail_on or DEFAULT_FAIL_ON)
    status = emit(
        groups,
        stats,
        json_output=args.json,
        sarif=args.sarif,
        jaeger_ui=args.jaeger_ui or args.jaeger,
        fail_on=args.fail_on or "never",
        stdout=stdout,
        stderr=stderr,
        gate=gate,
        sarif_root=Path(args.root).resolve(),
    )
    if stats.empty_sources:
        for name in stats.empty_sources:
            stderr.write(f"tenantwatch scan: {name}: no spans{'' if args.allow_empty else ' (use --allow-empty)'}\n")
        if not args.allow_empty:
            status = EXIT_USAGE
    return status


def _baseline(path: str) -> Baseline:
    """The reviewed baseline of ``--baseline`` (a missing or bad file is a usage error naming its line)."""
    if not Path(path).is_file():
        raise UsageError(f"--baseline {path}: no such file (write one with: tenantwatch baseline FINDINGS.json)")
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        raise UsageError(str(exc), details={"file": path, "issues": [i.to_json() for i in exc.issues]}) from exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run as: tenantwatch scan ...")
