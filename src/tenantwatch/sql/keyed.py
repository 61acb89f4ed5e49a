"""Lookups by key: which unfiltered reads a primary or unique key pins to at most one row.

``missing_tenant_filter`` tells a lookup by key (``session.get(Note, id)``: ``... FROM notes WHERE notes.id = $1``,
the classic IDOR shape) from a list query without its filter: when the rows returned were all the context tenant's,
the first is a latent risk of one row, the second stays critical whatever it returned (see
docs/rules/missing_tenant_filter.md). This module answers that one question, after the scope walk, on the same parse
tree, for the outermost query block only (``main`` and its ``join:<alias>`` scopes): a table of a subquery, a CTE or
a ``UNION`` arm is never "by key" here, so its finding keeps the rule's severity.

A relation of that block is **keyed** when every column of one of its keys (:meth:`TenantTables.keys_for
<tenantwatch.sql.tables.TenantTables.keys_for>`: primary key, unique constraints and unique indexes, from MetaData
and the catalog; ``id`` when none is known for the table) is constant in every row where the relation is not null:

* equal to a value (a parameter or an inline constant, ``= v`` or ``IN (v)`` of one value), or
* equal to a column that is itself such a constant, or to a column of a relation that is keyed (at most one row
  of it, so each of its columns has one value): ``LEFT JOIN users ON users.id = notes.user_id WHERE notes.id = $1``
  keys ``users`` too,

through a top-level conjunct of the block's ``WHERE`` or of the ``ON`` of a join that filters that relation (both
sides of an ``INNER`` join, the nullable side of a ``LEFT``/``RIGHT`` join). Nothing under ``OR`` or ``NOT`` counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tenantwatch.sql._scope import conjuncts, value_of
from tenantwatch.sql.model import ScopeVerdict

__all__ = ["FALLBACK_KEY", "keyed_reads"]

FALLBACK_KEY: tuple[str, ...] = ("id",)
"""The key of a table whose keys are unknown (nothing learned from MetaData or the catalog)."""

_Col = tuple[int, str]
"""(index of the relation in the block, column)."""
KeysFor = Callable[[str], tuple[tuple[str, ...], ...]]


class _Rel:
    __slots__ = ("filters", "key", "scope", "table")

    def __init__(self, key: str, table: str | None, scope: str) -> None:
        self.key = key
        self.table = table
        self.scope = scope
        self.filters: list[Any] = []
        """The ``ON`` conditions that hold for its rows."""


def keyed_reads(stmts: list[dict[str, Any]], scopes: Iterable[ScopeVerdict], keys_for: KeysFor) -> tuple[str, ...]:
    """``scope:table`` of each ``missing`` read scope of the outermost block that a key pins to one row (see the
    module docstring). ``()`` when there is none; never raises on an unexpected tree shape."""
    wanted = {(s.scope, s.table) for s in scopes if s.role == "read" and s.verdict == "missing"}
    if len(stmts) != 1 or not any(scope == "main" or scope.startswith("join:") for scope, _ in wanted):
        return ()
    select = (stmts[0].get("stmt") or {}).get("SelectStmt")
    if not isinstance(select, dict) or select.get("op", "SETOP_NONE") != "SETOP_NONE" or "valuesLists" in select:
        return ()
    try:
        rels: list[_Rel] = []
        for item in select.get("fromClause") or ():
            _collect(item, rels, [])
        keyed = _keyed(rels, conjuncts(select.get("whereClause")), keys_for)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        return ()
    return tuple(f"{rels[i].scope}:{rels[i].table}" for i in sorted(keyed) if (rels[i].scope, rels[i].table) in wanted)


def _collect(item: Any, rels: list[_Rel], holding: list[Any]) -> list[int]:
    """The relations of a FROM item (indexes into ``rels``), each with the ``ON`` conditions that filter it."""
    if not isinstance(item, dict) or not item:
        return []
    kind, body = next(iter(item.items()))
    if kind == "RangeTableSample":
        return _collect(body.get("relation"), rels, holding)
    if kind in ("RangeVar", "RangeSubselect", "RangeFunction", "RangeTableFunc", "JsonTable"):
        alias = str((body.get("alias") or {}).get("aliasname") or "").lower()
        table = str(body.get("relname", "")).lower() if kind == "RangeVar" else None
        key = alias or table or f"?{len(rels)}"
        rel = _Rel(key, table, "main" if not rels else f"join:{key}")
        rel.filters.extend(holding)
        rels.append(rel)
        return [len(rels) - 1]
    if kind != "JoinExpr":
        return []
    jointype = str(body.get("jointype", "JOIN_INNER"))
    quals = [body.get("quals")] if body.get("quals") is not None else []
    left_holds = holding + quals if jointype in ("JOIN_INNER", "JOIN_RIGHT") else holding
    right_holds = holding + quals if jointype in ("JOIN_INNER", "JOIN_LEFT") else holding
    return _collect(body.get("larg"), rels, left_holds) + _collect(body.get("rarg"), rels, right_holds)


def _column(node: Any, rels: list[_Rel]) -> _Col | None:
    """A column reference resolved to one relation of the block (unqualified only when the block has one)."""
    if not isinstance(node, dict):
        return None
    cast = node.get("TypeCast")
    if cast is not None:
        node = cast.get("arg") or {}
    fields = (node.get("ColumnRef") or {}).get("fields") or ()
    names = [str((f.get("String") or {}).get("sval", "")).lower() for f in fields if isinstance(f, dict)]
    if not names or not names[-1] or len(names) != len(fields):
        return None
    if len(names) == 1:
        return (0, names[0]) if len(rels) == 1 else None
    qualifier = names[-2]
    for index, rel in enumerate(rels):
        if rel.key == qualifier:
            return index, names[-1]
    return None


def _atoms(nodes: Iterable[Any], rels: list[_Rel]) -> tuple[set[_Col], list[tuple[_Col, _Col]]]:
    """Columns equal to a value, and column equalities, among top-level conjuncts."""
    valued: set[_Col] = set()
    links: list[tuple[_Col, _Col]] = []
    for node in nodes:
        for conjunct in conjuncts(node):
            body = conjunct.get("A_Expr") if isinstance(conjunct, dict) else None
            if body is None:
                continue
            names = body.get("name") or ()
            if not names or (names[-1].get("String") or {}).get("sval") != "=":
                continue
            lexpr, rexpr = body.get("lexpr"), body.get("rexpr")
            kind = body.get("kind")
            if kind == "AEXPR_IN":
                items = (rexpr.get("List") or {}).get("items") if isinstance(rexpr, dict) else rexpr
                column = _column(lexpr, rels)
                if (
                    column is not None
                    and isinstance(items, list)
                    and len(items) == 1
                    and value_of(items[0]) is not None
                ):
                    valued.add(column)
                continue
            if kind != "AEXPR_OP":
                continue
            left, right = _column(lexpr, rels), _column(rexpr, rels)
            if left is not None and right is not None:
                if left != right:
                    links.append((left, right))
            elif left is not None and value_of(rexpr) is not None:
                valued.add(left)
            elif right is not None and value_of(lexpr) is not None:
                valued.add(right)
    return valued, links


def _keyed(rels: list[_Rel], where: list[Any], keys_for: KeysFor) -> set[int]:
    """Indexes of the keyed relations (a fixpoint: a relation keyed through another one needs that one first)."""
    base = _atoms(where, rels)
    facts = []
    for rel in rels:
        if not rel.filters:
            facts.append(base)
            continue
        valued, links = _atoms(rel.filters, rels)
        facts.append((valued | base[0], links + base[1]))
    keys = [(keys_for(rel.table) or (FALLBACK_KEY,)) if rel.table else () for rel in rels]
    keyed: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index in range(len(rels)):
            if index in keyed or not keys[index]:
                continue
            valued, links = facts[index]
            constant = _constant_columns(valued, links, keyed)
            if any(all((index, column) in constant for column in key) for key in keys[index]):
                keyed.add(index)
                changed = True
    return keyed


def _constant_columns(valued: set[_Col], links: list[tuple[_Col, _Col]], keyed: set[int]) -> set[_Col]:
    """Columns with one value per row: equal to a value, to a column of a keyed relation, or to such a column."""
    constant = set(valued)
    for a, b in links:
        if a[0] in keyed:
            constant.add(a)
        if b[0] in keyed:
            constant.add(b)
    changed = True
    while changed:
        changed = False
        for a, b in links:
            if (a in constant) != (b in constant):
                constant.update((a, b))
                changed = True
    return constant
