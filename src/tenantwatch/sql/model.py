"""What statement analysis finds: plain immutable values, shared by the instrumentation, the processor and the CLI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tenantwatch.core.tenant_values import canonical

__all__ = [
    "InheritedReason",
    "ScopeVerdict",
    "StatementAnalysis",
    "TenantFilter",
    "ValueSource",
    "resolve_values",
]

TenantFilter = Literal["present", "inherited", "missing", "partial", "not_applicable", "unknown"]
"""``inherited``: no scope is ``missing`` and at least one is ``inherited`` (see :class:`ScopeVerdict`)."""

InheritedReason = Literal["fk_join", "correlated_fk", "narrowing_scope", "exists_key"]
"""Why a (scope, table) is ``inherited``: joined by equality on a declared foreign key to a table protected in the
same level (``fk_join``); correlated through such a key to a protected table of an outer level (``correlated_fk``);
a subquery that only narrows a protected level (EXISTS / IN / ANY / ALL in its filter) and returns no rows
(``narrowing_scope``); or keyed (own column, join or correlation) to a column that an ``EXISTS`` at the top of its
level's WHERE pins to a protected row (``EXISTS (SELECT 1 FROM p WHERE p.id = c.fk AND p.org_id = ?)``:
``exists_key``)."""


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
    INSERT/UPDATE/DELETE, ``read`` otherwise. ``reason`` says why in a few words, for ``tenantwatch explain``;
    ``inherited_by`` is set exactly when ``verdict == "inherited"``.
    """

    scope: str
    table: str
    role: Literal["read", "write"]
    verdict: Literal["present", "inherited", "missing"]
    reason: str = ""
    inherited_by: InheritedReason | None = None
    key: str | None = None
    """With a tenant hierarchy (``tenant_keys``): the key whose filter protects a ``present`` table (``team`` for
    ``users.team_id IN (...)``); ``None`` otherwise."""


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
    key_filter_values: tuple[tuple[str, tuple[ValueSource, ...]], ...] = ()
    """With a tenant hierarchy: per finer key (``team``), the sources of the values its columns are compared with;
    ``filter_values`` holds the root key's, the ones ``cross_tenant`` compares with ``tenant.id``."""
    key_written_values: tuple[tuple[str, tuple[ValueSource, ...]], ...] = ()
    """With a tenant hierarchy: per finer key, the sources of the values an INSERT or UPDATE writes to its columns."""
    keyed: tuple[str, ...] = ()
    """``scope:table`` of each ``missing`` read scope that a primary or unique key pins to one row: a lookup by key
    (:mod:`tenantwatch.sql.keyed`)."""

    @property
    def is_write(self) -> bool:
        return self.operation in ("INSERT", "UPDATE", "DELETE")

    @property
    def tenant_filter(self) -> TenantFilter:
        if self.error is not None:
            return "unknown"
        if not self.scopes:
            return "not_applicable"
        missing = sum(1 for s in self.scopes if s.verdict == "missing")
        if missing == 0:
            return "present" if all(s.verdict == "present" for s in self.scopes) else "inherited"
        return "missing" if missing == len(self.scopes) else "partial"

    @property
    def unfiltered_reads(self) -> tuple[str, ...]:
        """Read scopes without a tenant filter, as ``scope:table``."""
        return tuple(f"{s.scope}:{s.table}" for s in self.scopes if s.role == "read" and s.verdict == "missing")

    @property
    def inherited_reads(self) -> tuple[str, ...]:
        """Read scopes whose table inherits its tenant from elsewhere, as ``scope:table:reason``."""
        return tuple(f"{s.scope}:{s.table}:{s.inherited_by}" for s in self.scopes if s.verdict == "inherited")

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
