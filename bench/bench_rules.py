"""Rule engine and span processor throughput, on one core, against a plain SimpleSpanProcessor in the same run.

    .venv/bin/python bench/bench_rules.py [--seconds 1.0] [--cpu-time]
    .venv/bin/python bench/bench_rules.py --instructions --spans 1000   # instructions per span, under valgrind

Finished db spans are made once through a real SDK TracerProvider (attributes set the way the SQLAlchemy
instrumentation sets them) and then replayed through ``on_end`` of:

* ``SimpleSpanProcessor`` -> discarding exporter: the peer every ratio is against;
* ``TenantwatchSpanProcessor`` wrapping that same processor, with no-op meter/logger providers (the rules alone),
  and with SDK meter and logger providers (what an application runs: two histogram records per db span, plus a
  counter and a log record per finding);
* the rule engine alone: ``evaluate(SpanFacts.from_attributes(attributes))``.

Workloads: db spans with facts and no finding (the common case), db spans with two findings each, spans that are
not db spans, and db spans from another instrumentation (statement text only, analysis cache hit) when the analyzer
is available. The ``facts`` workload's 2000 spans hold 200 distinct attribute sets (50 tenants, 200 users, 40 call
sites), so after the warm-up the processor judges each from memory (:mod:`tenantwatch.processors._memo`); the path
``same, where nothing repeats`` shows the cost in traffic where no span repeats another (the memo finds no hit and steps
aside: its steady state). Targets, each printed met/missed at the end of
the run: >= 100k spans/s for db spans with facts and no finding (rules alone); with SDK metrics and logs on
(issue 13) >= 150k spans/s on db spans without findings and >= 30k spans/s on db spans with findings.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts
from tenantwatch.processors import TenantwatchSpanProcessor
from tenantwatch.processors._memo import PROBE, VerdictMemo

_PEER = "SimpleSpanProcessor (peer)"
_RULES_ONLY = "processor, no-op metrics/logs"
_ENGINE = "rule engine: facts + evaluate"
_FULL = "processor, SDK metrics + logs"
_FULL_NEW = "same, where nothing repeats"
_TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("facts", _RULES_ONLY, "db spans with facts, no finding, rules only", 100_000),
    ("facts", _FULL, "db spans without findings, SDK metrics + logs", 150_000),
    ("findings", _FULL, "db spans with findings, SDK metrics + logs", 30_000),
)
"""(workload, path, what, spans/s) of every target this bench checks."""


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _DiscardLogs(LogRecordExporter):
    def export(self, batch: Sequence[object]) -> LogRecordExportResult:  # type: ignore[override]
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _facts(i: int, *, finding: bool) -> SpanFacts:
    tenant = f"org-{i % 50}"
    return SpanFacts(
        operation="SELECT",
        main_table="objectives",
        tables=("objectives", "key_results"),
        tenant_tables=("objectives", "key_results"),
        tenant_filter="partial" if finding else "present",
        unfiltered=("join:key_results:key_results",) if finding else (),
        tenant_values=(f"org-{(i + 1) % 50}",) if finding else (tenant,),
        statement_fingerprint=f"{i % 40:016x}",
        returned_rows=20,
        tenant_id=tenant,
        user_id=f"user-{i % 200}",
        role="member",
        code_function="list_objectives",
        code_filepath="/srv/app/objectives.py",
        code_lineno=40 + i % 40,
    )


def _make_spans(count: int, kind: str) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for i in range(count):
        if kind == "plain":
            attributes: dict[str, object] = {"http.request.method": "GET", "url.path": f"/items/{i}"}
        elif kind == "text":
            attributes = {
                A.DB_SYSTEM: "postgresql",
                A.DB_STATEMENT: "SELECT objectives.id, objectives.title FROM objectives "
                f"WHERE objectives.organization_id = %(organization_id_{i % 20})s",
                A.TENANT_ID: f"org-{i % 50}",
            }
        else:
            attributes = {
                A.DB_SYSTEM: "postgresql",
                A.DB_STATEMENT: "SELECT objectives.id, objectives.title FROM objectives JOIN key_results ON ... "
                "WHERE objectives.organization_id = %(organization_id_1)s",
                **_facts(i, finding=kind == "findings").to_attributes(),
            }
        with tracer.start_as_current_span("SELECT objectives", attributes=attributes):  # type: ignore[arg-type]
            pass
    spans = list(exporter.get_finished_spans())
    provider.shutdown()
    return spans


def _measure(
    paths: dict[str, Callable[[], None]], spans: int, seconds: float, clock: Callable[[], float]
) -> dict[str, float]:
    """Spans per second of each path: the best of passes taken in turn (peer and subjects interleaved, so a change
    in CPU speed during the run affects them alike) for about ``seconds`` per path."""
    for run in paths.values():
        run()  # warm-up: caches, tenant buckets, analysis cache, metric streams
    best = dict.fromkeys(paths, float("inf"))
    deadline = time.perf_counter() + seconds * len(paths)
    while time.perf_counter() < deadline:
        for label, run in paths.items():
            start = clock()
            run()
            best[label] = min(best[label], clock() - start)
    return {label: spans / elapsed for label, elapsed in best.items()}


def _replay(processor: object, spans: list[ReadableSpan]) -> Callable[[], None]:
    on_end = processor.on_end  # type: ignore[attr-defined]

    def run() -> None:
        for span in spans:
            on_end(span)

    return run


def _rule_engine(spans: list[ReadableSpan], settings: Settings) -> Callable[[], None]:
    attribute_sets = [dict(span.attributes or {}) for span in spans]

    def run() -> None:
        for attrs in attribute_sets:
            evaluate(SpanFacts.from_attributes(attrs, duration_ms=1.0), settings)

    return run


_PATH_IDS = {"peer": _PEER, "engine": _ENGINE, "rules": _RULES_ONLY, "full": _FULL, "full-new": _FULL_NEW}
"""Short names of the paths, for ``--worker``."""


def _processors(settings: Settings) -> dict[str, object]:
    """The peer and the two tenantwatch processors every path replays spans through."""
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(_DiscardLogs()))
    return {
        _PEER: SimpleSpanProcessor(_Discard()),
        _RULES_ONLY: TenantwatchSpanProcessor(
            SimpleSpanProcessor(_Discard()),
            settings=settings,
            meter_provider=NoOpMeterProvider(),
            logger_provider=NoOpLoggerProvider(),
        ),
        _FULL: TenantwatchSpanProcessor(
            SimpleSpanProcessor(_Discard()),
            settings=settings,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        ),
        _FULL_NEW: _forgetful(
            TenantwatchSpanProcessor(
                SimpleSpanProcessor(_Discard()),
                settings=settings,
                meter_provider=meter_provider,
                logger_provider=logger_provider,
            )
        ),
    }


def _forgetful(processor: TenantwatchSpanProcessor) -> TenantwatchSpanProcessor:
    """``processor`` remembering one span only: the workloads' spans follow each other in rotation, so none repeats
    the one before, as in traffic where nothing repeats; after its first probe (``_memo.PROBE`` lookups, none a hit)
    the memo steps aside, which is the steady state measured after the warm-up."""
    processor._memo = VerdictMemo(size=1)
    return processor


def _paths(
    kind: str, spans: list[ReadableSpan], processors: dict[str, object], settings: Settings
) -> dict[str, Callable[[], None]]:
    paths = {_PEER: _replay(processors[_PEER], spans)}
    if kind in ("facts", "findings"):
        paths[_ENGINE] = _rule_engine(spans, settings)
    paths[_RULES_ONLY] = _replay(processors[_RULES_ONLY], spans)
    paths[_FULL] = _replay(processors[_FULL], spans)
    if kind in ("facts", "findings"):
        paths[_FULL_NEW] = _replay(processors[_FULL_NEW], spans)
    return paths


def _worker(kind: str, path: str, spans: int, passes: int) -> None:
    """Set everything up, warm up every path, then run ``passes`` passes of one path (``--instructions``)."""
    settings = Settings()
    paths = _paths(kind, _make_spans(spans, kind), _processors(settings), settings)
    for run in paths.values():
        run()
    if _FULL_NEW in paths:  # past the memo's first probe, into its steady state where nothing repeats
        for _ in range(PROBE // spans + 1):
            paths[_FULL_NEW]()
    run = paths[_PATH_IDS[path]]
    for _ in range(passes):
        run()


def _instructions(kind: str, path: str, spans: int, baselines: dict[str, int]) -> float:
    """Instructions per span under valgrind: (one pass) - (no pass), divided by ``spans``. Unlike time, this does
    not depend on what else the machine is doing. The no-pass run is the same for every path of a workload (the
    worker sets up and warms up every path), so ``baselines`` keeps it per workload."""

    def total(passes: int) -> int:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            *("--worker", kind, path, "--spans", str(spans), "--passes", str(passes)),
        ]
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0")
        )
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"worker {kind}/{path} failed under valgrind:\n{done.stderr[-3000:]}")
        return int(found.group(1).replace(",", ""))

    if kind not in baselines:
        baselines[kind] = total(0)
    return (total(1) - baselines[kind]) / spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure (default 1.0)")
    parser.add_argument("--spans", type=int, default=2000, help="distinct spans per workload (default 2000)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time passes with the thread's CPU time instead of the wall clock (a loaded machine deschedules us)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per span under valgrind instead of timing (immune to a noisy machine; slow)",
    )
    parser.add_argument("--workloads", nargs="+", choices=["facts", "findings", "plain", "text"], help="only these")
    parser.add_argument("--paths", nargs="+", choices=list(_PATH_IDS), help="only these paths (--instructions)")
    parser.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    if args.worker:
        kind, path = args.worker
        _worker(kind, path, args.spans, args.passes)
        return
    settings = Settings()
    processors = _processors(settings)
    rules_only = processors[_RULES_ONLY]
    assert isinstance(rules_only, TenantwatchSpanProcessor)
    workloads = ["facts", "findings", "plain"]
    if rules_only.analyzer() is not None:
        workloads.append("text")

    if args.instructions:
        if shutil.which("valgrind") is None:
            parser.error("--instructions needs valgrind")
        print(f"tenantwatch rule engine benchmark: instructions per span (valgrind), {args.spans} spans/pass")
        print(f"{'workload':<10} {'path':<34} {'instr/span':>12} {'vs Simple':>10}")
        for kind in args.workloads or workloads:
            ids = [
                i for i in args.paths or _PATH_IDS if i not in ("engine", "full-new") or kind in ("facts", "findings")
            ]
            baselines: dict[str, int] = {}
            counts = {_PATH_IDS[i]: _instructions(kind, i, args.spans, baselines) for i in ids}
            for label, count in counts.items():
                print(f"{kind:<10} {label:<34} {count:>12,.0f} {count / counts[_PEER]:>9.1f}x")
        return

    clock = time.thread_time if args.cpu_time else time.perf_counter
    print(f"tenantwatch rule engine benchmark: Python {platform.python_version()}, one core, {args.spans} spans/pass")
    print(f"{'workload':<10} {'path':<34} {'spans/s':>12} {'us/span':>9} {'vs Simple':>10}")
    measured: dict[tuple[str, str], tuple[float, float]] = {}
    for kind in workloads:
        spans = _make_spans(args.spans, kind)
        rates = _measure(_paths(kind, spans, processors, settings), len(spans), args.seconds, clock)
        base = rates[_PEER]
        for label, rate in rates.items():
            print(f"{kind:<10} {label:<34} {rate:>12,.0f} {1e6 / rate:>9.2f} {base / rate:>9.1f}x")
        for label, rate in rates.items():
            measured[kind, label] = (rate, base / rate)
    print("\ntargets (this machine, this run):")
    for kind, label, what, target in _TARGETS:
        rate, ratio = measured[kind, label]
        verdict = "met" if rate >= target else "missed"
        print(f"  {what:<48} {rate:>10,.0f} spans/s (>= {target:,.0f}, {ratio:.1f}x the peer): {verdict}")


if __name__ == "__main__":
    main()
