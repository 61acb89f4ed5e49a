"""Tenant tables ``explain`` reads off the statement itself, when nothing else declares them.

In an application, discovery learns every table with a tenant column from the ORM's MetaData and the database
catalog. ``explain`` without ``--database-url`` has neither, so a statement on ``projects`` would read as global
(``not_applicable``) even when it names ``projects.team_id``. The statement shows that column exists: a table whose
tenant column the statement names (``p.team_id`` with ``projects AS p``, ``team_id`` in a one-table statement, an
INSERT column or an UPDATE ``SET`` target) is assumed tenant-scoped by that column, as discovery would find it.
Nothing is assumed about a table whose tenant column the statement does not name: that one still reads as global,
and ``explain`` says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenantwatch.sql.tables import TenantTables

__all__ = ["AssumedTables", "named_tenant_columns"]


def _nodes(tree: object) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``{"NodeType": {...}}`` of a pglast JSON tree, iteratively (no recursion on hostile depth)."""
    stack: list[object] = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict) and key[:1].isupper():
                    yield key, item
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)


def _names(fields: list[Any]) -> list[str] | None:
    names = []
    for field in fields:
        text = field.get("String", {}).get("sval") if isinstance(field, dict) else None
        if not isinstance(text, str):
            return None  # A_Star: t.*
        names.append(text.lower())
    return names


def named_tenant_columns(sql: str, tenant_columns: tuple[str, ...]) -> dict[tuple[str | None, str], set[str]]:
    """``(schema, table) -> tenant columns`` the statement names of that table. Empty when it cannot be parsed."""
    import json

    import pglast

    from tenantwatch.sql._normalize import collapse_lists, normalize, slim_for_parse

    wanted = set(tenant_columns)
    try:
        tree = json.loads(pglast.parser.parse_sql_json(slim_for_parse(collapse_lists(normalize(sql).text)[0])))
    except Exception:  # not SQL pglast reads, or too deep: the analysis says why, nothing is assumed
        return {}
    ctes: set[str] = set()
    by_name: dict[str, tuple[str | None, str]] = {}
    relations: set[tuple[str | None, str]] = set()
    derived = False
    refs: list[list[str]] = []
    targets: list[tuple[tuple[str | None, str], list[str]]] = []

    def relation(node: dict[str, Any]) -> tuple[str | None, str]:
        schema = node.get("schemaname")
        table = (schema.lower() if isinstance(schema, str) else None, str(node["relname"]).lower())
        relations.add(table)
        alias = (node.get("alias") or {}).get("aliasname")
        by_name[alias.lower() if isinstance(alias, str) else table[1]] = table
        return table

    for kind, node in _nodes(tree):
        if kind == "CommonTableExpr" and isinstance(node.get("ctename"), str):
            ctes.add(node["ctename"].lower())
        elif kind == "RangeVar" and isinstance(node.get("relname"), str):
            relation(node)
        elif kind in ("RangeSubselect", "RangeFunction"):
            derived = True
        elif kind == "ColumnRef":
            names = _names(node.get("fields") or [])
            if names and names[-1] in wanted:
                refs.append(names)
        elif kind in ("InsertStmt", "UpdateStmt", "DeleteStmt") and isinstance(node.get("relation"), dict):
            target = relation(node["relation"])  # the target is a bare RangeVar body, not a wrapped node
            cols = node.get("cols") if kind == "InsertStmt" else node.get("targetList")
            named = [t["ResTarget"].get("name") for t in cols or [] if isinstance(t, dict) and "ResTarget" in t]
            targets.append((target, [n.lower() for n in named if isinstance(n, str)]))
    relations = {t for t in relations if t[0] is not None or t[1] not in ctes}
    found: dict[tuple[str | None, str], set[str]] = {}
    for table, names in targets:
        for column in names:
            if column in wanted and table in relations:
                found.setdefault(table, set()).add(column)
    only = next(iter(relations)) if len(relations) == 1 and not derived else None
    for names in refs:
        owner = by_name.get(names[-2]) if len(names) >= 2 else only  # qualifier.column
        if owner is not None and owner in relations:
            found.setdefault(owner, set()).add(names[-1])
    return found


class AssumedTables:
    """Learns into ``tables`` the tenant tables each statement names the tenant column of (see the module
    docstring), unless a table is known already; remembers them across the inputs of one run, as discovery would."""

    def __init__(self, tables: TenantTables) -> None:
        self._tables = tables
        self._columns: dict[tuple[str | None, str], set[str]] = {}
        self._first: dict[str, int] = {}

    @property
    def first_named(self) -> dict[str, int]:
        """Every assumed table (bare and schema-qualified) -> the input that first named its tenant column."""
        return dict(self._first)

    def learn(self, sql: str, number: int) -> list[str]:
        """Assume the tables ``sql`` (input ``number``) shows to be tenant-scoped; returns the new ones as
        ``table (column)``."""
        learned = []
        for (schema, table), columns in named_tenant_columns(sql, self._tables.tenant_columns).items():
            name = f"{schema}.{table}" if schema else table
            known = self._columns.get((schema, table))
            if known is None and (self._tables.column_for(name) is not None or self._tables.is_root(name)):
                continue  # declared, or the root of a key: what the rules file says stands
            if known is not None and columns <= known:
                continue
            merged = (known or set()) | columns
            if self._tables.learn([(schema, table, merged)]):
                self._columns[(schema, table)] = merged
                if known is None:
                    self._first.setdefault(name, number)
                    self._first.setdefault(table, number)
                    learned.append(f"{name} ({self._tables.column_for(name)})")
        return learned
