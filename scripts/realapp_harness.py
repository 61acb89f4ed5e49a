"""Run a real multi-tenant application's own test suite under tenantwatch, as an adopter would, and count.

Not part of tenantwatch's test run: it needs a checkout of the application and a virtualenv with its
dependencies, both outside this repository (the application's code is never committed here).

    python scripts/realapp_harness.py /tmp/realapp/src --venv /tmp/realapp/venv
    python scripts/realapp_harness.py /tmp/realapp/src --venv /tmp/realapp/venv --mode enforce --skip-plain
    python scripts/realapp_harness.py APP --venv VENV --baseline /work/notes/realapp-baseline.jsonl -- -k shopping
    python scripts/realapp_harness.py /tmp/realapp/src --venv /tmp/realapp/venv --skip-plain --plant all

What it does:

1. installs tenantwatch (editable, from this checkout, with its SQLAlchemy extra) into the application's venv;
2. writes a rules file whose ``tenant_tables`` are the application's mapped tables that carry the tenant column
   (what ``tenantwatch init`` would write for a migrated database; the application's test database does not exist
   yet when its engine first connects, so discovery alone would find no tenant table);
3. runs the application's suite once as it is (unless ``--skip-plain``) and once with this file loaded as a pytest
   plugin (``-p realapp_harness``): the plugin calls ``tenantwatch.configure()`` before the application is
   imported, records every finding to a JSON-lines file, counts the statements, and wraps the application's
   current-user dependency so every request runs inside ``tenantwatch.tenant_context(...)``, and its start-up
   migrations inside ``tenantwatch.unscoped(...)`` (the adopter code, kept here, never in the application);
4. prints statements, findings by rule and severity, distinct flagged statements inside requests with a tenant,
   the suite's pass/fail counts and its wall time with and without tenantwatch; ``--baseline`` saves the distinct
   flagged statements (normalized, with rule, severity, code location and the first test that produced each).

``--plant KIND`` (repeatable, or ``all``) installs planted isolation bugs of our own into the application
(scripts/realapp_plants_mealie.py: a list without its filter, a by-id read of another tenant's row, a raw ``text()``
read, an UPDATE and a DELETE without filter, a write stamping another tenant's id), runs only the application tests
that reach them (unless tests are given after ``--``) and reports each plant caught (rule, severity, code location)
or missed; the exit code is 1 when one is missed.

Adapters: only mealie (mealie-recipes/mealie, FastAPI + SQLAlchemy 2, groups as tenants) for now; an adapter names
the tenant column, the module holding the SQLAlchemy metadata, and wires the tenant context from the application's
own auth dependencies (for mealie: scripts/realapp_adopter_mealie.py, imported by the plugin).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "realapp_harness"

# Environment variables the harness sets for the plugin (inside the application's pytest process).
_ENV_OUT = "TENANTWATCH_REALAPP_OUT"
"""Directory the plugin writes findings.jsonl and summary.json to; the plugin does nothing without it."""
_ENV_ADAPTER = "TENANTWATCH_REALAPP_ADAPTER"
_ENV_UNSCOPED_TESTS = "TENANTWATCH_REALAPP_UNSCOPED_TESTS"
"""Set by ``--unscoped-tests``: test bodies run inside ``unscoped`` (only the requests are judged)."""
_ENV_PLANTS = "TENANTWATCH_REALAPP_PLANTS"
"""Planted bugs the plugin installs (comma-separated kinds); the adapter's plants module reads it too."""
_ENV_TENANT_FORM = "TENANTWATCH_REALAPP_TENANT_FORM"
"""How the adopter writes the tenant id into the context: ``dashed`` (``str(uuid)``, the natural choice) or ``hex``
(what the application binds on SQLite)."""

SEVERITY_ORDER = ("info", "warning", "high", "critical")


# --------------------------------------------------------------------------------------------------------------
# Adapters: what the harness must know about one application.
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapter:
    name: str
    package: str
    """Top-level package of the application (also how the harness recognises a checkout)."""
    tenant_column: str
    metadata: str
    """``module:attribute`` of the SQLAlchemy ``MetaData`` (or declarative base) holding every mapped table."""
    models: str
    """Module to import so every model is mapped."""
    env: tuple[tuple[str, str], ...] = ()
    """Environment the application's own test set-up expects when its models are imported."""
    deselect: tuple[str, ...] = ()
    """Tests that cannot run from a fetched snapshot (say, a fixture file stored out of band), with the reason."""
    scratch: tuple[str, ...] = ()
    """Directories (relative to the checkout) the suite keeps state in; removed before each run, so a run that
    stopped half-way (an enforce run blocking a migration) does not leave a half-migrated database behind."""
    plants: str | None = None
    """Module (in scripts/) of planted bugs for ``--plant``: ``PLANTS``, ``install()``, ``judge()``."""
    tenant_keys: tuple[tuple[str, str, str, str | None], ...] = ()
    """A tenant hierarchy, ``(key, column, root table, parent key)`` per key, root first: written as the rules
    file's ``tenant_keys`` (unless ``--one-key``). Which keys the context holds is the adopter code's decision."""


MEALIE = Adapter(
    name="mealie",
    package="mealie",
    tenant_column="group_id",
    metadata="mealie.db.models._model_base:SqlAlchemyBase",
    models="mealie.db.models._all_models",
    env=(("PRODUCTION", "True"), ("TESTING", "True")),
    # mealie's conftest means to empty tests/.temp (its SQLite database) first, but calls Path before importing it
    # and swallows the NameError; its api_client fixture deletes the database only when a session ends normally.
    scratch=("tests/.temp",),
    # tests/data/migrations/recipekeeper.zip is a large file the snapshot does not hold.
    deselect=(
        "tests/integration_tests/recipe_migration_tests/test_recipe_migrations.py"
        "::test_recipe_migration[recipekeeper_archive]",
    ),
    plants="realapp_plants_mealie",
    # mealie's groups hold households; many tables carry both ids, some only household_id
    tenant_keys=(("group", "group_id", "groups", None), ("household", "household_id", "households", "group")),
)

ADAPTERS = {MEALIE.name: MEALIE}


def detect_adapter(app_dir: Path) -> Adapter:
    for adapter in ADAPTERS.values():
        if (app_dir / adapter.package / "__init__.py").is_file():
            return adapter
    raise SystemExit(f"realapp_harness: no adapter recognises {app_dir} (known: {', '.join(ADAPTERS)})")


# --------------------------------------------------------------------------------------------------------------
# The pytest plugin (runs inside the application's test process, in the application's venv).
# --------------------------------------------------------------------------------------------------------------


class _Recorder:
    """Finding listener and statement counter; writes findings as they come (a crash keeps what was seen)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.test: str | None = None
        self.statements = 0
        self.statements_with_tenant = 0
        self.statements_unscoped = 0
        self.blocked = 0
        self.findings = 0
        self.verdicts: collections.Counter[str] = collections.Counter()
        self._file = (out / "findings.jsonl").open("w", encoding="utf-8")

    def on_statement(self, attributes: Any) -> None:
        from tenantwatch import attributes as A

        with self.lock:
            self.statements += 1
            if attributes.get(A.TENANT_ID):
                self.statements_with_tenant += 1
            if attributes.get(A.UNSCOPED_REASON):
                self.statements_unscoped += 1
            self.verdicts[str(attributes.get(A.DB_TENANT_FILTER, "none"))] += 1

    def on_finding(self, finding: Any, facts: Any, span: Any) -> None:
        from tenantwatch.redaction import mask_statement

        statement = facts.statement or ""
        record = {
            "rule": finding.rule,
            "severity": finding.severity,
            "fingerprint": finding.fingerprint,
            "statement_fingerprint": facts.statement_fingerprint,
            "table": finding.table,
            "message": finding.message,
            "statement": " ".join(mask_statement(statement).split()) if statement else None,
            "operation": facts.operation,
            "tenant_filter": facts.tenant_filter,
            "tenant": facts.tenant_id,
            "role": facts.role,
            "unscoped": facts.unscoped_reason,
            "code_location": facts.code_location,
            "test": self.test,
        }
        line = json.dumps(record, sort_keys=True)
        with self.lock:
            self.findings += 1
            self._file.write(line + "\n")

    def summary(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "statements_with_tenant": self.statements_with_tenant,
            "statements_unscoped": self.statements_unscoped,
            "findings": self.findings,
            "verdicts": dict(self.verdicts),
        }

    def close(self) -> None:
        with self.lock:
            self._file.close()
        (self.out / "summary.json").write_text(json.dumps(self.summary(), indent=2, sort_keys=True), encoding="utf-8")


_recorder: _Recorder | None = None


def _make_counter(recorder: _Recorder) -> Any:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    from tenantwatch import attributes as A

    class StatementCounter(SpanProcessor):
        """Downstream of tenantwatch's processor: sees every (enriched) span, counts the db ones."""

        def on_end(self, span: ReadableSpan) -> None:
            attributes = span.attributes or {}
            if A.DB_TENANT_FILTER in attributes or A.DB_SYSTEM in attributes or A.DB_SYSTEM_NAME in attributes:
                recorder.on_statement(attributes)

    return StatementCounter()


def pytest_load_initial_conftests(early_config: Any, parser: Any, args: list[str]) -> None:
    """Configure tenantwatch before the application's conftest imports the application (and creates its engine)."""
    global _recorder  # noqa: PLW0603 - one recorder per pytest process
    out = os.environ.get(_ENV_OUT)
    if not out or _recorder is not None:
        return
    import tenantwatch

    _recorder = _Recorder(Path(out))
    handle = tenantwatch.configure(
        service_name=f"realapp-{os.environ.get(_ENV_ADAPTER, 'app')}",
        exporters=False,
        span_exporter=_make_counter(_recorder),
        # mode and rules file come from TENANTWATCH_MODE / TENANTWATCH_RULES_FILE, as in a deployment
    )
    handle.processor.add_finding_listener(_recorder.on_finding)
    if os.environ.get(_ENV_ADAPTER, MEALIE.name) == MEALIE.name:
        import wrapt

        # before the app's conftest imports init_db (and binds its `main`), and without importing it earlier
        wrapt.register_post_import_hook(_unscoped_mealie_startup, "mealie.db.init_db")


def _unscoped_mealie_startup(module: Any) -> None:
    """Adopter code for mealie's start-up (its lifespan and its conftest call ``init_db.main()``): migrations and
    seed data touch every tenant on purpose. In the app this is ``with unscoped(...): init_db.main()`` in
    ``lifespan_fn``."""
    import functools

    import tenantwatch

    main = module.main

    @functools.wraps(main)
    def unscoped_main(*args: Any, **kwargs: Any) -> Any:
        with tenantwatch.unscoped("start-up migrations and seed data"):
            return main(*args, **kwargs)

    module.main = unscoped_main


def pytest_sessionstart(session: Any) -> None:
    """The application is imported now (its conftest ran): wrap its auth dependencies."""
    if _recorder is None:
        return
    adapter = ADAPTERS[os.environ.get(_ENV_ADAPTER, MEALIE.name)]
    if adapter is MEALIE:
        import realapp_adopter_mealie

        realapp_adopter_mealie.wire()
    if adapter.plants and os.environ.get(_ENV_PLANTS):
        import importlib

        planted = importlib.import_module(adapter.plants).install(os.environ[_ENV_PLANTS].split(","))
        print(f"realapp_harness: planted {', '.join(plant.kind for plant in planted)}", file=sys.stderr)


try:
    import pytest as _pytest
except ImportError:  # the driver side runs without pytest
    _pytest = None  # type: ignore[assignment]

if _pytest is not None:

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(item: Any) -> Any:
        """Test fixtures seed data for many tenants at once (users of two groups, a second group's recipes): as an
        adopter would, their set-up runs as deliberate cross-tenant work. The test bodies are not wrapped (unless
        ``--unscoped-tests``): a test that reads the database without a request runs as the application would
        there, with no tenant."""
        if _recorder is not None:
            _recorder.test = item.nodeid
        with _fixture_work("set-up"):
            yield

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_teardown(item: Any, nextitem: Any) -> Any:
        """The fixtures' clean-up (deleting what they seeded) is the same deliberate cross-tenant work."""
        with _fixture_work("clean-up"):
            yield


def _fixture_work(phase: str) -> Any:
    import contextlib

    if _recorder is None:
        return contextlib.nullcontext()
    import tenantwatch

    return tenantwatch.unscoped(f"test fixture {phase}")


if _pytest is not None:

    @_pytest.hookimpl(hookwrapper=True)
    def pytest_pyfunc_call(pyfuncitem: Any) -> Any:
        """With ``--unscoped-tests``: the test body's own database work (repositories called without a request)
        runs as deliberate cross-tenant work too, so what is judged is what the application's requests do (each
        sets its own context in the adopter's dependencies, which replaces this one)."""
        if _recorder is None or not os.environ.get(_ENV_UNSCOPED_TESTS):
            yield
            return
        import tenantwatch

        with tenantwatch.unscoped("test body outside requests"):
            yield


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if _recorder is not None:
        _recorder.close()


# --------------------------------------------------------------------------------------------------------------
# The driver (runs in tenantwatch's own environment or any Python 3.11+).
# --------------------------------------------------------------------------------------------------------------


@dataclass
class SuiteRun:
    label: str
    seconds: float
    exit_code: int
    tests: int = 0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    failures: tuple[str, ...] = ()

    def line(self) -> str:
        return (
            f"{self.label:<22} {self.passed:>5} passed {self.failed:>4} failed {self.errors:>4} errors "
            f"{self.skipped:>4} skipped  {self.seconds:8.1f} s  (exit {self.exit_code})"
        )


def read_junit(path: Path, label: str, seconds: float, exit_code: int) -> SuiteRun:
    run = SuiteRun(label, seconds, exit_code)
    if not path.is_file():
        return run
    failures: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        run.tests += 1
        outcome = {child.tag for child in case}
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if "failure" in outcome:
            run.failed += 1
            failures.append(name)
        elif "error" in outcome:
            run.errors += 1
            failures.append(name)
        elif "skipped" in outcome:
            run.skipped += 1
        else:
            run.passed += 1
    run.failures = tuple(failures)
    return run


def _write_timings(work: Path, runs: list[SuiteRun]) -> None:
    timed = _read_timings(work)
    timed.update({run.label: (run.seconds, run.exit_code) for run in runs})
    (work / "timings.json").write_text(json.dumps(timed, indent=2, sort_keys=True), encoding="utf-8")


def _read_timings(work: Path) -> dict[str, tuple[float, int]]:
    path = work / "timings.json"
    if not path.is_file():
        return {}
    return {label: (float(seconds), int(code)) for label, (seconds, code) in json.loads(path.read_text()).items()}


def _junit_seconds(path: Path) -> float:
    suite = next(ET.parse(path).getroot().iter("testsuite"), None)
    return float(suite.get("time", 0.0)) if suite is not None else 0.0


def python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


def install_tenantwatch(venv: Path) -> None:
    print(f"installing tenantwatch (editable, {ROOT}) into {venv}", flush=True)
    subprocess.run(
        [str(python_of(venv)), "-m", "pip", "install", "-q", "-e", f"{ROOT}[sqlalchemy]"],
        check=True,
    )


def tenant_tables(adapter: Adapter, app_dir: Path, venv: Path) -> dict[str, str]:
    """The application's mapped tables that have the tenant column (read from its SQLAlchemy metadata)."""
    module, _, attribute = adapter.metadata.partition(":")
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({adapter.models!r})\n"
        f"meta = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "meta = getattr(meta, 'metadata', meta)\n"
        f"print(json.dumps(sorted(t.name for t in meta.tables.values() if {adapter.tenant_column!r} in t.c)))\n"
    )
    env = {**os.environ, **dict(adapter.env)}
    result = subprocess.run(
        [str(python_of(venv)), "-c", code], cwd=app_dir, env=env, check=True, capture_output=True, text=True
    )
    names: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return {name: adapter.tenant_column for name in names}


def write_rules_file(
    path: Path, adapter: Adapter, tables: dict[str, str], *, suppress: Iterable[str] = (), one_key: bool = False
) -> None:
    """The adopter's rules file. With the adapter's tenant hierarchy, ``tenant_keys`` and no table list: every
    mapped table with a key column is learned from the ORM; with one key, the tables read from the models."""
    import yaml

    rules: dict[str, Any]
    if adapter.tenant_keys and not one_key:
        rules = {
            "tenant_keys": {
                key: {"columns": [column], "root": root, **({"parent": parent} if parent else {})}
                for key, column, root, parent in adapter.tenant_keys
            }
        }
    else:
        rules = {"tenant_columns": [adapter.tenant_column], "tenant_tables": tables}
    suppressions = [{"rule": rule, "reason": "suppressed by realapp_harness --suppress"} for rule in suppress]
    if suppressions:
        rules["suppressions"] = suppressions
    path.write_text(
        "# written by scripts/realapp_harness.py from the application's SQLAlchemy metadata\n"
        + yaml.safe_dump(rules, sort_keys=True),
        encoding="utf-8",
    )


def run_suite(
    label: str,
    *,
    adapter: Adapter,
    app_dir: Path,
    venv: Path,
    work: Path,
    pytest_args: list[str],
    plugin_env: dict[str, str] | None,
) -> SuiteRun:
    junit = work / f"junit-{label}.xml"
    cmd = [str(python_of(venv)), "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    cmd += [f"--deselect={test}" for test in adapter.deselect]
    env = {key: value for key, value in os.environ.items() if not key.startswith("TENANTWATCH_")}
    if plugin_env is not None:
        cmd += ["-p", PLUGIN]
        env.update(plugin_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))
    cmd += pytest_args
    for scratch in adapter.scratch:
        shutil.rmtree(app_dir / scratch, ignore_errors=True)
    log = work / f"pytest-{label}.log"
    print(f"running the suite ({label}); log: {log}", flush=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as stream:
        exit_code = subprocess.run(
            cmd, check=False, cwd=app_dir, env=env, stdout=stream, stderr=subprocess.STDOUT
        ).returncode
    seconds = time.perf_counter() - started
    return read_junit(junit, label, seconds, exit_code)


def read_findings(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def at_least(severity: str, floor: str) -> bool:
    return SEVERITY_ORDER.index(severity) >= SEVERITY_ORDER.index(floor) if severity in SEVERITY_ORDER else False


def distinct_flagged(findings: Iterable[dict[str, Any]], *, floor: str = "warning") -> list[dict[str, Any]]:
    """One row per (rule, statement, code location) flagged at ``floor`` or above inside a request with a tenant
    (not unscoped), with how often it fired and the first test that produced it.

    Keyed by the statement fingerprint, not the finding's: windowed rules (``repeated_violations``, ``bulk_write``,
    ...) fingerprint by tenant, and every test creates its own tenants."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for finding in findings:
        if not finding.get("tenant") or finding.get("unscoped") or not at_least(finding["severity"], floor):
            continue
        key = (finding["rule"], finding.get("statement_fingerprint") or "", finding.get("code_location") or "")
        row = rows.get(key)
        if row is None:
            rows[key] = row = {
                key: finding.get(key)
                for key in (
                    "rule",
                    "severity",
                    "fingerprint",
                    "statement_fingerprint",
                    "table",
                    "tenant_filter",
                    "operation",
                    "code_location",
                    "statement",
                    "message",
                    "test",
                )
            }
            row["count"] = 0
            row["classification"] = None
        row["count"] += 1
    return sorted(rows.values(), key=lambda r: (-SEVERITY_ORDER.index(r["severity"]), r["rule"], r["statement"] or ""))


def report(findings: list[dict[str, Any]], summary: dict[str, Any], runs: list[SuiteRun]) -> str:
    lines = []
    lines.append(
        f"statements: {summary.get('statements', 0)} (with a tenant: {summary.get('statements_with_tenant', 0)}, "
        f"unscoped: {summary.get('statements_unscoped', 0)})"
    )
    verdicts = summary.get("verdicts", {})
    lines.append("tenant filter verdicts: " + ", ".join(f"{k}={v}" for k, v in sorted(verdicts.items())))
    lines.append(f"findings: {len(findings)}")
    by_rule: collections.Counter[tuple[str, str]] = collections.Counter((f["rule"], f["severity"]) for f in findings)
    with_tenant = collections.Counter((f["rule"], f["severity"]) for f in findings if f.get("tenant"))
    lines.append(f"  {'rule':<24} {'severity':<9} {'all':>8} {'in requests with a tenant':>27}")
    for (rule, severity), count in sorted(by_rule.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {rule:<24} {severity:<9} {count:>8} {with_tenant[(rule, severity)]:>27}")
    flagged = distinct_flagged(findings)
    statements = {row["statement_fingerprint"] for row in flagged}
    lines.append(
        f"distinct flagged statements inside requests with a tenant (warning or above): {len(statements)} "
        f"statements, {len(flagged)} (rule, statement, code location)"
    )
    per_rule = collections.Counter(row["rule"] for row in flagged)
    lines.append("  by rule: " + ", ".join(f"{rule}={count}" for rule, count in per_rule.most_common()))
    locations = collections.Counter(row["code_location"].rsplit(":", 2)[0] for row in flagged if row["code_location"])
    lines.append("  top code files: " + ", ".join(f"{Path(p).name}={c}" for p, c in locations.most_common(6)))
    lines.append("suite:")
    lines.extend("  " + run.line() for run in runs)
    plain = next((run for run in runs if run.label == "plain"), None)
    for run in runs:
        if plain is not None and run is not plain and plain.seconds > 0:
            lines.append(f"  wall time {run.label} / plain: {run.seconds / plain.seconds:.2f}x")
        for name in run.failures[:15]:
            lines.append(f"  {run.label} failed: {name}")
        if len(run.failures) > 15:
            lines.append(f"  {run.label}: {len(run.failures) - 15} more failures")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="Arguments after -- go to the application's pytest."
    )
    parser.add_argument("app", type=Path, help="the application's checkout")
    parser.add_argument("--venv", type=Path, help="the application's virtualenv (default: APP/.venv)")
    parser.add_argument("--mode", choices=("monitor", "enforce"), default="monitor")
    parser.add_argument("--skip-plain", action="store_true", help="do not run the suite without tenantwatch")
    parser.add_argument("--no-install", action="store_true", help="tenantwatch is already installed in the venv")
    parser.add_argument("--tenant-form", choices=("dashed", "hex"), default="dashed")
    parser.add_argument(
        "--discover-only",
        action="store_true",
        help="no rules file: tenant tables only from tenantwatch's discovery (the new user's first run)",
    )
    parser.add_argument(
        "--suppress",
        action="append",
        default=[],
        metavar="RULE",
        help="suppress a rule in the rules file (repeatable), e.g. test_data for an app that seeds example.com users",
    )
    parser.add_argument("--app-commit", help="the application's commit, when its checkout has no git metadata")
    parser.add_argument("--work", type=Path, help="where logs, junit files and findings go (default: a temp dir)")
    parser.add_argument(
        "--unscoped-tests",
        action="store_true",
        help="run the test bodies' own database work (outside requests) inside unscoped: judge the requests only",
    )
    parser.add_argument(
        "--one-key",
        action="store_true",
        help="declare only the root tenant key (the app's tenant column), not its tenant hierarchy",
    )
    parser.add_argument(
        "--from-work", action="store_true", help="run nothing: report on what an earlier run left in --work"
    )
    parser.add_argument("--baseline", type=Path, help="write the distinct flagged statements here (JSON lines)")
    parser.add_argument(
        "--plant",
        action="append",
        default=[],
        metavar="KIND",
        help="install a planted bug (repeatable; 'all' for every one) and report whether it was caught; without "
        "tests after --, runs only the application tests that reach the plants",
    )
    argv = sys.argv[1:] if argv is None else argv
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = pytest_args

    app_dir = args.app.resolve()
    venv = (args.venv or app_dir / ".venv").resolve()
    adapter = detect_adapter(app_dir)
    plants = plants_of(adapter, args.plant, parser)
    if plants and not args.pytest_args:
        args.pytest_args = sorted({test for plant in plants for test in plant.tests})
    work = (args.work or Path(tempfile.mkdtemp(prefix="realapp-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.from_work and args.work is None:
        parser.error("--from-work needs --work")
    if not (args.no_install or args.from_work):
        install_tenantwatch(venv)
    commit = (
        args.app_commit
        or subprocess.run(
            ["git", "-C", str(app_dir), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    print(f"app: {adapter.name} at {app_dir} {commit or '(no git metadata)'}; work dir: {work}", flush=True)

    plugin_env = {_ENV_OUT: str(work), _ENV_ADAPTER: adapter.name, _ENV_TENANT_FORM: args.tenant_form}
    plugin_env["TENANTWATCH_MODE"] = args.mode
    if args.unscoped_tests:
        plugin_env[_ENV_UNSCOPED_TESTS] = "1"
    if plants:
        plugin_env[_ENV_PLANTS] = ",".join(plant.kind for plant in plants)
    if args.from_work:
        pass
    elif not args.discover_only:
        tables = tenant_tables(adapter, app_dir, venv)
        rules = work / "rules.yaml"
        write_rules_file(rules, adapter, tables, suppress=args.suppress, one_key=args.one_key)
        plugin_env["TENANTWATCH_RULES_FILE"] = str(rules)
        print(f"tenant tables from the app's models: {len(tables)} (column {adapter.tenant_column})", flush=True)
    else:
        plugin_env["TENANTWATCH_TENANT_COLUMNS"] = adapter.tenant_column

    runs: list[SuiteRun] = []
    if args.from_work:
        timed = _read_timings(work)
        for junit in sorted(work.glob("junit-*.xml")):
            label = junit.stem.removeprefix("junit-")
            seconds, exit_code = timed.get(label, (_junit_seconds(junit), 0))
            runs.append(read_junit(junit, label, seconds, exit_code))
    elif not args.skip_plain:
        runs.append(
            run_suite(
                "plain",
                adapter=adapter,
                app_dir=app_dir,
                venv=venv,
                work=work,
                pytest_args=args.pytest_args,
                plugin_env=None,
            )
        )
    if not args.from_work:
        runs.append(
            run_suite(
                f"tenantwatch-{args.mode}",
                adapter=adapter,
                app_dir=app_dir,
                venv=venv,
                work=work,
                pytest_args=args.pytest_args,
                plugin_env=plugin_env,
            )
        )

    else:
        _write_timings(work, runs)

    findings = read_findings(work / "findings.jsonl")
    summary_path = work / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    print(report(findings, summary, runs))
    if args.baseline is not None:
        rows = distinct_flagged(findings)
        with args.baseline.open("w", encoding="utf-8") as stream:
            for row in rows:
                stream.write(json.dumps({"app": adapter.name, "app_commit": commit or None, **row}) + "\n")
        print(f"wrote {len(rows)} distinct flagged statements to {args.baseline}")
    if plants:
        results = plants_module(adapter).judge(findings, plants)
        print("planted bugs (a finding inside a request with a tenant, at the plant's line, with its rule):")
        failed = {name for run in runs for name in run.failures}
        for result in results:
            own = [test for test in result.plant.tests if junit_name(test) in failed]
            verdict = f"; the app's own test failed too: {len(own)} of {len(result.plant.tests)}" if own else ""
            print("  " + result.line() + verdict)
        print(f"  {sum(r.caught for r in results)} of {len(results)} caught")
        return 0 if all(r.caught for r in results) else 1
    return 0


def junit_name(node_id: str) -> str:
    """``tests/a/b.py::test_x[p]`` as the junit file names it (``tests.a.b::test_x[p]``, see read_junit)."""
    path, _, name = node_id.partition("::")
    return f"{path.removesuffix('.py').replace('/', '.')}::{name}"


def plants_module(adapter: Adapter) -> Any:
    import importlib

    if adapter.plants is None:
        raise SystemExit(f"realapp_harness: no planted bugs for {adapter.name}")
    sys.path.insert(0, str(Path(__file__).parent))
    return importlib.import_module(adapter.plants)


def plants_of(adapter: Adapter, names: list[str], parser: argparse.ArgumentParser) -> tuple[Any, ...]:
    if not names:
        return ()
    try:
        return tuple(plants_module(adapter).select_plants(names))
    except ValueError as error:
        parser.error(str(error))


if __name__ == "__main__":
    sys.exit(main())
