"""``tenantwatch demo``: the command-line face of :mod:`tenantwatch.demo`."""

from __future__ import annotations

import argparse
import json
from typing import IO, Any

from tenantwatch.cli._common import EXIT_OK, UsageError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Register ``demo`` on the subcommand parsers."""
    demo = sub.add_parser(
        "demo",
        help="run a scripted multi-tenant app on embedded SQLite and watch the findings",
        description=(
            "Seed a two-tenant schema in embedded SQLite, run a scripted mix of correct queries and six buggy ones "
            "under tenantwatch, and show the findings live. Exports traces, metrics and logs over OTLP when "
            "--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT is set. Always exits 0 once the run completes."
        ),
    )
    demo.add_argument(
        "--json", action="store_true", help="print the findings, steps and a summary as one JSON document"
    )
    demo.add_argument("--plain", action="store_true", help="plain lines even on a terminal (whole, never cut)")
    demo.add_argument(
        "--app",
        action="store_true",
        help="run the example OKR service (FastAPI) in-process with the traffic generator and show findings live",
    )
    demo.add_argument("--requests", type=int, default=150, help="--app: requests to send (default 150)")
    demo.add_argument(
        "--duration", type=float, default=60.0, help="--app: stop sending after this many seconds (default 60)"
    )
    demo.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="OTLP base URL, e.g. http://localhost:4318 (default: $OTEL_EXPORTER_OTLP_ENDPOINT; protocol from "
        "$OTEL_EXPORTER_OTLP_PROTOCOL, default http/protobuf)",
    )


def run(args: argparse.Namespace, stdout: IO[str]) -> int:
    """Run the demo; returns the exit code."""
    if args.app:
        return _run_app(args, stdout)
    try:
        from tenantwatch.demo import DemoError, run_demo
        from tenantwatch.demo.display import make_reporter
    except ImportError as exc:
        raise UsageError(f"the demo needs SQLAlchemy: pip install 'tenantwatch[sqlalchemy]' ({exc})") from exc
    reporter = make_reporter(stdout, json_output=args.json, live=not args.plain)
    try:
        result = run_demo(reporter=reporter, otlp_endpoint=args.otlp_endpoint)
    except DemoError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        reporter.close()
    if args.json:
        stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
    return EXIT_OK


def _run_app(args: argparse.Namespace, stdout: IO[str]) -> int:
    try:
        from tenantwatch.demo.app import AppDemoError, run_app_demo
    except ImportError as exc:
        raise UsageError(f"the app demo needs its extras: pip install 'tenantwatch[examples]' ({exc})") from exc
    if args.requests <= 0 or args.duration <= 0:
        raise UsageError("--requests and --duration must be positive")
    try:
        result = run_app_demo(
            stdout=stdout,
            json_output=args.json,
            plain=args.plain,
            requests=args.requests,
            duration=args.duration,
            otlp_endpoint=args.otlp_endpoint,
        )
    except AppDemoError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        stdout.write(json.dumps(result, indent=2) + "\n")
    return EXIT_OK
