"""Pattern sets a user configures, compiled once and matched in linear time: the test-data patterns.

:class:`TestDataPatterns` says how a value matches a set of test-data patterns and how a match is masked: the
instrumentation scans written values with it (``tenantwatch.instrumentation._test_data``) and the ``test_data``
rule (``tenantwatch.rules.test_data``, which holds the defaults and the settings) finds a mask's pattern again to
suggest a cleanup.

Every pattern is compiled by RE2 (:func:`compile_linear`), never by :mod:`re`.

Python's :mod:`re` backtracks: ``\\b[\\w.-]+\\.test\\b`` takes ~37 ms on one 4 KB value and grows with the square of
its length. RE2 (``google-re2``) runs in time linear in the input for any pattern, and so refuses what needs
backtracking (backreferences ``\\1``, lookaround ``(?=``/``(?!``/``(?<=``/``(?<!``, possessive quantifiers, atomic
groups, ``\\Z``). Syntax: https://github.com/google/re2/wiki/Syntax. Notable differences from :mod:`re`: ``\\w``,
``\\d``, ``\\s`` and ``\\b`` are ASCII-only; ``(?i)`` folds Unicode case.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import Any

import re2

__all__ = ["MASK", "LinearPattern", "PatternError", "TestDataPatterns", "compile_linear", "fixed_part"]

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


MASK = "***"
"""What stands for the part of a value that is not the pattern's fixed text."""


def fixed_part(pattern: str) -> str:
    """The longest run of literal characters at the top level of ``pattern`` (``@example.`` for ``@example\\.``,
    ``.test`` for ``\\b[\\w.-]+\\.test\\b``), or ``""`` when it has none (an alternation, classes only, ...).

    This is all of a matched value a mask keeps: text the pattern itself spells out.
    """
    try:
        parser: Any = importlib.import_module("re._parser")  # the standard library's regex parser (Python >= 3.11)
        parsed = parser.parse(pattern)
        literal_op = parser.LITERAL
    except Exception:
        return ""
    best: list[str] = []
    run: list[str] = []
    for op, argument in parsed:
        if op is literal_op:
            run.append(chr(argument))
            continue
        if len(run) > len(best):
            best = run
        run = []
    if len(run) > len(best):
        best = run
    return "".join(best)


def _ignores_case(pattern: str) -> bool:
    """Whether ``pattern`` matches case-insensitively (``(?i)``); ``True`` when Python's parser cannot tell, which
    only makes the substring pre-check case-fold (still a necessary condition for a match)."""
    try:
        return bool(re.compile(pattern).flags & re.IGNORECASE)  # compiled, never matched: no backtracking
    except re.error:
        return True


@dataclass(frozen=True, slots=True)
class _Pattern:
    source: str
    regex: LinearPattern
    """Compiled by RE2: linear time in the value's length, whatever the pattern (see :func:`compile_linear`)."""
    fixed: str
    fixed_lower: str
    needle: str
    """What every match contains (the fixed part, case-folded for case-insensitive patterns)."""
    ignore_case: bool


class TestDataPatterns:
    """A set of test-data patterns, compiled once: matching, masking, and finding a mask's pattern again. The
    settings' set: :func:`tenantwatch.rules.test_data.patterns_for` (cached per settings object)."""

    __slots__ = ("patterns",)
    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, patterns: tuple[str, ...]) -> None:
        compiled = []
        for source in patterns:
            fixed = fixed_part(source)
            regex = compile_linear(source)
            ignore_case = _ignores_case(source)
            needle = fixed.casefold() if ignore_case else fixed
            compiled.append(_Pattern(source, regex, fixed, fixed.lower(), needle, ignore_case))
        self.patterns: tuple[_Pattern, ...] = tuple(compiled)

    def search(self, text: str) -> bool:
        """Whether any pattern matches somewhere in ``text``.

        A pattern's fixed part is in every match, so a substring test (case-folded for ``(?i)`` patterns) rules most
        texts out before the regular expression runs. The match itself is RE2's, linear in ``text``."""
        folded: str | None = None
        for pattern in self.patterns:
            needle = pattern.needle
            if needle:
                if pattern.ignore_case:
                    if folded is None:
                        folded = text.casefold()
                    if needle not in folded:
                        continue
                elif needle not in text:
                    continue
            if pattern.regex.search(text) is not None:
                return True
        return False

    def mask(self, value: str) -> str | None:
        """The masked form of ``value`` if a pattern matches it (``alice@example.com`` -> ``***@example.***``), else
        ``None``. The mask holds the matching pattern's fixed part and ``***`` for any text around it."""
        for pattern in self.patterns:
            match = pattern.regex.search(value)
            if match is None:
                continue
            if not pattern.fixed:
                return MASK
            found = value.lower().find(pattern.fixed_lower, match.start(), max(match.end(), match.start() + 1))
            if found < 0:
                return MASK
            before = MASK if found > 0 else ""
            after = MASK if found + len(pattern.fixed) < len(value) else ""
            return f"{before}{pattern.fixed}{after}"
        return None

    def pattern_of(self, mask: str) -> str | None:
        """The pattern a mask was made by (the first whose fixed part it holds), ``None`` if it cannot be told."""
        lowered = mask.lower()
        for pattern in self.patterns:
            if pattern.fixed and pattern.fixed_lower in lowered:
                return pattern.source
        return None

    def without_fixed_part(self) -> tuple[str, ...]:
        """Patterns whose masks are a bare ``***`` (nothing tells them apart)."""
        return tuple(p.source for p in self.patterns if not p.fixed)
