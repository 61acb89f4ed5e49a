"""Small helpers several rules share: reading the facts the same way and quoting values in messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenantwatch.facts import SpanFacts

__all__ = ["analysis_unknown", "quote", "table_of_scope"]


def analysis_unknown(facts: SpanFacts) -> bool:
    """True when the statement could not be analyzed (verdict ``unknown``): filter rules do not guess."""
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
