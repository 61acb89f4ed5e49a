"""Linear-time regular expressions for patterns a user configures (test-data patterns).

Python's :mod:`re` backtracks: ``\\b[\\w.-]+\\.test\\b`` takes ~37 ms on one 4 KB value and grows with the square of
its length. RE2 (``google-re2``) runs in time linear in the input for any pattern, and so refuses what needs
backtracking (backreferences ``\\1``, lookaround ``(?=``/``(?!``/``(?<=``/``(?<!``, possessive quantifiers, atomic
groups, ``\\Z``). Syntax: https://github.com/google/re2/wiki/Syntax. Notable differences from :mod:`re`: ``\\w``,
``\\d``, ``\\s`` and ``\\b`` are ASCII-only; ``(?i)`` folds Unicode case.
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["LinearPattern", "PatternError", "compile_linear"]

LinearPattern = Any
"""A compiled RE2 pattern (``search(text)`` returns a match with ``start()``/``end()`` in characters, or ``None``)."""


class PatternError(ValueError):
    """A pattern RE2 cannot compile; the message names the pattern and says why."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error comes back as an exception; RE2 would also print it to stderr
    return options


_OPTIONS = _options()


def compile_linear(pattern: str) -> LinearPattern:
    """``pattern`` compiled by RE2; :class:`PatternError` if it uses a feature RE2 does not have."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(
            f"{pattern!r} is not a pattern tenantwatch can match in linear time: {reason} "
            "(backreferences and lookaround are not supported; see docs/processor.md)"
        ) from exc
