"""What every subcommand shares: exit codes, the usage error, and safe output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_UNANALYZED", "EXIT_USAGE", "UsageError", "or_dash", "printable"]

EXIT_OK: Final = 0
"""Success; ``explain``: no finding at or above ``--fail-on``."""
EXIT_FINDINGS: Final = 1
"""``explain``: at least one statement has a finding at or above ``--fail-on``."""
EXIT_USAGE: Final = 2
"""Bad arguments, a bad rules file, an unreachable database, or input lines that could not be read."""
EXIT_UNANALYZED: Final = 3
"""``explain``: at least one statement could not be analyzed (not SQL tenantwatch can parse, or beyond the size and
nesting bounds), so its verdict is ``unknown``: a CI gate must not pass on it."""


class UsageError(Exception):
    """A problem with the command line, the configuration or the inputs: reported on stderr, exit code 2.

    ``details`` go into the JSON error document a ``--json`` run prints on stdout (``issues``, ``file``, ...).
    """

    def __init__(self, message: str, *, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = dict(details or {})


def or_dash(values: tuple[str, ...] | list[str]) -> str:
    """``a, b`` or ``-`` for nothing, in reports."""
    return ", ".join(values) if values else "-"


def printable(text: str) -> str:
    """``text`` as it can be written to any UTF-8 stream: lone surrogates (from JSON ``\\ud800`` escapes or
    undecodable command-line bytes) become ``\\ud800`` escapes instead of a UnicodeEncodeError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
