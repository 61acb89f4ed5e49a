"""test_data: an INSERT or UPDATE writes values that match a test-data pattern (contamination of production data).

The instrumentation scans the values a statement writes (see :mod:`tenantwatch.instrumentation._test_data`) and
records the matches masked, as ``table.column=mask`` entries of ``tenantwatch.db.test_data``; the raw value is never
recorded. :class:`tenantwatch.core.patterns.TestDataPatterns` says how a value matches and how a match is masked
(this module says which patterns are the defaults), so the rule can tell, from a mask alone, which pattern matched
and build the cleanup statement it suggests:
``DELETE FROM users WHERE organization_id = :tenant AND email ~ '<pattern>'`` (a ``SELECT`` of the rows to review
for an UPDATE). The suggestion is built from the table, the column and the *pattern*, never from the value, and
tenantwatch never executes it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from tenantwatch.core.findings import Finding
from tenantwatch.core.patterns import TestDataPatterns, compile_linear
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["DEFAULT_TEST_DATA_PATTERNS", "RULE", "SUGGESTION_HEADER", "TestData", "TestDataSettings", "patterns_for"]

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


SUGGESTION_HEADER = "-- suggested cleanup: review before running; tenantwatch never executes it"
"""First line of every ``test_data`` suggestion."""

_MAX_ENTRIES_SHOWN = 5


_cache: tuple[Settings, TestDataPatterns] | None = None


def patterns_for(settings: Settings) -> TestDataPatterns:
    """The test-data patterns ``settings`` configures (``rules.test_data.patterns``, else the defaults), compiled
    once per settings object."""
    global _cache  # noqa: PLW0603 - a one-entry cache keyed by identity; the tuple swap is atomic
    cached = _cache
    if cached is not None and cached[0] is settings:
        return cached[1]
    found = TestDataPatterns(settings.rules.test_data.patterns or DEFAULT_TEST_DATA_PATTERNS)
    _cache = (settings, found)
    return found


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
        needs=("test_data",),
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
