"""Collector down or black-holed: the application finishes its work and exits promptly, ``force_flush`` keeps its
timeout and says False, one warning names the endpoint, and every undelivered item is counted.

Each case runs a real process (2,000 SQLite queries through ``tenantwatch.configure()`` with the OTLP exporters
pointed at the dead endpoint) and measures from its last statement to its exit.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console_output import json_objects
from tenantwatch import attributes as A

EXIT_BOUND_SECONDS = 2.0
"""What the user was promised: the process is gone this long after its last statement ..."""
SLACK_SECONDS = 0.75
"""... plus interpreter teardown on a loaded two-core machine."""

APP = textwrap.dedent(
    """
    import os, sys, time
    import sqlalchemy
    import tenantwatch
    from tenantwatch import tenant_context

    handle = tenantwatch.configure(service_name="outage-test")
    engine = sqlalchemy.create_engine("sqlite://")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id integer PRIMARY KEY, organization_id integer, total integer)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 1, 10), (2, 2, 20)")
    with tenant_context("1"), engine.connect() as conn:
        for i in range(2000):
            if i % 2:
                conn.exec_driver_sql("SELECT id FROM orders").all()
            else:
                conn.exec_driver_sql("SELECT id FROM orders WHERE organization_id = ?", (1,)).all()
    if os.environ.get("OUTAGE_FLUSH"):
        started = time.monotonic()
        delivered = handle.force_flush(5000)
        print("FLUSH", delivered, round(time.monotonic() - started, 3), file=sys.stderr)
    print("LAST", time.time(), file=sys.stderr, flush=True)
    """
)

RULES = "tenant_tables: {orders: organization_id}\\ndiscover: false\\n"


class _BlackHole:
    """A loopback listener that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[_BlackHole]:
    hole = _BlackHole()
    yield hole
    hole.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dropped(stdout: str) -> dict[str, int]:
    """The last value of ``tenantwatch.export.dropped`` per signal, as the console metric exporter printed it."""
    totals: dict[str, int] = {}
    for document in json_objects(stdout):
        for resource in document.get("resource_metrics", ()):
            for scope in resource.get("scope_metrics", ()):
                for metric in scope.get("metrics", ()):
                    if metric.get("name") != A.METRIC_EXPORT_DROPPED:
                        continue
                    per_signal: dict[str, int] = {}
                    for point in metric["data"]["data_points"]:
                        signal = point["attributes"][A.EXPORT_SIGNAL]
                        per_signal[signal] = per_signal.get(signal, 0) + int(point["value"])
                    totals.update(per_signal)
    return totals


def _run(tmp_path: Path, endpoint: str, *, flush: bool) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "app.py"
    script.write_text(APP, encoding="utf-8")
    rules = tmp_path / "tenantwatch.yaml"
    rules.write_text(RULES.replace("\\n", "\n"), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "TENANTWATCH_"))}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRICS_EXPORTER": "otlp,console",  # the console copy shows the drop counter at exit
            "TENANTWATCH_RULES_FILE": str(rules),
        }
    )
    if flush:
        env["OUTAGE_FLUSH"] = "1"
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=90, check=False, cwd=tmp_path
    )
    ended = time.time()
    last = [line for line in done.stderr.splitlines() if line.startswith("LAST ")]
    assert done.returncode == 0, done.stderr
    assert last, done.stderr
    return done, ended - float(last[-1].split()[1])


def _assert_outage_handled(done: subprocess.CompletedProcess[str], after_last: float, endpoint: str) -> None:
    warnings = [line for line in done.stderr.splitlines() if "tenantwatch: cannot deliver telemetry to" in line]
    assert len(warnings) == 1, done.stderr
    assert endpoint in warnings[0]
    assert "Transient error" not in done.stderr  # the exporters' retry chatter is not repeated at the user
    assert "Failed to export" not in done.stderr
    assert after_last < EXIT_BOUND_SECONDS + SLACK_SECONDS, f"exited {after_last:.2f}s after the last statement"
    dropped = _dropped(done.stdout)
    assert dropped.get("traces", 0) >= 2000, dropped  # every db span (2,000 queries), none delivered
    print(f"exit {after_last:.2f}s after the last statement; dropped {dropped}")


@pytest.mark.parametrize("flush", [False, True], ids=["exit", "flush-then-exit"])
def test_collector_down_closed_port(tmp_path: Path, flush: bool) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    done, after_last = _run(tmp_path, endpoint, flush=flush)
    _assert_outage_handled(done, after_last, endpoint)
    if flush:
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("FLUSH ")]
        _, delivered, seconds = line.split()
        assert delivered == "False"
        assert float(seconds) < 5.5
        print(f"force_flush(5000) returned {delivered} in {seconds}s")


@pytest.mark.parametrize("flush", [False, True], ids=["exit", "flush-then-exit"])
def test_collector_black_holed(tmp_path: Path, black_hole: _BlackHole, flush: bool) -> None:
    endpoint = f"http://127.0.0.1:{black_hole.port}"
    done, after_last = _run(tmp_path, endpoint, flush=flush)
    _assert_outage_handled(done, after_last, endpoint)
    if flush:
        (line,) = [line for line in done.stderr.splitlines() if line.startswith("FLUSH ")]
        _, delivered, seconds = line.split()
        assert delivered == "False"
        assert float(seconds) < 5.5
        print(f"force_flush(5000) returned {delivered} in {seconds}s")
