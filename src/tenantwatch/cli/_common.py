"""What every subcommand shares: exit codes and the usage error."""

from __future__ import annotations

from typing import Final

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE", "UsageError", "or_dash"]

EXIT_OK: Final = 0
"""Success; ``explain``: no finding at or above ``--fail-on``."""
EXIT_FINDINGS: Final = 1
"""``explain``: at least one statement has a finding at or above ``--fail-on``."""
EXIT_USAGE: Final = 2
"""Bad arguments, a bad rules file, an unreachable database, or input lines that could not be read."""


class UsageError(Exception):
    """A problem with the command line, the configuration or the inputs: reported on stderr, exit code 2."""


def or_dash(values: tuple[str, ...] | list[str]) -> str:
    """``a, b`` or ``-`` for nothing, in reports."""
    return ", ".join(values) if values else "-"
