"""Zero-code mode as a user gets it: the built wheel in a fresh virtualenv, `opentelemetry-instrument python app.py`.

Without a distro nothing configures the SDK: the instrumentor says so (WARNING, what to install) instead of
running silently to no effect. ``pip install 'tenantwatch[auto]'`` brings the matching distro and OTLP exporters,
resolves cleanly (``pip check``), and the same command then reports the finding on the console exporter.

Bounded: the wheel is built without dependencies and the venv is filled from the warm pip cache (``--no-compile``,
the test venv's pip driving the new interpreter), in well under 90 s.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from console_output import json_objects
from tenantwatch import attributes as A
from tenantwatch.instrumentation.sqlalchemy import NO_SDK_WARNING

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 90.0

APP = textwrap.dedent(
    """
    import sqlalchemy
    from opentelemetry import baggage, context

    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id integer PRIMARY KEY, organization_id integer, total integer)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 1, 10), (2, 2, 20)")

    def list_orders():
        token = context.attach(baggage.set_baggage("tenant.id", "1"))
        try:
            with engine.connect() as conn:
                rows = conn.exec_driver_sql("SELECT id, total FROM orders").all()
        finally:
            context.detach(token)
        print("APP", len(rows))

    list_orders()
    """
)


def _pip(venv_python: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pip", "--python", str(venv_python), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def _instrumented(venv: Path, app: Path, rules: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "OTEL_SERVICE_NAME": "wheel-zero-code",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "TENANTWATCH_RULES_FILE": str(rules),
        # the app stands for a service whose tenant arrives in baggage from its own gateway: trusted by decision
        "TENANTWATCH_TRUST_BAGGAGE": "true",
    }
    command = [str(venv / "bin" / "opentelemetry-instrument"), str(venv / "bin" / "python"), str(app)]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=timeout, check=False, cwd=app.parent
    )


@pytest.mark.wheel
def test_one_install_gives_zero_code_findings(tmp_path: Path) -> None:
    started = time.monotonic()

    def left() -> float:
        remaining = BUDGET_SECONDS - (time.monotonic() - started)
        assert remaining > 0, "the wheel test ran over its budget"
        return remaining

    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "-w", str(wheels), "--no-deps", "-q"],
        capture_output=True,
        text=True,
        timeout=left(),
        check=False,
    )
    assert built.returncode == 0, built.stderr
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=left())
    python = venv / "bin" / "python"
    app = tmp_path / "app.py"
    app.write_text(APP, encoding="utf-8")
    rules = tmp_path / "tenantwatch.yaml"
    rules.write_text("tenant_tables: {orders: organization_id}\ndiscover: false\n", encoding="utf-8")

    # The README's old words: the SQLAlchemy extra alone. No distro, so no SDK: a WARNING says what to install.
    installed = _pip(
        python, "install", "-q", "--no-compile", "--find-links", str(wheels), "tenantwatch[sqlalchemy]", timeout=left()
    )
    assert installed.returncode == 0, installed.stderr
    bare = _instrumented(venv, app, rules, timeout=left())
    assert bare.returncode == 0, bare.stderr
    assert "APP 2" in bare.stdout
    assert NO_SDK_WARNING in bare.stderr
    assert "tenantwatch[auto]" in bare.stderr

    # One documented install for zero-code mode: resolves with the pins, and the finding shows on the console.
    installed = _pip(
        python, "install", "-q", "--no-compile", "--find-links", str(wheels), "tenantwatch[auto]", timeout=left()
    )
    assert installed.returncode == 0, installed.stderr
    check = _pip(python, "check", timeout=left())
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No broken requirements found" in check.stdout
    done = _instrumented(venv, app, rules, timeout=left())
    assert done.returncode == 0, done.stderr
    assert "APP 2" in done.stdout
    assert NO_SDK_WARNING not in done.stderr
    spans = [o for o in json_objects(done.stdout) if "attributes" in o and "context" in o]
    (unfiltered,) = [s for s in spans if s["attributes"].get(A.DB_STATEMENT) == "SELECT id, total FROM orders"]
    assert "missing_tenant_filter" in unfiltered["attributes"][A.FINDINGS]
    assert unfiltered["attributes"][A.TENANT_ID] == "1"
    assert any(event["name"] == A.FINDING_EVENT for event in unfiltered["events"])
    print(f"wheel zero-code story in {time.monotonic() - started:.1f}s")
