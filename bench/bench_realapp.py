"""Per-statement cost of tenantwatch on a real application's own repository calls, against OTel alone, in one run.

    .venv/bin/python bench/bench_realapp.py --app /tmp/realapp/src --venv /tmp/realapp/venv
    .venv/bin/python bench/bench_realapp.py --app /tmp/realapp/src --venv /tmp/realapp/venv --instructions

The application (a checkout, never part of this repository) runs in its own virtualenv; this checkout's tenantwatch
is put first on the workers' ``sys.path`` (``src/``), so what is measured is the tenantwatch of this tree, whatever
is installed in that venv. The application-specific part is an adapter next to the harness (for mealie:
scripts/realapp_bench_mealie.py): how the app's engine and sessions are made, one loop of its repository calls
(reads and writes) and the tenant context of one group it runs in.

Configurations, each in its own subprocess so no instrumentation leaks from one to the next (as
bench/bench_queries.py's ``none``, ``otel`` and ``tenantwatch``):

1. ``plain``: the application as it is;
2. ``otel``: opentelemetry-instrumentation-sqlalchemy alone, SDK tracer provider, ``BatchSpanProcessor`` to an
   exporter that discards, SDK meter provider;
3. ``tenantwatch``: the same plus tenantwatch (its instrumentation and its span processor in front of the batch
   processor, its metrics on the same meter provider), with the adopter's rules file (the harness's).

Statements are counted by an engine event (``before_cursor_execute``) in every configuration, and must be the same
number per loop in all three. Rounds are interleaved (every round runs each configuration once, in a rotated
order); each subprocess reports its fastest timed batch after a warm-up, and the figure is the median over rounds,
in wall time and in the worker's CPU time (all its threads: less disturbed by other work than wall time, not immune).
``--instructions`` counts CPU instructions per statement under valgrind instead ((run with N loops) - (run with
none)) / statements: on a machine shared with other work it is the figure to trust (it varies by about 1%).
Printed: per-statement µs (or instructions) of each configuration, OTel's overhead, tenantwatch's own share
(tenantwatch - otel) per statement, and the ratio (otel + tenantwatch) / (otel alone). On mealie and a loaded 2-core
machine the wall run takes about 15 minutes, ``--instructions`` about 20 (six runs under valgrind). Figures:
docs/adopting.md, "What it costs per statement on mealie".
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
CONFIGS = ("plain", "otel", "tenantwatch")
ADAPTERS = {"mealie": "realapp_bench_mealie"}
"""Application (its top-level package) -> adapter module in scripts/."""
SHARE_TARGET_US = 15.0
"""issue 13's target for tenantwatch's own share per statement (on bench_queries' cache hit with no finding)."""


# --- worker (one configuration, one subprocess, in the application's venv) ------------------------------------------


class _Counts:
    statements = 0
    findings: dict[str, int] = {}  # rule -> db spans
    verdicts: dict[str, int] = {}  # one worker per process; filled on the export thread
    provider: Any = None


def _instrument(config: str) -> None:
    if config == "plain":
        return
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from tenantwatch import attributes as A

    class _Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            if config == "tenantwatch":  # on the export thread, off the measured path
                for span in spans:
                    attributes = span.attributes or {}
                    for rule in attributes.get(A.FINDINGS, ()):
                        _Counts.findings[str(rule)] = _Counts.findings.get(str(rule), 0) + 1
                    if A.DB_SYSTEM in attributes or A.DB_SYSTEM_NAME in attributes:
                        verdict = str(attributes.get(A.DB_TENANT_FILTER, "none"))
                        _Counts.verdicts[verdict] = _Counts.verdicts.get(verdict, 0) + 1
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_Discard()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    _Counts.provider = tracer_provider
    if config == "otel":
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    else:
        from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

        TenantwatchSQLAlchemyInstrumentor().instrument(
            tracer_provider=tracer_provider, meter_provider=meter_provider, install_processor=True
        )


def _worker(config: str, adapter_name: str, loops: int, batches: int, warmup: int) -> dict[str, Any]:
    adapter = importlib.import_module(adapter_name)
    # on tmpfs where there is one: the app's SQLite file is real, but its commits' fsyncs would measure the disk
    data_dir = Path(tempfile.mkdtemp(prefix="bench-realapp-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        for key in [key for key in os.environ if key.startswith("TENANTWATCH_")]:
            del os.environ[key]
        os.environ.update(adapter.environment(data_dir))
        if config == "tenantwatch":
            os.environ.update(adapter.rules_environment(data_dir))
        _instrument(config)  # before the app creates its engine: OTel patches create_engine

        import sqlalchemy as sa

        import tenantwatch

        app = adapter.setup()
        if _Counts.provider is not None:  # count what the loops do, not the (unscoped) set-up
            _Counts.provider.force_flush()
            _Counts.findings, _Counts.verdicts = {}, {}

        def count(*_: Any) -> None:
            _Counts.statements += 1

        sa.event.listen(app.engine, "before_cursor_execute", count)
        per_statement_us: list[float] = []
        per_statement_cpu_us: list[float] = []
        statements_per_loop: set[int] = set()
        with app.scope():
            for i in range(warmup):
                app.loop(i)
            if batches == 0:  # --instructions: the loops once, untimed, under valgrind
                gc.collect()
                gc.disable()
                before = _Counts.statements
                for i in range(loops):
                    app.loop(warmup + i)
                if loops:
                    statements_per_loop.add((_Counts.statements - before) // loops)
            for batch in range(batches):
                before = _Counts.statements
                start, start_cpu = time.perf_counter(), time.process_time()
                for i in range(loops):
                    app.loop(warmup + batch * loops + i)
                elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
                statements = _Counts.statements - before
                statements_per_loop.add(statements // loops)
                per_statement_us.append(elapsed / statements * 1e6)
                per_statement_cpu_us.append(elapsed_cpu / statements * 1e6)
        if _Counts.provider is not None:
            _Counts.provider.force_flush()  # every span exported, so every finding counted
        if len(statements_per_loop) > 1:
            raise SystemExit(f"statements per loop changed between batches: {sorted(statements_per_loop)}")
        return {
            "config": config,
            "us": min(per_statement_us, default=0.0),  # the least disturbed batch
            "batches": per_statement_us,
            "cpu_us": min(per_statement_cpu_us, default=0.0),  # the process's CPU time, all its threads
            "statements_per_loop": next(iter(statements_per_loop), 0),
            "findings": _Counts.findings,
            "verdicts": _Counts.verdicts,
            "tenantwatch": tenantwatch.__file__,
            "sqlalchemy": sa.__version__,
            "memo": _memo_counts(_Counts.provider),
        }
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _memo_counts(provider: Any) -> dict[str, int]:
    """Lookups, hits and pauses of the tenantwatch processor's verdict memo (``{}`` without a tenantwatch
    processor)."""
    from tenantwatch.processors import TenantwatchSpanProcessor

    pending = list(getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ()))
    while pending:
        processor = pending.pop()
        if isinstance(processor, TenantwatchSpanProcessor):
            memo = processor._memo
            return {"lookups": memo.hits + memo.misses, "hits": memo.hits, "pauses": memo.pauses}
        pending.extend(getattr(processor, "_span_processors", ()))
    return {}


# --- driver ----------------------------------------------------------------------------------------------------------


class BenchError(SystemExit):
    """A configuration that could not run, or ran something else than it should: the run stops, loudly."""

    def __init__(self, message: str) -> None:
        super().__init__(f"bench_realapp: {message}")


def _worker_command(python: Path, config: str, adapter: str, loops: int, batches: int, warmup: int) -> list[str]:
    return [
        str(python),
        __file__,
        *("--worker", config, "--adapter", adapter),
        *("--loops", str(loops), "--batches", str(batches), "--warmup", str(warmup)),
    ]


def _worker_env(app: Path) -> dict[str, str]:
    # this checkout's tenantwatch first (ahead of whatever the venv has installed), the adapter, then the app
    path = [str(ROOT / "src"), str(SCRIPTS), str(app)]
    return dict(os.environ, PYTHONHASHSEED="0", PYTHONPATH=os.pathsep.join(path))


def _result(done: subprocess.CompletedProcess[str], what: str) -> dict[str, Any]:
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"worker {what} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if not str(result["tenantwatch"]).startswith(str(ROOT / "src")):
        raise BenchError(f"worker {what} imported tenantwatch from {result['tenantwatch']}, not from {ROOT / 'src'}")
    return result


def _run_worker(config: str, args: argparse.Namespace) -> dict[str, Any]:
    command = _worker_command(args.python, config, args.adapter, args.loops, args.batches, args.warmup)
    done = subprocess.run(command, check=False, capture_output=True, text=True, cwd=args.app, env=_worker_env(args.app))
    result = _result(done, config)
    result["value"], result["cpu"] = result["us"], result["cpu_us"]
    return result


def _instructions(config: str, args: argparse.Namespace) -> dict[str, Any]:
    """Instructions per statement under valgrind: (run with N loops) - (run with none), over the statements."""

    def run(loops: int) -> tuple[int, dict[str, Any]]:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            *_worker_command(args.python, config, args.adapter, loops, 0, args.warmup),
        ]
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, cwd=args.app, env=_worker_env(args.app)
        )
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if found is None:
            raise BenchError(f"worker {config} under valgrind printed no instruction count:\n{done.stderr[-4000:]}")
        return int(found.group(1).replace(",", "")), _result(done, f"{config} (valgrind)")

    with_loops, result = run(args.loops)
    without, _ = run(0)
    result["value"] = (with_loops - without) / (args.loops * result["statements_per_loop"])
    return result


def _measure(args: argparse.Namespace) -> dict[str, float]:
    samples: dict[str, list[float]] = {c: [] for c in CONFIGS}
    cpu_samples: dict[str, list[float]] = {c: [] for c in CONFIGS}
    statements: dict[str, int] = {}
    findings, verdicts = dict[str, int](), dict[str, int]()
    memo: dict[str, int] = {}
    for round_no in range(args.rounds):
        order = CONFIGS[round_no % len(CONFIGS) :] + CONFIGS[: round_no % len(CONFIGS)]
        for config in order:
            result = (_instructions if args.instructions else _run_worker)(config, args)
            samples[config].append(result["value"])
            if "cpu" in result:
                cpu_samples[config].append(result["cpu"])
            statements[config] = result["statements_per_loop"]
            if config == "tenantwatch":
                findings, verdicts, memo = result["findings"], result["verdicts"], result.get("memo") or {}
                if not set(verdicts) - {"none", "not_applicable"}:
                    raise BenchError(f"tenantwatch judged no statement against a tenant table (verdicts: {verdicts})")
            print(f"  round {round_no + 1} {config:<12} {result['value']:,.1f}", flush=True)
    if len(set(statements.values())) != 1 or not statements["plain"]:
        raise BenchError(f"the configurations ran different numbers of statements per loop: {statements}")
    per_statement = {c: statistics.median(v) for c, v in samples.items()}
    print(f"\n{statements['plain']} statements per loop")
    _report(per_statement, samples, "instructions" if args.instructions else "us wall", args)
    if not args.instructions:
        per_statement_cpu = {c: statistics.median(v) for c, v in cpu_samples.items()}
        _report(per_statement_cpu, cpu_samples, "us CPU", args)
    seen = ", ".join(f"{verdict}={count}" for verdict, count in sorted(verdicts.items()))
    print(f"\nin the last tenantwatch worker (warm-up and measured loops): db spans by tenant filter verdict {seen};")
    rules = ", ".join(f"{rule}={count}" for rule, count in sorted(findings.items())) or "none"
    print(f"findings on them, by rule: {rules}")
    if memo:
        share = memo["hits"] / memo["lookups"] if memo["lookups"] else 0.0
        print(
            f"verdict memo: {memo['hits']:,} of {memo['lookups']:,} db spans judged from memory ({share:.0%}), "
            f"{memo['pauses']} pauses"
        )
    return per_statement


def _report(
    per_statement: dict[str, float], samples: dict[str, list[float]], unit: str, args: argparse.Namespace
) -> None:
    digits = 0 if args.instructions else 1
    plain, otel, ours = (per_statement[c] for c in CONFIGS)

    def n(value: float, sign: str = "") -> str:
        return f"{value:{sign},.{digits}f} {unit.split(maxsplit=1)[0]}"

    print(f"per statement ({unit}), median of rounds (spread over rounds)")
    for config in CONFIGS:
        spread = f"{min(samples[config]):,.{digits}f}-{max(samples[config]):,.{digits}f}"
        print(f"  {config:<12} {n(per_statement[config]):>22}   ({spread})")
    print(f"  otel's overhead per statement:            {n(otel - plain, '+')}")
    share = ours - otel
    line = f"  tenantwatch's own share per statement:    {n(share, '+')}"
    if not args.instructions:
        line += f"   (issue 13's target on a cache hit with no finding <= {SHARE_TARGET_US:.0f} us: "
        line += ("met" if share <= SHARE_TARGET_US else "MISSED") + ")"
    print(line)
    print(f"  (otel + tenantwatch) / (otel alone) =     {ours / otel:.3f}")
    print(f"  (otel + tenantwatch) / plain =            {ours / plain:.3f}   (otel alone / plain = {otel / plain:.3f})")


def _git(*command: str, cwd: Path) -> str:
    done = subprocess.run(["git", *command], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def _app_version(app: Path) -> str:
    """The checkout's commit, else the version its pyproject.toml declares (a snapshot without git metadata)."""
    commit = _git("rev-parse", "--short", "HEAD", cwd=app)
    if commit:
        return commit
    pyproject = app / "pyproject.toml"
    found = (
        re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.M)
        if pyproject.is_file()
        else None
    )
    return f"version {found.group(1)} (no git metadata)" if found else "(no git metadata)"


def _check_app(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The app and its venv must exist and fit an adapter: otherwise say so and stop (exit 2)."""
    if args.app is None:
        parser.error("--app is required: the application's checkout (e.g. --app /tmp/realapp/src)")
    args.app = args.app.resolve()
    if not args.app.is_dir():
        parser.error(f"--app {args.app}: no such directory (the application's checkout)")
    venv = (args.venv or args.app / ".venv").resolve()
    args.python = venv / "bin" / "python"
    if not args.python.is_file():
        parser.error(f"--venv {venv}: no {args.python} (the application's virtualenv, with its dependencies)")
    found = [package for package in ADAPTERS if (args.app / package / "__init__.py").is_file()]
    if not found:
        parser.error(f"--app {args.app}: no adapter recognises it (known: {', '.join(ADAPTERS)})")
    args.adapter = ADAPTERS[found[0]]
    args.app_name = found[0]
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", type=Path, help="the application's checkout (e.g. /tmp/realapp/src)")
    parser.add_argument("--venv", type=Path, help="the application's virtualenv (default: APP/.venv)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; 1 with --instructions)")
    parser.add_argument("--loops", type=int, help="loops per timed batch (default 10, also with --instructions)")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, help="loops before timing, filling the caches (default 10; 3 with --instructions)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per statement under valgrind instead of timing (immune to a noisy machine; slow)",
    )
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.instructions else 5
    if args.loops is None:
        args.loops = 10
    if args.warmup is None:
        args.warmup = 3 if args.instructions else 10
    if args.worker:
        print(json.dumps(_worker(args.worker, args.adapter, args.loops, args.batches, args.warmup)))
        return 0
    if min(args.rounds, args.loops, args.batches) < 1 or args.warmup < 0:
        parser.error("--rounds, --loops and --batches must be at least 1, --warmup at least 0")

    _check_app(parser, args)
    app_commit = _app_version(args.app)
    ours = _git("rev-parse", "--short", "HEAD", cwd=ROOT) or "?"
    dirty = " (uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no", cwd=ROOT) else ""
    print(f"python {platform.python_version()} (driver) on {platform.machine()}, {os.cpu_count()} cpus")
    print(f"app: {args.app_name} at {args.app} {app_commit}, venv python {args.python}")
    print(f"tenantwatch: {ROOT / 'src'} at {ours}{dirty}")
    if args.instructions:
        print(f"instructions per statement (valgrind), {args.rounds} rounds x {args.loops} loops")
    else:
        print(f"{args.rounds} rounds x {args.batches} batches x {args.loops} loops per configuration")
    _measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
