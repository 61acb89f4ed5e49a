"""Start and stop the real binaries of the collector pipeline on free loopback ports, for the end-to-end tests.

Every process writes its log to a file; every wait polls with a bound and, on timeout, raises with the tail of the
log of the process that did not come up. Processes are always terminated by :meth:`Process.stop`.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "collector-config"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this process handed out before: the kernel may give the same ephemeral port to
    two calls in a row once the first socket is closed, and two components of one stack then collide on bind."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_until(
    what: str, check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.5, log: Path | None = None
) -> Any:
    """Poll ``check`` until it returns a truthy value; raise ``TimeoutError`` naming ``what`` (with the log tail)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:  # the thing polled is not up yet
            last = exc
        else:
            if result:
                return result
        time.sleep(interval)
    tail = ""
    if log is not None and log.exists():
        tail = "\n--- log tail ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last!r}){tail}")


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return bytes(response.read())


def http_json(url: str, timeout: float = 5.0) -> Any:
    return json.loads(http_get(url, timeout))


@dataclass
class Process:
    """A started binary with its log file."""

    name: str
    argv: list[str]
    log: Path
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        environ = {**os.environ, **self.env}
        handle = self.log.open("wb")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=str(self.log.parent),
        )
        handle.close()
        return self

    def wait_http(self, url: str, *, timeout: float = 60.0) -> None:
        def up() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}")
            http_get(url, timeout=2.0)
            return True

        wait_until(f"{self.name} at {url}", up, timeout=timeout, log=self.log)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A loopback HTTP server that records every POST (gunzipped) and answers 200, or a scripted status."""

    def __init__(self, name: str, *, reject_first: Mapping[str, int] | None = None) -> None:
        self.name = name
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._reject_first = dict(reject_first or {})
        """Path suffix -> status: the first request to a matching path gets that status (exporter failure tests)."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                status = owner._record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"receiver-{name}", daemon=True)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            for suffix, status in list(self._reject_first.items()):
                if path.endswith(suffix):
                    del self._reject_first[suffix]
                    return status
            self.requests.append(Received(path, headers, body))
        return 200

    def received(self, suffix: str = "") -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
