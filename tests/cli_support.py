"""Helpers for the CLI test modules: run ``main`` with a stdin double and capture the streams."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

from tenantwatch.cli import main


class Stdin(io.StringIO):
    """stdin double: JSON lines, or an interactive terminal with nothing piped."""

    def __init__(self, text: str = "", *, tty: bool = False) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str | None = None
) -> tuple[int, str, str]:
    """``tenantwatch *argv``: (exit code, stdout, stderr). ``stdin=None`` is a terminal with nothing piped."""
    for name in [n for n in os.environ if n.startswith("TENANTWATCH_")]:  # the test controls configuration
        monkeypatch.delenv(name)
    monkeypatch.setattr("sys.stdin", Stdin(stdin or "", tty=stdin is None))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]
