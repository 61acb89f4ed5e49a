"""Row tenant inspection: whose rows did a read without a direct tenant filter actually return?

For a ``SELECT`` with a tenant table read without a direct tenant filter (verdict ``missing``, a lookup by key
included, or ``inherited``), with a tenant in context, the rows the application fetches (counted by :mod:`._rows`
at the ``CursorResult`` fetch entry points) pass through a :class:`RowTenants` on their way out: the tenant columns
of those tables are compared with the context tenant (:func:`tenantwatch.core.row_tenants.expected_row_tenant`,
canonically), and only counts are kept, written on the db span when it ends (``tenantwatch.db.tenant_rows.*``):

* bounded: only such statements, only the tenant columns, at most ``rules.cross_tenant_read.max_rows`` rows per
  statement (later rows are counted as uninspected); nothing is buffered and the rows are handed on unchanged;
* a ``NULL`` tenant value (the null-extended side of an outer join) is no tenant's row; a row is another tenant's
  when any inspected tenant value in it differs from the context's, the context tenant's when all non-null ones
  equal it;
* with a tenant hierarchy (``tenant_keys``) every tenant-key column of such a table is inspected, each compared with
  the context's value of its own key (:func:`key_columns`: ``projects.organization_id`` with the organization,
  ``projects.team_id`` with the team, and a key's root table by its own key column, ``teams.id`` with the team); a
  key the context holds no value for is not compared; the keys compared and the keys that differed are recorded
  (``tenant_rows.keys`` / ``tenant_rows.other_keys``). Without a hierarchy a table has one tenant column, as before;
* never raises: a row it cannot read switches the inspection off for that result (no counts are recorded);
* except under enforce mode's observed enforcement of a lookup by key (``RowTenants.enforce``, set by
  :mod:`._listeners`): there a row of another tenant, a row past ``max_rows`` or a row it cannot read raises
  :class:`~tenantwatch.instrumentation.TenantIsolationError` from the fetch, before the application receives it
  (a row whose tenant columns are all ``NULL`` is no tenant's and passes, as it counts for no tenant above).

Which result column is which table's tenant column (:func:`tenant_columns`): for SQLAlchemy Core and ORM statements,
the compiled statement's result columns, whose ``Column`` objects know their table (through aliases and derived
tables: ``anon_1.notes_organization_id`` is ``notes.organization_id``); cached on the compiled object. For
``text()`` and driver SQL, ``cursor.description`` names: a column named like the tenant column of exactly one tenant
table of the statement, appearing once in the result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.core.tenant_values import canonical

__all__ = ["InspectionPlan", "RowTenants", "TenantColumn", "key_columns", "tenant_columns", "unfiltered_tables"]

logger = logging.getLogger(__name__)

TenantColumn = tuple[int, str, str, str | None]
"""(position in the result row, table, tenant column, its tenant key: ``None`` without a tenant hierarchy)."""

ColumnsOf = Callable[[str], Mapping[str, str | None]]
"""A table's tenant-key columns, each with its tenant key (:func:`key_columns`); empty for other tables."""

_CACHE_ATTR = "_tenantwatch_tenant_columns"
"""Attribute on a SQLAlchemy compiled statement: ``(tables version, inspected tables, mapping)``."""

_MEMO_SIZE = 256
"""Distinct raw tenant values whose comparison is remembered per result."""


class InspectionPlan:
    """Which positions of a result row to compare, for which table and tenant column (computed once per compiled
    statement or cursor description)."""

    __slots__ = ("columns", "keys", "names", "positions", "tables")

    def __init__(self, columns: Sequence[TenantColumn]) -> None:
        self.columns = tuple(columns)
        self.positions = tuple((position, index) for index, (position, _, _, _) in enumerate(columns))
        self.tables = tuple(table for _, table, _, _ in columns)
        self.names = tuple(column for _, _, column, _ in columns)
        self.keys = tuple(key for _, _, _, key in columns)
        """The tenant key of each column (all ``None`` without a tenant hierarchy)."""


class RowTenants:
    """Counts, for one result, the rows of the context tenant and of other tenants (see the module docstring)."""

    __slots__ = ("broken", "columns", "enforce", "expected", "inspected", "key_order", "keys", "max_rows", "memo",
                 "other", "other_keys", "other_tables", "own", "tables", "uninspected")  # fmt: skip

    def __init__(
        self,
        plan: InspectionPlan,
        expected: tuple[str | None, ...],
        max_rows: int,
        key_order: tuple[str, ...] = (),
    ) -> None:
        # A column whose key the context holds no value for is not compared (with one tenant key: none such).
        compared = plan.positions if None not in expected else tuple(p for p in plan.positions if expected[p[1]])
        self.columns = compared
        self.tables = plan.tables
        self.keys = plan.keys
        self.key_order = key_order
        """The tenant keys, root first (empty without a hierarchy): the order the keys are recorded in."""
        self.expected = expected
        """The canonical context value per plan column (same order as ``plan.columns``; ``None``: not compared)."""
        self.max_rows = max_rows
        self.inspected = 0
        self.own = 0
        self.other = 0
        self.uninspected = 0
        self.other_tables: set[str] = set()
        self.other_keys: set[str | None] = set()
        self.memo: dict[tuple[int, Any], bool] = {}
        self.broken = False
        self.enforce: Callable[[RowTenants], None] | None = None
        """Enforce mode's observed enforcement of a lookup by key: called (and raises) before a row of another
        tenant, a row past ``max_rows`` or a row it cannot read reaches the application."""

    def row(self, row: Any) -> None:
        """One row on its way to the application (a DB-API row, read by position)."""
        if self.inspected >= self.max_rows:
            self.uninspected += 1
            if self.enforce is not None:
                self.enforce(self)  # a row nobody compared must not pass
            return
        if self.broken:
            if self.enforce is not None:
                self.enforce(self)
            return
        try:
            other = self._judge(row)
        except Exception:  # a row shape we cannot read: no counts rather than wrong ones
            self.broken = True
            logger.debug("tenantwatch: cannot inspect the tenant values of a row", exc_info=True)
            other = True  # under enforcement, a row it cannot read is stopped
        if other and self.enforce is not None:
            self.enforce(self)

    def rows(self, rows: Iterable[Any]) -> None:
        for row in rows:
            self.row(row)

    def _judge(self, row: Any) -> bool:
        memo = self.memo
        seen = False
        other = False
        for position, index in self.columns:
            value = row[position]
            if value is None:
                continue
            seen = True
            key = (index, value)
            same = memo.get(key)
            if same is None:
                same = canonical(value) == self.expected[index]
                if len(memo) < _MEMO_SIZE:
                    memo[key] = same
            if not same:
                other = True
                self.other_tables.add(self.tables[index])
                self.other_keys.add(self.keys[index])
        self.inspected += 1
        if other:
            self.other += 1
        elif seen:
            self.own += 1
        return other

    def record(self, attributes: dict[str, Any]) -> None:
        """The counts, into the attributes about to be set on the db span."""
        if self.broken:
            return
        attributes[A.DB_TENANT_ROWS_INSPECTED] = self.inspected
        attributes[A.DB_TENANT_ROWS_OWN] = self.own
        attributes[A.DB_TENANT_ROWS_OTHER] = self.other
        attributes[A.DB_TENANT_ROWS_UNINSPECTED] = self.uninspected
        attributes[A.DB_TENANT_ROWS_TABLES] = tuple(dict.fromkeys(self.tables))
        if self.other_tables:
            attributes[A.DB_TENANT_ROWS_OTHER_TABLES] = tuple(
                t for t in dict.fromkeys(self.tables) if t in self.other_tables
            )
        if self.key_order:  # a tenant hierarchy: which keys were compared, which differed
            compared = {self.keys[index] for _, index in self.columns}
            attributes[A.DB_TENANT_ROWS_KEYS] = tuple(k for k in self.key_order if k in compared)
            if self.other_keys:
                attributes[A.DB_TENANT_ROWS_OTHER_KEYS] = tuple(k for k in self.key_order if k in self.other_keys)


_unfiltered_memo: dict[tuple[Any, Any], frozenset[str]] = {}
_MAX_MEMO = 4096


def unfiltered_tables(attributes: dict[str, Any]) -> frozenset[str]:
    """The tables a statement reads without a direct tenant filter (``missing`` or ``inherited`` read scopes)."""
    key = (attributes.get(A.DB_UNFILTERED), attributes.get(A.DB_INHERITED))
    found = _unfiltered_memo.get(key)
    if found is not None:
        return found
    tables: set[str] = set()
    for item in key[0] or ():
        tables.add(item.rpartition(":")[2])
    for item in key[1] or ():
        tables.add(item.rpartition(":")[0].rpartition(":")[2])
    found = frozenset(tables)
    if len(_unfiltered_memo) >= _MAX_MEMO:
        _unfiltered_memo.clear()
    _unfiltered_memo[key] = found
    return found


def key_columns(tables: Any, table: str) -> dict[str, str | None]:
    """The tenant-key columns of ``table`` with their tenant key (``TenantTables``): its tenant column, and with a
    tenant hierarchy every further key column (``team_id``; ``id`` of a key's root table), each with its key's name
    (the root key's too); without a hierarchy the one tenant column, key ``None``."""
    column = tables.column_for(table)
    if column is None:
        return {}
    if not tables.hierarchical:
        return {column: None}
    root = tables.root_key
    found: dict[str, str | None] = {column: tables.key_of(table, column) or root}
    for other in tables.other_columns(table):
        found.setdefault(other, tables.key_of(table, other) or root)
    return found


def tenant_columns(
    context: Any,
    cursor: Any,
    wanted: frozenset[str],
    *,
    columns_of: ColumnsOf,
    version: int,
    statement_tables: Sequence[str],
) -> InspectionPlan | None:
    """The result columns that are tenant columns of the ``wanted`` tables (see the module docstring); ``None`` when
    there is none."""
    compiled = getattr(context, "compiled", None)
    entries = getattr(compiled, "_result_columns", None) if compiled is not None else None
    if entries and not getattr(compiled, "_textual_ordered_columns", False):
        cached = compiled.__dict__.get(_CACHE_ATTR)
        if cached is not None and cached[0] == version and cached[1] == wanted:
            return cached[2]  # type: ignore[no-any-return]
        columns = _from_compiled(entries, wanted, columns_of)
        found = InspectionPlan(columns) if columns else None
        compiled.__dict__[_CACHE_ATTR] = (version, wanted, found)
        return found
    columns = _from_description(getattr(cursor, "description", None), wanted, columns_of, statement_tables)
    return InspectionPlan(columns) if columns else None


def _from_compiled(entries: Sequence[Any], wanted: frozenset[str], columns_of: ColumnsOf) -> tuple[TenantColumn, ...]:
    found: list[TenantColumn] = []
    for position, entry in enumerate(entries):
        objects = entry[2] if len(entry) > 2 else ()
        for obj in objects:
            base = _base_table_column(obj)
            if base is None:
                continue
            table, column = base
            if table not in wanted:
                continue
            keys = columns_of(table)
            if column in keys:
                found.append((position, table, column, keys[column]))
                break
    return tuple(found)


def _base_table_column(obj: Any) -> tuple[str, str] | None:
    """``(table, column)`` of a result column object that is one table's column (through aliases and subqueries)."""
    bases = getattr(obj, "base_columns", None)
    if not bases or len(bases) != 1:
        return None
    base = next(iter(bases))
    table = getattr(base, "table", None)
    name = getattr(table, "name", None)
    column = getattr(base, "name", None)
    if not isinstance(name, str) or not isinstance(column, str) or not hasattr(table, "schema"):
        return None
    return name.lower(), column.lower()


def _from_description(
    description: Any, wanted: frozenset[str], columns_of: ColumnsOf, statement_tables: Sequence[str]
) -> tuple[TenantColumn, ...]:
    if not description:
        return ()
    names = [str(item[0]).lower() for item in description]
    owners: dict[str, list[tuple[str, str | None]]] = {}
    for table in dict.fromkeys(statement_tables):
        for column, key in columns_of(table).items():
            owners.setdefault(column, []).append((table, key))
    found: list[TenantColumn] = []
    for column, tables in owners.items():
        if len(tables) != 1 or tables[0][0] not in wanted or names.count(column) != 1:
            continue  # two tables share the name, or the result has it twice: ambiguous
        found.append((names.index(column), tables[0][0], column, tables[0][1]))
    return tuple(found)
