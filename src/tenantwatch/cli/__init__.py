"""The ``tenantwatch`` command line: ``explain``, ``demo``, ``check-config``, ``version``.

* ``tenantwatch explain`` (:mod:`.explain`) answers "why is this query flagged?": the verdict per scope and table,
  the resolved tenant values and the findings the rules would raise, for SQL given as arguments or as JSON lines on
  stdin (``--json``: one JSON object per input).
* ``tenantwatch demo`` (:mod:`.demo`) runs a scripted two-tenant application on embedded SQLite, instrumented for
  real, and shows the findings live (``--json``: one JSON document).
* ``tenantwatch check-config`` (:mod:`.check_config`) validates a rules file.
* ``tenantwatch version`` prints the version.

Exit codes, for every subcommand: 0 success (``explain``: no finding at or above ``--fail-on``), 1 ``explain`` found
something, 2 usage, configuration or input error. See docs/cli.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from tenantwatch.cli import check_config, demo, explain
from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, UsageError
from tenantwatch.version import __version__

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "main"]

logger = logging.getLogger(__name__)

_EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tenantwatch",
        description="Watch tenant isolation in multi-tenant services (OpenTelemetry instrumentation).",
        epilog="Exit codes: 0 ok, 1 explain found something (see --fail-on), 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"tenantwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log tenantwatch's own debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    explain.add_parser(sub)
    demo.add_parser(sub)
    check_config.add_parser(sub)
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
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    _setup_logging(args.verbose)
    try:
        if args.command == "explain":
            return explain.run(args, stdin, stdout, stderr)
        if args.command == "demo":
            return demo.run(args, stdout)
        if args.command == "check-config":
            return check_config.run(args, stdout)
        stdout.write(f"tenantwatch {__version__}\n")
        return EXIT_OK
    except UsageError as exc:
        stderr.write(f"tenantwatch {args.command}: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED
