"""Run the Go build scripts (collector-config/build-*.sh) for the end-to-end tests, with their progress visible.

A cold build runs for minutes. The scripts print a line per step with its duration on stderr; this module passes each
line to pytest's terminal as it arrives (output capturing is suspended for the line), so ``pytest -q`` shows what the
first e2e test is waiting for instead of sitting silent. The binary's path is the last line of the script's stdout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest

BUILD_TIMEOUT_SECONDS = 1800


def terminal_line_writer(config: pytest.Config) -> Callable[[str], None]:
    """A function writing one line to the terminal of this pytest run, past output capturing."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        with capman.global_and_fixture_disabled() if capman is not None else nullcontext():
            if reporter is not None:
                writer = getattr(reporter, "_tw", None)  # `pytest -q` writes its dots without ending the line
                if writer is not None and writer.width_of_current_line:
                    reporter.write("\n")
                reporter.write_line(line)
                reporter.flush()
            elif sys.__stderr__ is not None:  # -p no:terminal: the process's own stderr
                sys.__stderr__.write(line + "\n")
                sys.__stderr__.flush()

    return write


def run_build(script: Path, write_line: Callable[[str], None], *, timeout: float = BUILD_TIMEOUT_SECONDS) -> Path:
    """Run a build script, stream its stderr line by line to ``write_line``, return the binary it printed.

    Fails the test (``pytest.fail``) with the script's last output when it exits non-zero or runs past ``timeout``.
    """
    proc = subprocess.Popen(
        ["bash", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a timeout stops the whole build (go, compile workers), not only bash
    )
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        os.killpg(proc.pid, signal.SIGKILL)

    watchdog = threading.Timer(timeout, stop)
    watchdog.start()
    tail: list[str] = []
    try:
        assert proc.stderr is not None and proc.stdout is not None
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            tail = [*tail[-99:], line]
            write_line(line)
        stdout = proc.stdout.read()
        returncode = proc.wait()
    finally:
        watchdog.cancel()
    if timed_out.is_set():
        pytest.fail(f"{script.name} did not finish within {timeout:.0f} s:\n" + "\n".join(tail[-40:]))
    if returncode != 0:
        pytest.fail(f"{script.name} failed ({returncode}):\n" + "\n".join(tail[-40:]))
    lines = stdout.strip().splitlines()
    assert lines, f"{script.name} printed no binary path"
    binary = Path(lines[-1])
    assert binary.is_file(), f"{script.name} printed {binary}, which is not a file"
    return binary
