"""What the database commands say when something is off, as a newcomer met it (trial of integ4): a ``password=``
query parameter never shown, a missing driver named by its extra, a role that cannot see the catalog, lint options
given with ``--compare``, and ``--export`` to a collector that answers 404."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from audit_schemas import GOOD, OWNER_ROLE, as_user, create_database

from cli_support import run_cli

SECRET = "S3cretAdm1n"


@pytest.fixture(scope="module")
def good_url(postgres_url: str) -> str:
    return create_database(postgres_url, "tw_audit_msg_good", GOOD)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answering(status: int, content_type: str | None, body: bytes) -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            paths.append(self.path)
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


@pytest.fixture
def not_found() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server answering 404 to everything (a port that is not an OTLP receiver); yields (base URL, paths)."""
    yield from _answering(404, None, b"")


@pytest.fixture
def web_page() -> Iterator[tuple[str, list[str]]]:
    """A web UI that answers 200 with an HTML page to any POST (Jaeger's UI port)."""
    yield from _answering(200, "text/html; charset=utf-8", b"<!doctype html><title>UI</title>")


@pytest.mark.postgres
def test_export_to_a_web_page_answering_200_is_not_a_success(
    capsys: Any, monkeypatch: Any, good_url: str, web_page: tuple[str, list[str]]
) -> None:
    address, paths = web_page
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{address}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    code, _, err = run_cli(capsys, monkeypatch, "audit", good_url, "--export", "--fail-on", "never")
    assert code == 2 and paths == ["/v1/metrics"]
    assert "answered HTTP 200 with text/html, not an OTLP response" in err and "Nothing was received" in err


@pytest.mark.postgres
def test_a_password_query_parameter_is_never_shown(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    url = f"{good_url}?password={SECRET}"  # the test server trusts loopback: any password connects
    code, out, err = run_cli(capsys, monkeypatch, "audit", url, "--fail-on", "never")
    assert code == 0, err
    assert "?password=***" in out
    assert SECRET not in out + err
    code, out, err = run_cli(capsys, monkeypatch, "audit", url, "--json", "--fail-on", "never")
    assert json.loads(out)["url"].endswith("/tw_audit_msg_good?password=***")
    assert SECRET not in out + err
    nodb = good_url.rsplit("/", 1)[0] + f"/nodb?password={SECRET}"
    code, out, err = run_cli(capsys, monkeypatch, "audit", nodb)
    assert code == 2
    assert err.startswith("tenantwatch audit: cannot read the catalog of postgresql")
    assert "/nodb?password=***: " in err
    assert SECRET not in out + err


@pytest.mark.postgres
def test_export_to_a_port_answering_404_says_so_without_the_password(
    capsys: Any, monkeypatch: Any, good_url: str, not_found: tuple[str, list[str]]
) -> None:
    address, paths = not_found
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://u:HttpPw@{address}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    code, _, err = run_cli(capsys, monkeypatch, "audit", good_url, "--export", "--fail-on", "never")
    assert code == 2
    assert paths == ["/v1/metrics"]
    assert err == (
        f"tenantwatch audit: --export: the collector at http://u:***@{address}/v1/metrics answered HTTP 404 for "
        "/v1/metrics (no metrics pipeline on that path?)\n"
    )


@pytest.mark.postgres
def test_export_to_a_closed_port_asks_whether_the_collector_runs(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://u:HttpPw@127.0.0.1:{_free_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    code, _, err = run_cli(capsys, monkeypatch, "audit", good_url, "--export", "--fail-on", "never")
    assert code == 2
    assert err.startswith("tenantwatch audit: --export: exporting to http://u:***@127.0.0.1:")
    assert "is the collector running?)" in err
    assert "HttpPw" not in err


@pytest.mark.postgres
def test_a_role_that_cannot_see_the_columns_is_named(capsys: Any, monkeypatch: Any, good_url: str) -> None:
    """The owner role of the fixtures has no privilege on GOOD's tables: information_schema hides their columns."""
    code, out, err = run_cli(capsys, monkeypatch, "audit", as_user(good_url, OWNER_ROLE), "--json")
    assert code == 2
    assert f"role {OWNER_ROLE} cannot see the columns of 5 tables: grant SELECT or connect as the owner" in err
    assert "pass --config" not in err
    assert json.loads(out)["hidden_tables"] == 5


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--role", "app"], "--role goes"),
        (["--config", "rules.yaml"], "--config goes"),
        (["--tenant-column", "org_id"], "--tenant-column goes"),
        (["--fail-on", "warn"], "--fail-on goes"),
        (["--export"], "--export goes"),
        (["--role", "app", "--export"], "--role, --export go"),
    ],
)
def test_compare_refuses_the_lint_options(capsys: Any, monkeypatch: Any, options: list[str], named: str) -> None:
    a, b = "postgresql+psycopg://u@127.0.0.1:1/a", "postgresql+psycopg://u@127.0.0.1:1/b"
    code, _, err = run_cli(capsys, monkeypatch, "audit", "--compare", a, b, *options)
    assert code == 2
    assert err.startswith(f"tenantwatch audit: {named} with the lints (DATABASE_URL), not with --compare")


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["audit", "postgresql+psycopg://u@127.0.0.1:1/db"], "DATABASE_URL: postgresql+psycopg URLs need psycopg: "),
        (["init", "--database-url", "postgresql+psycopg://u@127.0.0.1:1/db"], "--database-url: postgresql+psycopg "),
        (["explain", "SELECT 1", "--database-url", "postgresql+psycopg://u@127.0.0.1:1/db"], "URLs need psycopg: "),
        (["audit", "--compare", "postgresql+psycopg://u@h:1/a", "postgresql+psycopg://u@h:1/b"], "need psycopg: "),
    ],
)
def test_a_missing_driver_names_its_extra(capsys: Any, monkeypatch: Any, argv: list[str], shown: str) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg -> ModuleNotFoundError, as without it
    code, _, err = run_cli(capsys, monkeypatch, *argv)
    assert code == 2
    assert shown in err
    assert "pip install 'tenantwatch[psycopg]'" in err
    assert "No module named" not in err


def test_a_plain_postgresql_url_names_psycopg2(capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    code, _, err = run_cli(capsys, monkeypatch, "audit", "postgresql://u@127.0.0.1:1/db")
    assert code == 2
    assert err == (
        "tenantwatch audit: DATABASE_URL: postgresql URLs need psycopg2: pip install 'tenantwatch[psycopg2]' "
        "(or write postgresql+psycopg:// and pip install 'tenantwatch[psycopg]')\n"
    )
