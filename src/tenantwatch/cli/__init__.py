"""The ``tenantwatch`` command line: ``explain``, ``demo``, ``check-config``, ``version``.

* ``tenantwatch explain`` (:mod:`.explain`) answers "why is this query flagged?": the verdict per scope and table,
  the resolved tenant values and the findings the rules would raise, for SQL given as arguments or as JSON lines on
  stdin (``--json``: one JSON object per input).
* ``tenantwatch demo`` (:mod:`.demo`) runs a scripted two-tenant application on embedded SQLite, instrumented for
  real, and shows the findings live (``--json``: one JSON document).
* ``tenantwatch check-config`` (:mod:`.check_config`) validates a rules file.
* ``tenantwatch init`` (:mod:`.init`) writes a commented starter rules file from a database's catalog.
* ``tenantwatch report`` (:mod:`.report`) writes a daily or weekly report (HTML, Markdown, JSON).
* ``tenantwatch audit`` (:mod:`.audit`) lints a PostgreSQL schema for tenant isolation (RLS, policies, roles).
* ``tenantwatch baseline`` (:mod:`.baseline`) writes, updates and checks the CI gate's baseline of accepted findings.
* ``tenantwatch scan`` (:mod:`.scan`) judges stored traces (file exporter files, Jaeger) with the live rules.
* ``tenantwatch version`` prints the version.

Exit codes, for every subcommand: 0 success (``explain``: no finding at or above ``--fail-on``), 1 the command found
what it looks for (``explain``/``scan`` findings, ``audit`` lints or drift, ``baseline --check`` failed, ``report``
no data), 2 usage, configuration or input error, 3 ``explain`` could not analyze a statement. With ``--json``, an
error is also a JSON document on stdout (``{"error": ..., "exit_code": 2, ...}``). See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from tenantwatch.cli import audit, baseline, check_config, demo, explain, init, report, scan
from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_UNANALYZED, EXIT_USAGE, UsageError
from tenantwatch.redaction import hide_url_secrets
from tenantwatch.version import __version__

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_UNANALYZED", "EXIT_USAGE", "main"]

logger = logging.getLogger(__name__)

_EXIT_INTERRUPTED = 130


class _ArgumentError(Exception):
    """argparse rejected the command line (raised instead of exiting, so ``--json`` can answer in JSON)."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(self, message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tenantwatch",
        description="Watch tenant isolation in multi-tenant services (OpenTelemetry instrumentation).",
        epilog="Exit codes: 0 ok, 1 explain found something (see --fail-on) or baseline --check failed, 2 usage or "
        "configuration error, 3 explain could not analyze a statement.",
    )
    parser.add_argument("--version", action="version", version=f"tenantwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log tenantwatch's own debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    explain.add_parser(sub)
    demo.add_parser(sub)
    check_config.add_parser(sub)
    init.add_parser(sub)
    report.add_parser(sub)
    audit.add_parser(sub)
    baseline.add_parser(sub)
    scan.add_parser(sub)
    sub.add_parser("version", help="print the version")
    return parser


def _setup_logging(verbose: bool) -> None:
    """Warnings (and with ``-v`` tenantwatch's debug messages) on stderr, unless the host configured logging."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tenantwatch: %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("tenantwatch").setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``tenantwatch`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    stdin, stdout, stderr = sys.stdin, sys.stdout, sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(words)
    except SystemExit as exc:  # argparse exits on --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except _ArgumentError as exc:
        exc.parser.print_usage(stderr)
        stderr.write(f"{exc.parser.prog}: error: {exc}\n")
        if "--json" in words:
            _json_error(stdout, f"{exc.parser.prog}: {exc}", {})
        return EXIT_USAGE
    _setup_logging(args.verbose)
    try:
        if args.command == "explain":
            return explain.run(args, stdin, stdout, stderr)
        if args.command == "demo":
            return demo.run(args, stdout)
        if args.command == "check-config":
            return check_config.run(args, stdout)
        if args.command == "init":
            return init.run(args, stdout, stderr)
        if args.command == "scan":
            return scan.run(args, stdin, stdout, stderr)
        if args.command == "baseline":
            return baseline.run(args, stdin, stdout, stderr)
        if args.command == "audit":
            return audit.run(args, stdout, stderr)
        handler = getattr(args, "handler", None)
        if handler is not None:  # subcommands that register their own run(args, stdout, stderr)
            return int(handler(args, stdout, stderr))
        stdout.write(f"tenantwatch {__version__}\n")
        return EXIT_OK
    except UsageError as exc:
        message = hide_url_secrets(str(exc))  # the last line of defence: no URL in an error shows its password
        stderr.write(f"tenantwatch {args.command}: {message}\n")
        if getattr(args, "json", False):
            details = {k: hide_url_secrets(v) if isinstance(v, str) else v for k, v in exc.details.items()}
            _json_error(stdout, message, details)
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED


def _json_error(stdout: IO[str], message: str, details: dict[str, Any]) -> None:
    """A ``--json`` run answers an error in JSON too, so a pipeline parsing stdout sees it (the text is on stderr)."""
    stdout.write(json.dumps({"error": message, **details, "exit_code": EXIT_USAGE}) + "\n")
    stdout.flush()
