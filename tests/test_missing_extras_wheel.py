"""The built wheel in a fresh virtualenv with SQLAlchemy and httpx but none of tenantwatch's extras (no driver).

A user who installs ``tenantwatch`` next to their own SQLAlchemy (without ``tenantwatch[sqlalchemy]``) must get an
application that starts and ONE warning per missing instrumentation naming the extra, never a crash at
``configure()`` or an ``INTERNALERROR`` from ``pytest --tenantwatch``.

Bounded like tests/test_zero_code_wheel.py: the wheel is built without dependencies, the venv is filled from the
warm pip cache (``--no-compile``), once for the module.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 90.0

APP = textwrap.dedent(
    """
    import logging

    import sqlalchemy

    import tenantwatch
    from tenantwatch.instrumentation.httpx import instrument_httpx

    logging.basicConfig(format="LOG %(levelname)s %(message)s")

    async def app(scope, receive, send):
        pass

    handle = tenantwatch.configure(service_name="no-extras", exporters=False, app=app)
    again = tenantwatch.configure(service_name="no-extras", exporters=False, set_global=False, app=app)
    instrument_httpx()
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.connect() as conn:
        print("APP", conn.exec_driver_sql("SELECT 1").scalar())
    print("SERVED AS IS", handle.app is app and again.app is app)
    print("INSTRUMENTED", sorted(tenantwatch.instrumented()))
    print("WHY", tenantwatch.missing_instrumentation("sqlalchemy"))
    """
)

GATED_TEST = textwrap.dedent(
    """
    import sqlalchemy

    def test_query():
        engine = sqlalchemy.create_engine("sqlite://")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    """
)


def _run(*command: str | Path, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with the wheel (no extra), SQLAlchemy 2.0, httpx and pytest: what the newcomer installed."""
    started = time.monotonic()
    work = tmp_path_factory.mktemp("no-extras")
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run(
        [*pip, "wheel", str(ROOT), "-w", str(wheels), "--no-deps", "-q"],
        capture_output=True,
        text=True,
        timeout=BUDGET_SECONDS,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=BUDGET_SECONDS)
    wanted = ["--find-links", str(wheels), "tenantwatch", "sqlalchemy >= 2.0, < 2.1", "httpx", "pytest"]
    installed = subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "-q", "--no-compile", *wanted],
        capture_output=True,
        text=True,
        timeout=max(BUDGET_SECONDS - (time.monotonic() - started), 1),
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    yield venv


@pytest.mark.wheel
def test_configure_and_gate_run_without_the_extras(bare_venv: Path, tmp_path: Path) -> None:
    python = bare_venv / "bin" / "python"
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")

    ran = _run(python, app, cwd=tmp_path, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert "APP 1" in ran.stdout
    assert "SERVED AS IS True" in ran.stdout  # the app runs uninstrumented rather than not at all
    assert "INSTRUMENTED []" in ran.stdout
    assert "WHY opentelemetry-instrumentation-sqlalchemy is not installed" in ran.stdout
    warnings = [line for line in ran.stderr.splitlines() if line.startswith("LOG WARNING")]
    assert warnings == [  # one per missing instrumentation, though configure() ran twice
        "LOG WARNING tenantwatch: no database statement is watched: opentelemetry-instrumentation-sqlalchemy is "
        "not installed (pip install 'tenantwatch[sqlalchemy]')",
        "LOG WARNING tenantwatch: the application is served without tenantwatch's ASGI middleware (no tenant "
        "context from requests): opentelemetry-instrumentation-asgi is not installed (pip install 'tenantwatch[asgi]')",
        "LOG WARNING tenantwatch: outgoing httpx requests are not instrumented: opentelemetry-instrumentation-httpx "
        "is not installed (pip install 'tenantwatch[httpx]')",
    ], ran.stderr
    assert "Traceback" not in ran.stderr

    # The database commands without the driver extra: the extra is named, not "No module named 'psycopg'".
    audit = _run(
        bare_venv / "bin" / "tenantwatch", "audit", "postgresql+psycopg://a:pw@127.0.0.1:1/db", cwd=tmp_path, timeout=60
    )
    assert (audit.returncode, audit.stderr) == (
        2,
        "tenantwatch audit: DATABASE_URL: postgresql+psycopg URLs need psycopg: pip install 'tenantwatch[psycopg]'\n",
    )

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_app.py").write_text(GATED_TEST, encoding="utf-8")
    gated = _run(python, "-m", "pytest", "--tenantwatch", "-p", "no:cacheprovider", cwd=project, timeout=60)
    assert "INTERNALERROR" not in gated.stdout + gated.stderr
    assert "ModuleNotFoundError" not in gated.stdout + gated.stderr
    assert "1 passed" in gated.stdout, gated.stdout + gated.stderr
    assert "tenantwatch gate" in gated.stdout
    assert (
        "no database instrumentation is active: opentelemetry-instrumentation-sqlalchemy is not installed "
        "(pip install 'tenantwatch[sqlalchemy]')" in gated.stdout
    ), gated.stdout
