"""What every rule is: a small immutable predicate object over (span facts, settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding, finding_fingerprint

__all__ = ["NO_FINDINGS", "Limits", "Rule", "analysis_unknown", "limits", "quote", "table_of_scope"]

NO_FINDINGS: tuple[Finding, ...] = ()


class Rule:
    """A pure rule: ``rule(facts, settings)`` returns the findings for one statement (usually none).

    Subclasses set ``id`` (one of :data:`tenantwatch.config.RULE_IDS`) and ``summary`` and implement ``__call__``.
    Rules hold no state, read nothing but their arguments, and never apply suppressions (the caller does).
    """

    __slots__ = ()

    id: ClassVar[str]
    """Rule id, as in the rules file and on the ``tenantwatch.rule`` attribute."""
    summary: ClassVar[str]
    """When the rule fires, in one line (docs, ``tenantwatch check-config``)."""

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.id}: {self.summary}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def finding(self, facts: SpanFacts, settings: Settings, message: str, *, table: str | None = None) -> Finding:
        """A finding of this rule with the configured severity and the stable fingerprint of ``facts``."""
        return Finding(
            rule=self.id,
            severity=settings.severity(self.id),
            message=message,
            fingerprint=finding_fingerprint(self.id, facts),
            table=table,
        )


def analysis_unknown(facts: SpanFacts) -> bool:
    """True when the statement could not be analyzed: filter rules do not guess."""
    return facts.analysis_error is not None or facts.tenant_filter == "unknown"


def table_of_scope(item: str) -> tuple[str, str]:
    """Split an unfiltered-read entry ``scope:table`` (scope may contain ``:``) into ``(scope, table)``."""
    scope, sep, table = item.rpartition(":")
    return (scope, table) if sep else ("main", item)


def quote(values: tuple[str, ...] | list[str], *, limit: int = 5) -> str:
    """``'a', 'b'`` (at most ``limit`` values, then ``… (+n)``) for messages."""
    shown = ", ".join(repr(v) for v in values[:limit])
    extra = len(values) - limit
    return f"{shown}, … (+{extra})" if extra > 0 else shown


@dataclass(frozen=True, slots=True)
class Limits:
    """The thresholds rules compare against, read once per settings object (settings are immutable)."""

    slow_query_ms: float
    large_result_rows: int
    large_result_per_table: dict[str, int]
    large_result_floor: int
    """The smallest row threshold of any table: at or below it, ``large_result`` cannot fire."""
    superuser_roles: frozenset[str]


_limits_cache: tuple[Settings, Limits] | None = None


def limits(settings: Settings) -> Limits:
    """:class:`Limits` of ``settings`` (a one-entry cache keyed by identity: a process runs with one settings)."""
    global _limits_cache  # noqa: PLW0603 - one-entry cache; the tuple swap is atomic
    cached = _limits_cache
    if cached is not None and cached[0] is settings:
        return cached[1]
    per_table = settings.rule("large_result").per_table
    rows = settings.large_result_threshold
    found = Limits(
        slow_query_ms=settings.slow_query_ms,
        large_result_rows=rows,
        large_result_per_table=per_table,
        large_result_floor=min((rows, *per_table.values())),
        superuser_roles=frozenset(role.lower() for role in settings.superuser_roles),
    )
    _limits_cache = (settings, found)
    return found
