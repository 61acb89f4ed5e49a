"""Zero-code mode: ``opentelemetry-instrument python app.py`` tags db spans and reports findings with no change to
the application (the script below never imports tenantwatch)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from console_output import json_objects
from tenantwatch import attributes as A

APP = textwrap.dedent(
    """
    import sqlalchemy
    from opentelemetry import baggage, context

    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id integer PRIMARY KEY, organization_id integer, total integer)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 1, 10), (2, 2, 20), (3, 1, 30)")

    def list_orders():
        token = context.attach(baggage.set_baggage("tenant.id", "1"))
        try:
            with engine.connect() as conn:
                mine = conn.exec_driver_sql("SELECT id, total FROM orders WHERE organization_id = ?", (1,)).all()
                everyone = conn.exec_driver_sql("SELECT id, total FROM orders").all()
        finally:
            context.detach(token)
        print("APP", len(mine), len(everyone))

    list_orders()
    """
)

RULES = "tenant_tables: {orders: organization_id}\ndiscover: false\n"


def _run_instrumented(tmp_path: Path, rules_text: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(APP, encoding="utf-8")
    rules = tmp_path / "tenantwatch.yaml"
    rules.write_text(rules_text, encoding="utf-8")
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "zero-code-test",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "TENANTWATCH_RULES_FILE": str(rules),
        **extra_env,
    }
    command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), sys.executable, str(script)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False, cwd=tmp_path)


def test_opentelemetry_instrument_tags_db_spans(tmp_path: Path) -> None:
    done = _run_instrumented(tmp_path, RULES)
    script = tmp_path / "app.py"
    assert done.returncode == 0, done.stderr
    assert "APP 2 3" in done.stdout

    spans = [o for o in json_objects(done.stdout) if "attributes" in o and "context" in o]
    by_statement = {s["attributes"].get(A.DB_STATEMENT): s for s in spans if A.DB_STATEMENT in s["attributes"]}
    mine = by_statement["SELECT id, total FROM orders WHERE organization_id = ?"]["attributes"]
    everyone = by_statement["SELECT id, total FROM orders"]
    assert A.TENANT_ID not in mine  # attached baggage alone is a claim: no tenant without a trust decision
    assert mine[A.DB_TENANT_FILTER] == "present"
    assert mine[A.DB_TENANT_VALUES] == ["1"]
    assert mine[A.DB_RETURNED_ROWS] == 2
    assert mine[A.CODE_FUNCTION] == "list_orders"
    assert mine[A.CODE_FILEPATH] == str(script)
    assert everyone["attributes"][A.DB_TENANT_FILTER] == "missing"
    assert everyone["attributes"][A.DB_RETURNED_ROWS] == 3
    assert "missing_tenant_filter" in everyone["attributes"][A.FINDINGS]  # the processor was installed for us
    assert any(event["name"] == A.FINDING_EVENT for event in everyone["events"])
    assert "Attempting to instrument while already instrumented" not in done.stderr


def test_bad_rules_file_is_reported_at_start_up(tmp_path: Path) -> None:
    """The rules file is checked when the instrumentor loads; the error names the field. As with every OTel
    instrumentor, a failure to instrument is logged and the application still runs (untouched by tenantwatch)."""
    done = _run_instrumented(tmp_path, "rules:\n  large_result: {threshold: -1}\n")
    assert "rules.large_result.threshold" in done.stderr
    assert "Instrumenting of tenantwatch_sqlalchemy failed" in done.stderr
    assert "tenantwatch is NOT watching this process" in done.stderr  # said plainly, not only in a traceback
    assert done.returncode == 0
    assert "APP 2 3" in done.stdout
    assert A.DB_TENANT_FILTER not in done.stdout


def test_no_sdk_configured_warns_what_to_install(tmp_path: Path) -> None:
    """Nothing configured the SDK (here: the distro's configurator is switched off, as if no distro were
    installed): the application runs, and tenantwatch says why it reports nothing and what to install."""
    from tenantwatch.instrumentation.sqlalchemy import NO_SDK_WARNING

    done = _run_instrumented(tmp_path, RULES, OTEL_PYTHON_CONFIGURATOR="no-such-configurator")
    assert done.returncode == 0, done.stderr
    assert "APP 2 3" in done.stdout
    assert NO_SDK_WARNING in done.stderr
    assert "pip install 'tenantwatch[auto]'" in done.stderr
    assert A.DB_TENANT_FILTER not in done.stdout


def test_console_findings_under_opentelemetry_instrument(tmp_path: Path) -> None:
    """``TENANTWATCH_CONSOLE=1`` prints one line per finding in zero-code mode too, not only with ``configure()``."""
    done = _run_instrumented(tmp_path, RULES, TENANTWATCH_CONSOLE="1")
    assert done.returncode == 0, done.stderr
    lines = [
        line for line in done.stderr.splitlines() if line.startswith("tenantwatch: CRITICAL missing_tenant_filter")
    ]
    assert len(lines) == 1, done.stderr[-2000:]
    assert "table=orders" in lines[0]
    assert "SELECT id, total FROM orders" in lines[0]
