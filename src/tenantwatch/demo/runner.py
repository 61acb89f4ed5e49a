"""Runs the scripted scenario against the seeded SQLite database, instrumented by tenantwatch for real.

Set-up, in order: seed the database (plain ``sqlite3``, nothing traced); create a SQLAlchemy engine over it; call
:func:`tenantwatch.configure` with that engine and an in-process exporter
(:class:`~tenantwatch.demo.collector.FindingCollector`), plus the OTLP exporters when an endpoint is configured. Then
each step runs in its tenant context and its own trace; the collector receives the processed spans synchronously, so
right after a step its findings are read back from what the exporter received: the terminal shows exactly what a
backend gets.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from opentelemetry import context as otel_context
from opentelemetry.sdk.environment_variables import OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Tracer
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from tenantwatch._configure import (
    TenantwatchHandle,
    _otlp_span_exporter,
    _signal_endpoint,
    configure,
    resolve_protocol,
)
from tenantwatch.config import Settings
from tenantwatch.context import tenant_context, unscoped
from tenantwatch.demo.collector import FindingCollector
from tenantwatch.demo.display import SilentReporter
from tenantwatch.demo.results import DemoResult, Reporter, StepResult
from tenantwatch.demo.scenario import STEPS, Step
from tenantwatch.demo.schema import create_database
from tenantwatch.processors.detectors import DETECTOR_IDS

__all__ = ["DemoError", "otlp_endpoint_from_env", "run_demo"]

logger = logging.getLogger(__name__)


class DemoError(RuntimeError):
    """The demo cannot run in this process (SQLAlchemy is already instrumented by someone else's tenantwatch)."""


_DEMO_SETTINGS = Settings(
    rules={rule: {"enabled": False} for rule in DETECTOR_IDS},
)
"""The demo judges single statements: the windowed detectors need a baseline a 15-step run does not have."""


@contextmanager
def _step_context(step: Step) -> Iterator[None]:
    """The step's tenant context (and ``unscoped`` for deliberate cross-tenant work)."""
    with ExitStack() as stack:
        stack.enter_context(tenant_context(step.tenant, user_id=step.user, role=step.role))
        if step.unscoped_reason is not None:
            stack.enter_context(unscoped(step.unscoped_reason))
        yield


def _engine(conn: sqlite3.Connection) -> Engine:
    """A SQLAlchemy engine over the already seeded connection; ``configure(engine=...)`` has it traced."""
    return create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)


def otlp_endpoint_from_env() -> str | None:
    """The OTLP endpoint the standard environment variables configure, if any."""
    return os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT) or None


def _run_step(step: Step, engine: Engine, tracer: Tracer, collector: FindingCollector) -> StepResult:
    result = StepResult(step=step)
    started = time.perf_counter()
    # an empty parent context: every step is a trace of its own, so findings map back to it by trace id
    with _step_context(step), tracer.start_as_current_span(f"demo {step.name}", context=otel_context.Context()) as span:
        collector.watch(span.get_span_context().trace_id, step.name)
        try:
            with engine.begin() as connection:
                result.rows = step.action(connection)
        except Exception as exc:  # a step that fails is reported, the demo goes on
            logger.exception("demo step %s failed", step.name)
            result.error = f"{type(exc).__name__}: {exc}"
    result.duration_ms = (time.perf_counter() - started) * 1000.0
    return result


def _configure(collector: FindingCollector, engine: Engine, otlp_endpoint: str | None) -> TenantwatchHandle:
    """tenantwatch's one-call setup, with the demo's in-process exporter behind the processor.

    The collector gets the processed spans synchronously (``SimpleSpanProcessor``), so findings are known as soon as a
    step's statements end. With an OTLP endpoint (``otlp_endpoint`` or the standard ``OTEL_EXPORTER_OTLP_*``
    variables) the same spans also go to the OTLP span exporter ``configure`` would build, and metrics and log
    records to theirs. The demo uses the default rules (it ignores ``TENANTWATCH_*`` variables and rules files) so
    that its six findings are the same everywhere. Providers are not made global: the demo leaves no trace in the
    process it runs in.
    """
    export = otlp_endpoint is not None or otlp_endpoint_from_env() is not None
    fan_out = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
    fan_out.add_span_processor(SimpleSpanProcessor(collector))
    if export:
        protocol = resolve_protocol("traces")
        exporter = _otlp_span_exporter(protocol, _signal_endpoint(otlp_endpoint, protocol, "traces"))
        fan_out.add_span_processor(BatchSpanProcessor(exporter))
    handle = configure(
        service_name=os.environ.get("OTEL_SERVICE_NAME") or "tenantwatch-demo",
        settings=_DEMO_SETTINGS,
        endpoint=otlp_endpoint,
        exporters=export,
        span_exporter=fan_out,
        engine=engine,
        set_global=False,
    )
    if handle.instrumentor is None:
        handle.shutdown()
        raise DemoError("SQLAlchemy is already instrumented by tenantwatch in this process; run the demo on its own")
    return handle


def run_demo(*, reporter: Reporter | None = None, otlp_endpoint: str | None = None) -> DemoResult:
    """Seed the database, instrument, run every scripted step and return what tenantwatch found.

    ``reporter`` sees the run as it happens (default: nothing). ``otlp_endpoint`` is an OTLP base URL; without it the
    standard ``OTEL_EXPORTER_OTLP_*`` variables decide whether anything is exported. Raises :class:`DemoError` when
    tenantwatch already instruments SQLAlchemy in this process.
    """
    report: Reporter = reporter if reporter is not None else SilentReporter()
    started = time.perf_counter()
    conn, counts = create_database()
    collector = FindingCollector()
    endpoint = otlp_endpoint or otlp_endpoint_from_env()
    result = DemoResult(rows_seeded=counts, otlp_endpoint=endpoint)
    engine = _engine(conn)
    try:
        telemetry = _configure(collector, engine, otlp_endpoint)
    except BaseException:
        engine.dispose()
        conn.close()
        raise
    try:
        tracer = telemetry.tracer_provider.get_tracer("tenantwatch.demo")
        for index, step in enumerate(STEPS, start=1):
            report.step_started(step, index, len(STEPS))
            step_result = _run_step(step, engine, tracer, collector)
            step_result.findings = collector.take(step.name)
            for finding in step_result.findings:
                report.finding(finding)
            report.step_finished(step_result)
            result.steps.append(step_result)
    finally:
        engine.dispose()
        telemetry.shutdown()
        conn.close()
    result.duration_ms = (time.perf_counter() - started) * 1000.0
    report.finished(result)
    return result
