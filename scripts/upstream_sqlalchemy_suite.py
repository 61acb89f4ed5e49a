#!/usr/bin/env python3
"""Run opentelemetry-instrumentation-sqlalchemy's own test suite with tenantwatch in the picture.

    .venv/bin/python scripts/upstream_sqlalchemy_suite.py                  # both modes below, summary per mode
    .venv/bin/python scripts/upstream_sqlalchemy_suite.py --mode replace -- -k commenter   # extra pytest args

The suite ships in the sdist of the installed (pinned) release. It is downloaded once with pip into
``${TENANTWATCH_CACHE:-~/.cache/tenantwatch}/upstream``, its ``tests/`` unpacked into a temporary directory and run
by pytest in a subprocess, with this file loaded as a pytest plugin (``-p upstream_sqlalchemy_suite``):

``replace``
    tenantwatch's instrumentor in place of ``SQLAlchemyInstrumentor``: every ``instrument(...)`` /
    ``uninstrument()`` of the tests goes to :class:`TenantwatchSQLAlchemyInstrumentor`, with the same arguments.
``both``
    OTel's instrumentor as the tests use it, and tenantwatch's on top: each ``instrument(...)`` is followed by
    tenantwatch's with the same arguments, each ``uninstrument()`` preceded by tenantwatch's.
``otel``
    the suite unchanged (the reference run).

The upstream async tests are skipped unless SQLAlchemy is 1.4 (a version check, not a missing dependency); they
run here in every mode, on aiosqlite. TENANTWATCH_* and OTEL_* variables are not passed on, so the run does not
depend on the caller's environment. Exit status: 0 when every test of every mode passed and none was skipped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "opentelemetry-instrumentation-sqlalchemy"
MODES = ("replace", "both", "otel")
_ASYNC_SKIP_REASON = "only run async tests for 1.4"
_MODE_OPTION = "--tenantwatch-upstream-mode"


def cache_dir() -> Path:
    return Path(os.environ.get("TENANTWATCH_CACHE") or Path.home() / ".cache" / "tenantwatch") / "upstream"


def pinned_version() -> str:
    """The installed release: its sdist's tests are the ones that describe the code in use."""
    return metadata.version(DISTRIBUTION)


def sdist(version: str) -> Path:
    """The sdist of ``version``, downloaded into the cache the first time."""
    cache = cache_dir()
    stem = f"{DISTRIBUTION.replace('-', '_')}-{version}"
    found = sorted(cache.glob(f"{stem}.tar.gz"))
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as incoming:
        download = [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps"]
        subprocess.run([*download, "-d", incoming, f"{DISTRIBUTION}=={version}"], check=True, timeout=120)
        downloaded = sorted(Path(incoming).glob(f"{stem}.tar.gz"))
        if not downloaded:
            raise SystemExit(f"pip download left no {stem}.tar.gz")
        target = cache / downloaded[0].name
        os.replace(downloaded[0], target)  # atomic: a concurrent run sees the whole file or none
    return target


def unpack_tests(archive: Path, into: Path) -> Path:
    """Extract the ``tests/`` (and the project file) of the sdist; returns the project directory."""
    with tarfile.open(archive) as tar:
        members = [
            m for m in tar.getmembers() if (m.isfile() or m.isdir()) and (m.name.count("/") == 1 or "/tests/" in m.name)
        ]
        tar.extractall(into, members=members, filter="data")
    (project,) = (p for p in into.iterdir() if p.is_dir())
    return project


@dataclass(frozen=True)
class Counts:
    mode: str
    total: int
    passed: int
    failed: int
    skipped: int
    unskipped: int
    """Upstream async tests run instead of skipped (the plugin's count)."""

    def __str__(self) -> str:
        return (
            f"{DISTRIBUTION} suite, mode {self.mode}: {self.passed} passed, {self.failed} failed, "
            f"{self.skipped} skipped ({self.total} tests, {self.unskipped} async tests unskipped)"
        )


def run(mode: str, pytest_args: list[str] | None = None, *, timeout: float = 300.0) -> Counts:
    """Run the upstream suite in ``mode``; returns the counts (pytest's output goes to stdout/stderr)."""
    version = pinned_version()
    archive = sdist(version)
    with tempfile.TemporaryDirectory(prefix="tw-upstream-") as tmp:
        project = unpack_tests(archive, Path(tmp))
        report = Path(tmp) / "report.xml"
        unskipped = Path(tmp) / "unskipped"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTWATCH_", "OTEL_"))}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))
        env["TW_UPSTREAM_UNSKIPPED_FILE"] = str(unskipped)
        # The upstream tests assert the literal text of their statements (``SELECT 1``) as exported. tenantwatch
        # never rewrites the span, but by default masks literals in what it exports: the one default switched off.
        env["TENANTWATCH_MASK_STATEMENTS"] = "false"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-p",
            Path(__file__).stem,
            _MODE_OPTION,
            mode,
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            "-q",
            f"--junitxml={report}",
            *(pytest_args or []),
        ]
        subprocess.run(command, cwd=project, env=env, timeout=timeout, check=False)
        if not report.exists():
            raise SystemExit(f"pytest wrote no report for mode {mode}")
        suite = ET.parse(report).getroot()
        if suite.tag == "testsuites":
            suite = suite[0]
        total = int(suite.get("tests", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skipped = int(suite.get("skipped", 0))
        count = int(unskipped.read_text()) if unskipped.exists() else 0
    return Counts(mode, total, total - failed - skipped, failed, skipped, count)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=MODES, action="append", help="default: replace and both")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    results = [run(mode, args.pytest_args) for mode in args.mode or ("replace", "both")]
    for counts in results:
        print(counts)
    return 0 if all(c.failed == 0 and c.skipped == 0 and c.total > 0 for c in results) else 1


# --- the pytest plugin (loaded in the subprocess) ---------------------------------------------------------------------


def pytest_addoption(parser: Any) -> None:
    parser.addoption(_MODE_OPTION, choices=MODES, default="otel", help="how tenantwatch joins the upstream suite")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    mode = config.getoption(_MODE_OPTION)
    unskipped = 0
    for item in items:
        kept = [
            m for m in item.own_markers if not (m.name == "skipif" and m.kwargs.get("reason") == _ASYNC_SKIP_REASON)
        ]
        unskipped += len(item.own_markers) - len(kept)
        item.own_markers[:] = kept
    record = os.environ.get("TW_UPSTREAM_UNSKIPPED_FILE")
    if record:
        Path(record).write_text(str(unskipped))
    if mode == "otel":
        return
    replacement = _replacement(mode)
    for module in {item.module for item in items if getattr(item, "module", None) is not None}:
        if hasattr(module, "SQLAlchemyInstrumentor"):
            module.SQLAlchemyInstrumentor = replacement


def _replacement(mode: str) -> Any:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

    if mode == "replace":
        return TenantwatchSQLAlchemyInstrumentor

    class OTelThenTenantwatch:
        """OTel's instrumentor, with tenantwatch's instrumented after it and uninstrumented before it."""

        def instrument(self, **kwargs: Any) -> Any:
            result = SQLAlchemyInstrumentor().instrument(**kwargs)
            TenantwatchSQLAlchemyInstrumentor().instrument(**kwargs)
            return result

        def uninstrument(self, **kwargs: Any) -> Any:
            TenantwatchSQLAlchemyInstrumentor().uninstrument(**kwargs)
            return SQLAlchemyInstrumentor().uninstrument(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(SQLAlchemyInstrumentor(), name)

    return OTelThenTenantwatch


if __name__ == "__main__":
    sys.exit(main())
