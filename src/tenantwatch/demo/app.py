"""``tenantwatch demo --app``: the example OKR service in-process, driven by the traffic generator, findings live.

The app (examples/okr_app) runs on a temporary SQLite database with its seed data; examples/traffic.py sends a mix of
normal, buggy, unauthenticated and attack requests through ``httpx.ASGITransport`` (no socket), and every finding is
printed the moment its span ends: on a terminal wrapped to its width under the severity and rule, piped or with
``--plain`` as one whole line each (never cut). OTLP export works as in the plain demo (``--otlp-endpoint`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan, SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult

from tenantwatch import attributes as A

__all__ = ["AppDemoError", "run_app_demo"]


class AppDemoError(RuntimeError):
    """The example app cannot be found or started."""


def _examples() -> tuple[ModuleType, ModuleType]:
    """(okr_app.main, traffic): from a checkout's ``examples/`` when tenantwatch runs from one (an editable install's
    ``tenantwatch_examples`` is a copy taken at install time), else the installed ``tenantwatch_examples``."""
    root = Path(__file__).resolve().parents[3]
    if (root / "examples" / "okr_app" / "main.py").is_file():
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        packages: tuple[str, ...] = ("examples", "tenantwatch_examples")
    else:
        packages = ("tenantwatch_examples",)
    failure: ImportError | None = None
    for package in packages:
        try:
            return importlib.import_module(f"{package}.okr_app.main"), importlib.import_module(f"{package}.traffic")
        except ImportError as exc:
            failure = failure or exc
    missing = getattr(failure, "name", None) or ""
    if failure is not None and missing.split(".")[0] not in packages:
        raise AppDemoError(f"the example app needs its extras: pip install 'tenantwatch[examples]' ({failure})")
    raise AppDemoError("the example app is not installed: pip install 'tenantwatch[examples]' or run from a checkout")


_RULE_WIDTH = 22
"""Room for the longest rule id (``missing_tenant_filter``) and a space."""


class _LiveFindings(SpanExporter):
    """Prints each finding as its span ends and counts them by rule.

    ``console`` (a terminal): severity and rule in fixed columns, the tenant and message wrapped beside them at the
    terminal's width. ``out`` alone (a pipe, ``--plain``): one plain line per finding, whole. Neither: count only.
    """

    def __init__(self, out: IO[str] | None, console: Any) -> None:
        self.by_rule: Counter[str] = Counter()
        self._out = out
        self._console = console

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            for event in span.events:
                if event.name != A.FINDING_EVENT:
                    continue
                attributes = event.attributes or {}
                rule = str(attributes.get(A.RULE))
                severity = str(attributes.get(A.SEVERITY))
                tenant = str((span.attributes or {}).get(A.TENANT_ID, "-"))
                self.by_rule[rule] += 1
                message = f"tenant {tenant}: {attributes.get(A.MESSAGE)}"
                if self._console is not None:
                    self._console.print(_finding_row(severity, rule, message))
                elif self._out is not None:
                    self._out.write(f"{severity:>8} {rule:<{_RULE_WIDTH}} {message}\n")
                    self._out.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _finding_row(severity: str, rule: str, message: str) -> Any:
    """A grid row: severity and rule keep their columns, the message wraps in the rest of the width."""
    from rich.table import Table
    from rich.text import Text

    colour = {"critical": "red", "high": "magenta", "warning": "yellow"}.get(severity, "white")
    row = Table.grid(padding=(0, 1), expand=True)
    row.add_column(width=8, justify="right", no_wrap=True)
    row.add_column(width=_RULE_WIDTH - 1, no_wrap=True, overflow="fold")
    row.add_column(ratio=1, overflow="fold")
    row.add_row(Text(severity, style=colour), rule, Text(message))
    return row


def run_app_demo(
    *,
    stdout: IO[str],
    json_output: bool = False,
    plain: bool = False,
    requests: int = 150,
    duration: float = 60.0,
    otlp_endpoint: str | None = None,
) -> dict[str, Any]:
    """Run the app demo; returns the summary (findings by rule, traffic by kind and status).

    Findings are wrapped rows on a terminal, whole plain lines when ``stdout`` is not one or with ``plain``.
    """
    okr, traffic = _examples()
    from rich.console import Console

    from tenantwatch._configure import _otlp_span_exporter, _signal_endpoint, resolve_protocol
    from tenantwatch.demo.runner import otlp_endpoint_from_env

    console = None if json_output else Console(file=stdout, highlight=False, no_color=plain or None)
    terminal = console is not None and console.is_terminal and not plain
    live = _LiveFindings(None if json_output else stdout, console if terminal else None)
    fan_out = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    fan_out.add_span_processor(SimpleSpanProcessor(live))
    export = otlp_endpoint is not None or otlp_endpoint_from_env() is not None
    if export:
        protocol = resolve_protocol("traces")
        fan_out.add_span_processor(
            BatchSpanProcessor(_otlp_span_exporter(protocol, _signal_endpoint(otlp_endpoint, protocol, "traces")))
        )
    workdir = tempfile.mkdtemp(prefix="tenantwatch-demo-app-")
    if console is not None:
        console.print("[bold]tenantwatch demo --app[/]: seeding the OKR example (3 tenants) on SQLite ...")
    app, handle, engine = okr.create_app(
        f"sqlite:///{workdir}/okr.db",
        span_exporter=fan_out,
        exporters=export,
        endpoint=otlp_endpoint,
        set_global=False,
        service_name="tenantwatch-demo-app",
    )
    try:
        import httpx

        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        summary = asyncio.run(
            traffic.run(
                "http://okr.local",
                requests=requests,
                duration=duration,
                concurrency=4,
                transport=transport,
                progress=False,
            )
        )
    finally:
        handle.shutdown()
        engine.dispose()
    if console is not None:
        traffic.print_summary(summary, console=console)
        from rich.table import Table

        table = Table(title="findings by rule")
        table.add_column("rule")
        table.add_column("findings", justify="right")
        for rule, count in live.by_rule.most_common():
            table.add_row(rule, str(count))
        console.print(table)
    return {
        "findings": dict(live.by_rule),
        "traffic": {
            "sent": dict(summary.sent),
            "errors": summary.errors,
            "seconds": round(summary.seconds, 2),
            "statuses": {f"{kind}:{status}": n for (kind, status), n in summary.statuses.items()},
        },
    }
