"""test_data: an INSERT or UPDATE writes values that match a test-data pattern (contamination of production data).

The instrumentation scans the values a statement writes (see :mod:`tenantwatch.instrumentation._test_data`) and
records the matches masked, as ``table.column=mask`` entries of ``tenantwatch.db.test_data``; the raw value is never
recorded. This module is the one place that says what test data is and how a match is masked
(:class:`TestDataPatterns`), so the rule can tell, from a mask alone, which pattern matched and build the cleanup
statement it suggests: ``DELETE FROM users WHERE organization_id = :tenant AND email ~ '<pattern>'`` (a ``SELECT``
of the rows to review for an UPDATE). The suggestion is built from the table, the column and the *pattern*, never
from the value, and tenantwatch never executes it.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator

from tenantwatch._regex import LinearPattern, compile_linear
from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = [
    "DEFAULT_TEST_DATA_PATTERNS",
    "MASK",
    "RULE",
    "SUGGESTION_HEADER",
    "TestData",
    "TestDataPatterns",
    "TestDataSettings",
    "fixed_part",
    "patterns_for",
]

DEFAULT_TEST_DATA_PATTERNS: tuple[str, ...] = (
    r"(?i)\b[\w.-]+\.test\b",
    r"(?i)@example\.",
    r"(?i)\btenant-a\b",
    r"(?i)\b550e8400-e29b-41d4-a716-",
)
"""The default patterns: ``*.test`` names, ``@example.`` addresses, ``tenant-a``, the RFC 4122 example UUID."""


class TestDataSettings(RuleSettings):
    """``rules.test_data``."""

    __test__ = False  # not a pytest test class, despite the name

    patterns: tuple[str, ...] = Field(
        default=DEFAULT_TEST_DATA_PATTERNS,
        description="regular expressions (RE2 syntax: no backreferences or lookaround) a written value must not "
        "match; an empty list means the defaults",
    )

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            compile_linear(pattern)  # RE2: linear time on any value, so no backreferences or lookaround
        return value


MASK = "***"
"""What stands for the part of a value that is not the pattern's fixed text."""

SUGGESTION_HEADER = "-- suggested cleanup: review before running; tenantwatch never executes it"
"""First line of every ``test_data`` suggestion."""

_MAX_ENTRIES_SHOWN = 5


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
    """Compiled by RE2: linear time in the value's length, whatever the pattern (see :mod:`tenantwatch._regex`)."""
    fixed: str
    fixed_lower: str
    needle: str
    """What every match contains (the fixed part, case-folded for case-insensitive patterns)."""
    ignore_case: bool


class TestDataPatterns:
    """The test-data patterns of one settings object, compiled once: matching, masking, and finding a mask's
    pattern again. Build with :meth:`for_settings` (cached per settings object)."""

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

    @classmethod
    def for_settings(cls, settings: Settings) -> TestDataPatterns:
        """The patterns ``settings`` configures (``rules.test_data.patterns``, else the defaults)."""
        global _cache  # noqa: PLW0603 - a one-entry cache keyed by identity; the tuple swap is atomic
        cached = _cache
        if cached is not None and cached[0] is settings:
            return cached[1]
        found = cls(settings.rules.test_data.patterns or DEFAULT_TEST_DATA_PATTERNS)
        _cache = (settings, found)
        return found

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


_cache: tuple[Settings, TestDataPatterns] | None = None


def patterns_for(settings: Settings) -> TestDataPatterns:
    """Shorthand for :meth:`TestDataPatterns.for_settings`."""
    return TestDataPatterns.for_settings(settings)


def _split_entry(entry: str) -> tuple[str | None, str, str]:
    """``users.email=***@example.***`` -> (``users``, ``email``, ``***@example.***``)."""
    target, _, mask = entry.partition("=")
    table, dot, column = target.rpartition(".")
    return (table if dot else None), column, mask


def _postgres_regex(pattern: str) -> str:
    """A Python pattern as a PostgreSQL regular expression, for the common constructs: ``\\b`` becomes ``\\y``
    (PostgreSQL's word boundary). ``(?i)`` at the start is understood by both."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\\b", r"\1\\y", pattern)


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class TestData(Rule):
    """Fires once per INSERT or UPDATE whose written values matched a test-data pattern (the instrumentation records
    the masked matches). The finding's ``suggestion`` is a cleanup statement for review: a ``DELETE`` of the rows an
    INSERT wrote, a ``SELECT`` of the rows an UPDATE changed, limited to the tenant when the table is tenant-scoped.
    """

    __slots__ = ()
    __test__ = False  # not a pytest test class, despite the name
    meta = RuleMeta(
        id="test_data",
        title="Test data in production",
        summary="an INSERT or UPDATE writes values matching a test-data pattern",
        severity="critical",
        categories=("data-quality",),
        remediation="Keep fixtures and seed scripts away from production databases; remove the rows with the "
        "suggested (reviewed) cleanup statement the finding carries.",
        stages=("statement",),
        settings=TestDataSettings,
        verdict="the masked matches the instrumentation's value scan recorded (`tenantwatch.db.test_data`, see "
        "`tenantwatch.instrumentation._test_data`), read with the patterns defined here",
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        entries = facts.test_data
        if not entries:
            return NO_FINDINGS
        patterns = patterns_for(settings)
        table = facts.main_table or (facts.tables[0] if facts.tables else None)
        shown = ", ".join(entries[:_MAX_ENTRIES_SHOWN])
        if len(entries) > _MAX_ENTRIES_SHOWN:
            shown += f", … (+{len(entries) - _MAX_ENTRIES_SHOWN})"
        operation = facts.operation or "statement"
        target = f" on {table}" if table else ""
        message = f"{operation}{target} writes values that look like test data: {shown}"
        finding = self.finding(facts, settings, message, table=table)
        suggestion = _suggestion(facts, settings, patterns, table)
        if suggestion is None:
            return (finding,)
        return (
            Finding(
                rule=finding.rule,
                severity=finding.severity,
                message=finding.message,
                fingerprint=finding.fingerprint,
                table=finding.table,
                suggestion=suggestion,
            ),
        )


def _suggestion(facts: SpanFacts, settings: Settings, patterns: TestDataPatterns, default_table: str | None) -> str:
    """The cleanup statements (one per table), each limited to the context tenant on tenant-scoped tables."""
    by_table: dict[str, dict[str, None]] = {}
    unknown: list[str] = []
    for entry in facts.test_data:
        table, column, mask = _split_entry(entry)
        table = table or default_table
        pattern = patterns.pattern_of(mask)
        if pattern is not None:
            pattern_sql = _postgres_regex(pattern)
        else:
            alternatives = patterns.without_fixed_part() or tuple(p.source for p in patterns.patterns)
            pattern_sql = "|".join(f"({_postgres_regex(p)})" for p in alternatives)
        if table is None or not column or column.startswith("$") or not re.fullmatch(r"[\w.]+", column):
            unknown.append(entry)
            continue
        by_table.setdefault(table, {})[f"{column} ~ {_sql_string(pattern_sql)}"] = None
    lines = [SUGGESTION_HEADER]
    tenant_tables = {t.lower() for t in facts.tenant_tables}
    guessed: list[str] = []
    for table, conditions in by_table.items():
        where = " OR ".join(conditions)
        if len(conditions) > 1:
            where = f"({where})"
        tenant_column = _tenant_column(table, settings) if table.lower() in tenant_tables else None
        if tenant_column is not None:
            if table.lower() not in settings.tenant_tables and len(settings.tenant_columns) > 1:
                guessed.append(f"-- assumed: {tenant_column} is the tenant column of {table}")
            where = f"{tenant_column} = :tenant AND {where}"
        verb = "DELETE" if facts.operation == "INSERT" else "SELECT *"
        lines.append(f"{verb} FROM {table} WHERE {where};")
    if facts.operation != "INSERT" and by_table:
        lines.insert(1, "-- the rows an UPDATE wrote test data into: review them and restore their values")
    if tenant_tables and by_table:
        lines.append(f"-- :tenant = {_sql_string(facts.tenant_id)}" if facts.tenant_id else "-- :tenant = the tenant")
    lines += guessed
    for entry in unknown:
        lines.append(f"-- {entry}: column not known; find it in the statement")
    return "\n".join(lines)


def _tenant_column(table: str, settings: Settings) -> str | None:
    explicit = settings.tenant_tables.get(table.lower())
    if explicit is not None:
        return explicit
    return settings.tenant_columns[0] if settings.tenant_columns else None


RULE = TestData()
