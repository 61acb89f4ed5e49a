"""What statement analysis finds: plain immutable values, shared by the instrumentation, the processor and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tenantwatch.core.tenant_values import canonical

__all__ = [
    "ScopeVerdict",
    "StatementAnalysis",
    "TenantFilter",
    "ValueSource",
    "resolve_values",
]

TenantFilter = Literal["present", "missing", "partial", "not_applicable", "unknown"]


@dataclass(frozen=True, slots=True)
class ValueSource:
    """Where a tenant value comes from.

    ``kind == "param"``: a bound parameter; ``key`` is its name (``pyformat``/``named`` styles) or its 0-based
    position (``qmark``/``format``/``numeric``/``$n`` styles). ``kind == "literal"``: an inline literal; ``value``
    holds it as text.
    """

    kind: Literal["param", "literal"]
    key: str | int | None = None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class ScopeVerdict:
    """The verdict for one tenant-scoped table in one scope.

    ``scope`` names the scope: ``main``, ``cte:<name>``, ``subquery:<n>``, ``union:<n>`` (arm n of a set
    operation), ``join:<table or alias>``, ``using:<table>`` ...; ``role`` is ``write`` for the target of an
    INSERT/UPDATE/DELETE, ``read`` otherwise. ``reason`` says why in a few words, for ``tenantwatch explain``.
    """

    scope: str
    table: str
    role: Literal["read", "write"]
    verdict: Literal["present", "missing"]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StatementAnalysis:
    """Everything one statement says about tenant isolation. Cheap to share: cached by statement text."""

    operation: str
    """``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE``, ``OTHER`` (DDL, SET, ...) or ``UNKNOWN`` (not analyzed)."""
    tables: tuple[str, ...] = ()
    """Every table referenced, lower case, in order of first appearance."""
    tenant_tables: tuple[str, ...] = ()
    """The tenant-scoped ones among ``tables``."""
    scopes: tuple[ScopeVerdict, ...] = ()
    """One verdict per (scope, tenant-scoped table)."""
    filter_values: tuple[ValueSource, ...] = ()
    """Sources of the values tenant filters compare against (``= x``, ``IN (...)``)."""
    written_values: tuple[ValueSource, ...] = ()
    """Sources of the tenant values an INSERT or UPDATE writes."""
    fingerprint: str = ""
    """Stable hex fingerprint of the statement's shape (same for every literal/parameter value)."""
    error: str | None = None
    """Why the statement was not analyzed (verdict ``unknown``); ``None`` when it was."""
    main_table: str | None = field(default=None)
    """The write target, or the first table read."""

    @property
    def is_write(self) -> bool:
        return self.operation in ("INSERT", "UPDATE", "DELETE")

    @property
    def tenant_filter(self) -> TenantFilter:
        if self.error is not None:
            return "unknown"
        if not self.scopes:
            return "not_applicable"
        present = sum(1 for s in self.scopes if s.verdict == "present")
        if present == len(self.scopes):
            return "present"
        return "missing" if present == 0 else "partial"

    @property
    def unfiltered_reads(self) -> tuple[str, ...]:
        """Read scopes without a tenant filter, as ``scope:table``."""
        return tuple(f"{s.scope}:{s.table}" for s in self.scopes if s.role == "read" and s.verdict == "missing")

    @property
    def unscoped_writes(self) -> tuple[str, ...]:
        """Write targets without a tenant filter (UPDATE/DELETE) or without the tenant column (INSERT)."""
        seen: dict[str, None] = {}
        for s in self.scopes:
            if s.role == "write" and s.verdict == "missing":
                seen[s.table] = None
        return tuple(seen)


_MAX_VALUES = 64
"""At most this many tenant values are resolved per statement; an IN list is bounded like any other input."""


def _lookup(params: object, key: str | int | None) -> tuple[bool, object]:
    if key is None:
        return False, None
    if isinstance(params, Mapping):
        if key in params:
            return True, params[key]
        return False, None
    if (
        isinstance(params, Sequence)
        and not isinstance(params, str | bytes)
        and isinstance(key, int)
        and 0 <= key < len(params)
    ):
        return True, params[key]
    return False, None


def _text(value: object) -> str:
    """Text as bound; other values (a UUID, its 16 bytes, an int) as their canonical text, never ``b'...'``."""
    return value if isinstance(value, str) else canonical(value)


def _as_texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set | frozenset):
        return [_text(v) for v in value if v is not None]
    return [_text(value)]


def resolve_values(
    sources: Sequence[ValueSource],
    params: object,
    *,
    executemany: bool = False,
) -> tuple[str, ...]:
    """Resolve value sources against bound parameters into distinct tenant values, as text, in first-seen order.

    ``params`` is what the driver receives: a mapping, a sequence, or (``executemany=True``) a sequence of either.
    Expanding IN parameters (a list bound to one placeholder) yield each element. Unresolvable sources are skipped.
    """
    found: dict[str, None] = {}
    param_sets: Sequence[object]
    if executemany and isinstance(params, Sequence) and not isinstance(params, str | bytes):
        param_sets = params
    else:
        param_sets = (params,)
    for source in sources:
        if source.kind == "literal":
            if source.value is not None:
                found.setdefault(source.value, None)
            continue
        for param_set in param_sets:
            ok, value = _lookup(param_set, source.key)
            if ok:
                for text in _as_texts(value):
                    found.setdefault(text, None)
            if len(found) >= _MAX_VALUES:
                return tuple(found)
    return tuple(found)
