"""The scope walk: judge every scope of a parsed statement for tenant filters.

Input is libpg_query's JSON parse tree, loaded as plain dicts (``pglast.parser.parse_sql_json``), or the same shapes
built by :mod:`tenantwatch.sql._fallback`. A *level* is one query block (a ``SELECT``, or the target of an
``UPDATE``/``DELETE``/``INSERT``) with the relations of its ``FROM``; each tenant-scoped table in a level gets one
verdict. The semantics are documented in ``docs/analysis.md``; in short:

* A table is protected in its level when its tenant column is equal to a value (parameter or literal),
  ``IN (values)`` or ``= ANY(value)``, through a conjunct at the top of the level's ``WHERE``, or at the top of the
  ``ON`` of a join that filters that table's side (both sides of an INNER join, the nullable side of a LEFT/RIGHT
  join, neither side of a FULL join).
* Equalities between columns in the same set of conjuncts propagate values (``b.org = a.org AND a.org = $1``).
* Nothing under ``NOT``, no ``IS NOT NULL``, no column compared with itself, no filter from another level; under
  ``OR``, only a column filtered in every arm (against the values of all arms).
* A filter on a derived table's or a CTE's output column that is a tenant column of the table it comes from
  protects that table in the inner scope (for a CTE: when every reference to it filters it).
* What stays unprotected may still be ``inherited`` (see :mod:`tenantwatch.sql.model`): joined by equality on a
  declared foreign key to a protected table of the same level (``fk_join``), correlated through such a key to a
  protected table of an enclosing level (``correlated_fk``), or a subquery in a filter (EXISTS, IN, ANY, ALL) of a
  protected level (``narrowing_scope``), or keyed to a column that an ``EXISTS`` at the top of the level's WHERE
  pins to a protected row (``exists_key``); a table without a tenant column that such an ``EXISTS`` pins carries the
  tenant to the tables joined to it on a declared foreign key (``fk_join``). Decided at the end of the walk, until
  nothing changes.

Values are recorded as ``int`` (``$k`` of the normalized text; negative for ``-$k``) or ``str`` (a constant that
stayed inline), and bound to the caller's parameters later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tenantwatch.sql.model import InheritedReason, ScopeVerdict
from tenantwatch.sql.tables import KeyPairs

__all__ = ["Hierarchy", "TooDeepError", "Value", "WalkResult", "walk"]

Value = int | str
"""``k`` (> 0): parameter ``$k`` of the parsed text; ``-k``: its negation; ``str``: an inline constant."""

Node = dict[str, Any]
_Key = tuple[str, str]
FkLinks = Callable[[str, bool], Mapping[str, KeyPairs]]
"""``(table, only the keys it holds) -> {other table: its declared keys with that table}`` (:meth:`TenantTables.fk_links
<tenantwatch.sql.tables.TenantTables.fk_links>`)."""
_NARROWING = frozenset({"EXISTS_SUBLINK", "ANY_SUBLINK", "ALL_SUBLINK"})
"""Subqueries that only decide whether a row of the enclosing level is kept, when they stand in a filter."""

_WRITES = ("INSERT", "UPDATE", "DELETE")
_LEAVES = frozenset({"ColumnRef", "A_Const", "ParamRef", "String", "TypeName", "A_Star", "Integer", "Float"})
"""Node kinds that never contain a subquery or a comparison: the expression walk stops there."""
_SKIP_FIELDS = frozenset({"name", "names", "typeName", "fields", "funcname", "alias", "location", "opclass"})
"""Fields of a node body that hold names, never expressions."""


class TooDeepError(Exception):
    """The parse tree is nested deeper than the configured bound."""


@dataclass(frozen=True, slots=True)
class WalkResult:
    """Everything the walk found, with values still as :data:`Value` (see :func:`walk`)."""

    operation: str
    tables: tuple[str, ...]
    tenant_tables: tuple[str, ...]
    main_table: str | None
    scopes: tuple[ScopeVerdict, ...]
    filter_values: tuple[Value, ...]
    written_values: tuple[Value, ...]
    key_filter_values: tuple[tuple[str, tuple[Value, ...]], ...] = ()
    """With a tenant hierarchy: per finer key, the values its columns are compared with (``filter_values`` holds
    the root key's)."""
    key_written_values: tuple[tuple[str, tuple[Value, ...]], ...] = ()
    """With a tenant hierarchy: per finer key, the values written to its columns."""
    keyed: tuple[str, ...] = ()
    """``scope:table`` of the unfiltered reads a key pins to one row (set by :mod:`tenantwatch.sql.keyed`)."""


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """What the walk needs to know of a tenant hierarchy (from :class:`~tenantwatch.sql.tables.TenantTables`)."""

    other_columns: Callable[[str], tuple[str, ...]]
    """``table -> its key columns besides its tenant column``: a filter on any of them protects it."""
    key_of: Callable[[str | None, str], str | None]
    """``(table or None, column) -> the finer key it holds``, ``None`` for the root key."""
    root_key: str


@dataclass(slots=True)
class _Rel:
    """One relation of a level: a table, a CTE reference, a subquery or a function."""

    key: str
    kind: Literal["table", "cte", "subquery", "function"]
    table: str | None = None
    column: str | None = None
    scope: str = ""
    role: Literal["read", "write"] = "read"
    path: list[tuple[int, str]] = field(default_factory=list)
    """The joins above this relation, innermost first, with the side (``L``/``R``) it is on."""
    source: str | None = None
    """The CTE a ``cte`` relation reads."""
    inner: _Level | None = None
    """The query block a ``subquery`` relation reads (when it is one block)."""
    root: bool = False
    """The root table of a tenant key, judged by its key column."""
    others: tuple[str, ...] = ()
    """With a tenant hierarchy: the table's key columns besides ``column``; a filter on any of them protects it."""
    verdict: str = ""
    slot: tuple[list[ScopeVerdict], int] | None = None
    """Where this relation's verdict sits (for the end-of-walk upgrades)."""
    links: tuple[tuple[_Key, _Key], ...] = ()
    """Column equalities holding in every row where this relation is not null, this relation's column first (the
    other relation of such an equality is then not null either)."""
    index: int = -1
    """Position in its level's ``rels``."""


@dataclass(slots=True)
class _Level:
    """The relations of one query block and the conditions that hold for their rows."""

    rels: list[_Rel] = field(default_factory=list)
    qualifiers: dict[str, _Rel] = field(default_factory=dict)
    merged: dict[str, _Rel] = field(default_factory=dict)
    on_nodes: list[tuple[Any, list[tuple[_Key, _Key]]]] = field(default_factory=list)
    joins: list[tuple[str, frozenset[int], frozenset[int], frozenset[int], frozenset[int]]] = field(
        default_factory=list
    )
    """Per join (same index as ``on_nodes``): type, relations left and right, and their non-null cores."""
    cores: set[int] = field(default_factory=set)
    """Relations non-null in every row of the level (the cores of the FROM items, which are cross-joined)."""
    mentioned: set[str] = field(default_factory=set)
    memo: dict[int, _Atom | None] = field(default_factory=dict)
    scope: str = "main"
    label: str = "join"
    first_free: bool = True
    """Naming while collecting: the first relation takes the level's scope name, the others ``<label>:<key>``."""
    parent: _Level | None = None
    """The enclosing level of a subquery in an expression (correlation, narrowing)."""
    narrowing: bool = False
    """A subquery in a filter of ``parent`` (EXISTS / IN / ANY / ALL): it returns no rows to the caller."""
    targets: Any = None
    """The target list (a SELECT's output columns)."""
    conditions: tuple[list[_Atom], dict[int, list[_Atom]], dict[tuple[int, ...], _Protection]] | None = None
    """What :meth:`_Walker._judge` computed (WHERE atoms, ON atoms per join, protections per set of holding joins),
    kept so that the end of the walk can ask what holds for a table without a tenant column (an association
    table) without walking the conditions again."""
    where: Any = None
    """The WHERE (what an ``EXISTS`` of an enclosing level correlates through: ``exists_key``)."""

    def add(self, rel: _Rel, schema: str | None = None) -> None:
        rel.index = len(self.rels)
        self.rels.append(rel)
        self.qualifiers.setdefault(rel.key, rel)
        if schema and rel.table is not None and rel.key == rel.table:
            self.qualifiers.setdefault(f"{schema}.{rel.table}", rel)


def _child(scope: str, label: str) -> str:
    return label if scope == "main" else f"{scope}/{label}"


def _name(node: Node) -> str:
    """The text of a ``String`` node."""
    try:
        return str(node["String"]["sval"]).lower()
    except (KeyError, TypeError):
        return ""


def _op_name(body: Node) -> str:
    names = body.get("name") or ()
    return _name(names[-1]) if names else ""


def _const_text(body: Node) -> str | None:
    """The text of an ``A_Const`` (``None`` for NULL)."""
    if body.get("isnull"):
        return None
    for kind, inner in (("ival", "ival"), ("fval", "fval"), ("sval", "sval"), ("bsval", "bsval")):
        holder = body.get(kind)
        if holder is not None:
            return str(holder.get(inner, 0 if kind == "ival" else ""))
    holder = body.get("boolval")
    if holder is not None:
        return "true" if holder.get("boolval") else "false"
    return None


def value_of(node: Any) -> Value | None:
    """A parameter or a constant (possibly cast or negated), else ``None``."""
    if not isinstance(node, dict):
        return None
    body = node.get("ParamRef")
    if body is not None:
        number = body.get("number")
        return int(number) if isinstance(number, int) and number > 0 else None
    body = node.get("A_Const")
    if body is not None:
        return _const_text(body)
    body = node.get("TypeCast")
    if body is not None:
        return value_of(body.get("arg"))
    body = node.get("A_Expr")
    if body is not None and body.get("kind") == "AEXPR_OP" and "lexpr" not in body and _op_name(body) == "-":
        inner = value_of(body.get("rexpr"))
        if isinstance(inner, int):
            return -inner
        if isinstance(inner, str):
            return inner[1:] if inner.startswith("-") else "-" + inner
    return None


def _column_fields(node: Any) -> list[Any] | None:
    """The name parts of a column reference (possibly cast), else ``None``."""
    if not isinstance(node, dict):
        return None
    body = node.get("ColumnRef")
    if body is None:
        cast = node.get("TypeCast")
        if cast is None:
            return None
        body = (cast.get("arg") or {}).get("ColumnRef")
        if body is None:
            return None
    fields = body.get("fields")
    if not fields or "String" not in fields[-1]:
        return None
    return fields  # type: ignore[no-any-return]


def conjuncts(node: Any) -> list[Any]:
    """The top-level AND conjuncts of a boolean expression."""
    if node is None:
        return []
    out: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        body = item.get("BoolExpr") if isinstance(item, dict) else None
        if body is not None and body.get("boolop") == "AND_EXPR":
            stack.extend(reversed(body.get("args") or []))
        else:
            out.append(item)
    return out


class _UnionFind:
    __slots__ = ("parent",)

    def __init__(self) -> None:
        self.parent: dict[_Key, _Key] = {}

    def find(self, key: _Key) -> _Key:
        parent = self.parent
        root = key
        while parent.get(root, root) != root:
            root = parent[root]
        while key != root:
            parent[key], key = root, parent.get(key, root)
        return root

    def union(self, a: _Key, b: _Key) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


class _Atom:
    """A conjunct that matters: ``left = right`` between columns, or ``left`` against values."""

    __slots__ = ("form", "left", "right", "values")

    def __init__(self, left: _Key, right: _Key | None = None, values: tuple[Value, ...] = (), form: str = "=") -> None:
        self.left = left
        self.right = right
        self.values = values
        self.form = form


class _Protection:
    """What a set of conjuncts protects, computed once for every relation judged against it (a level of many
    tables costs one pass over its conditions, not one per table)."""

    __slots__ = ("atoms", "direct", "filtered", "uf")

    def __init__(self, atoms: list[_Atom]) -> None:
        self.atoms = atoms
        self.direct: dict[_Key, str] = {}
        """Column -> the form of its first filter against values."""
        for atom in atoms:
            if atom.right is None:
                self.direct.setdefault(atom.left, atom.form)
        self.uf: _UnionFind | None = None
        self.filtered: dict[_Key, _Key] = {}
        """Root of an equality class -> its first column filtered against values."""
        links = [a for a in atoms if a.right is not None]
        if not links:
            return
        uf = self.uf = _UnionFind()
        for atom in links:
            assert atom.right is not None
            uf.union(atom.left, atom.right)
        for atom in atoms:
            if atom.right is None:
                self.filtered.setdefault(uf.find(atom.left), atom.left)

    def check(self, rel: _Rel) -> tuple[bool, str]:
        assert rel.column is not None
        return self.check_column(rel, rel.column)

    def check_keys(self, rel: _Rel) -> tuple[bool, str, str]:
        """:meth:`check` on every key column of ``rel`` (a tenant hierarchy): the first that protects it."""
        assert rel.column is not None
        ok, why = self.check_column(rel, rel.column)
        if not ok:
            for column in rel.others:
                found, reason = self.check_column(rel, column)
                if found:
                    return True, reason, column
        return ok, why, rel.column

    def links_of(self, key: str) -> tuple[tuple[_Key, _Key], ...]:
        """The column equalities with one side on relation ``key`` (that side first)."""
        out: list[tuple[_Key, _Key]] = []
        for atom in self.atoms:
            right = atom.right
            if right is None:
                continue
            if atom.left[0] == key:
                out.append((atom.left, right))
            elif right[0] == key:
                out.append((right, atom.left))
        return tuple(out)

    def check_column(self, rel: _Rel, column: str) -> tuple[bool, str]:
        target: _Key = (rel.key, column)
        form = self.direct.get(target)
        if form is not None:
            if form == "IN":
                return True, f"{column} IN (values)"
            if form == "ANY":
                return True, f"{column} = ANY(values)"
            if form == "OR":
                return True, f"{column} filtered in every OR arm"
            return True, f"{column} = value"
        if self.uf is None:
            return False, ""
        source = self.filtered.get(self.uf.find(target))
        if source is not None and source != target:
            return True, f"{column} equals {source[0]}.{source[1]}, which is filtered"
        return False, ""


class _Walker:
    def __init__(
        self,
        column_for: Callable[[str], str | None],
        tenant_columns: Iterable[str],
        max_depth: int,
        fk_links: FkLinks | None = None,
        is_root: Callable[[str], bool] | None = None,
        *,
        hierarchy: Hierarchy | None = None,
    ) -> None:
        self.column_for = column_for
        self.hierarchy = hierarchy
        self.key_filter_values: dict[str, list[Value]] = {}
        self.key_written_values: dict[str, list[Value]] = {}
        self.others: dict[str, tuple[str, ...]] = {}
        self.fk_links = fk_links
        self.is_root = is_root
        self.stack: list[_Level] = []
        """The levels being walked, innermost last: the parent of a subquery in an expression."""
        self.filtering = False
        """Whether the expression being walked is a filter (WHERE, HAVING, ON) of the innermost level."""
        self.pending: list[tuple[_Rel, _Level]] = []
        """The ``missing`` verdicts, with their level: what the end of the walk may upgrade."""
        self.protected = False
        """Some table of the statement is ``present``: without one, nothing can be inherited."""
        self.traces: dict[tuple[int, str], tuple[_Rel, str] | None] = {}
        self.derived: list[tuple[_Rel, str, str]] = []
        """``(subquery or CTE relation, output column, reason)``: the outer level filters that column."""
        self.cte_levels: dict[str, _Level] = {}
        self.cte_refs: dict[str, list[_Rel]] = {}
        self.tenant_names = set(tenant_columns)
        self.columns: dict[str, str | None] = {}
        self.max_depth = max_depth
        self.tables: dict[str, None] = {}
        self.tenant: dict[str, None] = {}
        self.groups: list[list[ScopeVerdict]] = []
        self.filter_values: list[Value] = []
        self.written_values: list[Value] = []
        self.subqueries = 0
        self.arms = 0
        self.main_table: str | None = None
        self.main_decided = False
        self.sublinks = True
        self.key_columns = frozenset(tenant_columns) if hierarchy is not None else frozenset()
        """With a tenant hierarchy: every key's columns (a statement naming one on a tenant table shows it has it)."""
        self.sublevels: dict[int, _Level] = {}
        """``id(SelectStmt)`` of a subquery in a filter -> its level (what an EXISTS conjunct pins)."""
        self.pins: dict[int, list[tuple[str, _Rel, str]]] = {}
        """``id(relation)`` -> ``(its column, p, p's column)``: an EXISTS at the top of the relation's level's WHERE
        pins that column to the key of a protected ``p`` row (``exists_key``)."""
        self.pinned_levels: set[int] = set()
        """Levels whose rows reference a protected row through such a pin (protected for ``narrowing_scope``)."""

    # -- statements ----------------------------------------------------------------------------------------------

    def statement(
        self,
        wrapper: Node,
        scope: str,
        ctes: frozenset[str],
        depth: int,
        top: bool,
        *,
        parent: _Level | None = None,
    ) -> str:
        """Walk one statement node (wrapped), return its operation. ``parent``: the level of the filter a narrowing
        subquery stands in."""
        self._check(depth)
        if not wrapper:
            return "OTHER"
        kind, body = next(iter(wrapper.items()))
        if kind == "SelectStmt":
            self.select(body, scope, ctes, depth + 1, top, parent=parent)
            return "SELECT"
        if kind == "TruncateStmt":
            return self.truncate(body, scope, top)
        if kind == "InsertStmt":
            self.insert(body, scope, ctes, depth + 1, top)
            return "INSERT"
        if kind == "UpdateStmt":
            self.update_or_delete(body, scope, ctes, depth + 1, top=top, label="from", extra=body.get("fromClause"))
            return "UPDATE"
        if kind == "DeleteStmt":
            self.update_or_delete(body, scope, ctes, depth + 1, top=top, label="using", extra=body.get("usingClause"))
            return "DELETE"
        if kind == "MergeStmt":
            self.merge(body, scope, ctes, depth + 1, top)
            return "OTHER"
        if kind == "ExplainStmt":
            analyze = any((opt.get("DefElem") or {}).get("defname") == "analyze" for opt in body.get("options") or ())
            if not analyze:
                saved = len(self.groups)
                self.statement(body.get("query") or {}, scope, ctes, depth + 1, top)
                del self.groups[saved:]  # plain EXPLAIN does not run the query: tables only
                return "OTHER"
            return self.statement(body.get("query") or {}, scope, ctes, depth + 1, top)
        if kind == "DeclareCursorStmt":
            return self.statement(body.get("query") or {}, scope, ctes, depth + 1, top)
        if kind == "CreateTableAsStmt":
            self.statement(body.get("query") or {}, scope, ctes, depth + 1, top)
            return "OTHER"
        if kind == "CopyStmt":
            return self.copy(body, scope, ctes, depth + 1, top)
        return "OTHER"

    def select(
        self,
        s: Node,
        scope: str,
        ctes: frozenset[str],
        depth: int,
        top: bool,
        *,
        parent: _Level | None = None,
    ) -> _Level | None:
        """Walk a SELECT; returns its level when it is one query block."""
        self._check(depth)
        ctes = self._with(s.get("withClause"), ctes, depth)
        if s.get("op", "SETOP_NONE") != "SETOP_NONE":
            for side in (s.get("larg"), s.get("rarg")):
                if not side:
                    continue
                if side.get("op", "SETOP_NONE") != "SETOP_NONE":
                    self.select(side, scope, ctes, depth + 1, top, parent=parent)
                else:
                    self.arms += 1
                    self.select(side, f"union:{self.arms}", ctes, depth + 1, top, parent=parent)
            self._exprs((s.get("sortClause"), s.get("limitOffset"), s.get("limitCount")), None, ctes, depth)
            return None
        if "valuesLists" in s:
            self._exprs(s.get("valuesLists"), None, ctes, depth)
            return None
        group = self._open_group()
        level = self._level(parent)
        if parent is not None:
            self.sublevels[id(s)] = level
        level.targets = s.get("targetList")
        self._collect_from(s.get("fromClause") or (), level, scope, "join", ctes, first_takes_scope=True)
        if top and not self.main_decided and level.rels:
            self.main_decided = True  # a derived table first: the first table read (see walk()) stands in
            if level.rels[0].kind == "table":
                self.main_table = level.rels[0].table
        self.stack.append(level)
        if self.sublinks:
            self._exprs((s.get("distinctClause"), s.get("targetList")), None, ctes, depth)
        self._walk_from(s.get("fromClause") or (), level, ctes, depth)
        where = s.get("whereClause")
        self._expr(where, level, ctes, depth, filters=True)
        self._expr(s.get("havingClause"), level, ctes, depth, filters=True)
        if self.sublinks:
            self._exprs(
                (
                    s.get("groupClause"),
                    s.get("windowClause"),
                    s.get("sortClause"),
                    s.get("limitOffset"),
                    s.get("limitCount"),
                    s.get("lockingClause"),
                ),
                None,
                ctes,
                depth,
            )
        self.stack.pop()
        self._judge(level, where, group)
        return level

    def truncate(self, s: Node, scope: str, top: bool) -> str:
        """TRUNCATE removes every row of each table: an unscoped write of each tenant table it names."""
        group = self._open_group()
        for item in s.get("relations") or ():
            relation = item.get("RangeVar") if isinstance(item, dict) else None
            if not relation:
                continue
            table = self._register(relation)
            if top and self.main_table is None:
                self.main_table = table
            if table is not None and self._column(relation) is not None:
                reason = "TRUNCATE removes the rows of every tenant"
                group.append(ScopeVerdict(scope, table, "write", "missing", reason))
        return "TRUNCATE"

    def _level(self, parent: _Level | None = None) -> _Level:
        level = _Level()
        if parent is not None:
            level.parent = parent
            level.narrowing = True
        elif self.stack:
            level.parent = self.stack[-1]
        return level

    def insert(self, s: Node, scope: str, ctes: frozenset[str], depth: int, top: bool) -> None:
        self._check(depth)
        ctes = self._with(s.get("withClause"), ctes, depth)
        group = self._open_group()
        relation = s.get("relation") or {}
        table = self._register(relation)
        column = self._column(relation) if table else None
        if top and self.main_table is None:
            self.main_table = table
        cols = [str((c.get("ResTarget") or {}).get("name", "")).lower() for c in s.get("cols") or ()]
        index = cols.index(column) if column is not None and column in cols else None
        others = self._others(relation) if column is not None and self.hierarchy is not None else ()
        if column is not None and self.key_columns:  # key columns the INSERT names: the table has them
            others = (*others, *(c for c in cols if c in self.key_columns and c != column and c not in others))
        keyed = [(cols.index(c), self._key_of(table, c)) for c in others if c in cols]
        # with a tenant hierarchy: the other key columns written, by position, with their key
        own_key = self._key_of(table, column) if column is not None else None
        select = (s.get("selectStmt") or {}).get("SelectStmt")
        writes_column = False
        if select is not None:
            if "valuesLists" in select and select.get("op", "SETOP_NONE") == "SETOP_NONE":
                for row in select.get("valuesLists") or ():
                    items = (row.get("List") or {}).get("items") or []
                    self._exprs(items, None, ctes, depth)
                    if index is not None and index < len(items):
                        self._written(items[index], own_key)
                    for position, key in keyed:
                        if position < len(items):
                            self._written(items[position], key)
            else:
                self.select(select, _child(scope, "select"), ctes, depth + 1, top=False)
                if index is not None:
                    self._written_from_select(select, index, own_key)
                for position, key in keyed:
                    self._written_from_select(select, position, key)
            writes_column = index is not None or bool(keyed) or not cols
        if column is not None and table is not None:
            if writes_column:
                written = column if index is not None or not keyed else cols[keyed[0][0]]
                reason = f"INSERT writes {written}" if cols else "INSERT without a column list writes every column"
                group.append(ScopeVerdict(scope, table, "write", "present", reason))
            else:
                group.append(ScopeVerdict(scope, table, "write", "missing", f"INSERT does not write {column}"))
        conflict = s.get("onConflictClause")
        if conflict is not None:
            self._on_conflict(
                conflict,
                relation,
                table=table,
                column=column,
                writes_column=index is not None,
                scope=scope,
                ctes=ctes,
                depth=depth,
                group=group,
            )
        self._returning(s, ctes, depth)

    def _on_conflict(
        self,
        conflict: Node,
        relation: Node,
        *,
        table: str | None,
        column: str | None,
        writes_column: bool,
        scope: str,
        ctes: frozenset[str],
        depth: int,
        group: list[ScopeVerdict],
    ) -> None:
        if conflict.get("action") != "ONCONFLICT_UPDATE":
            return
        key = self._rel_key(relation)
        for target in conflict.get("targetList") or ():
            res = target.get("ResTarget") or {}
            if column is not None and str(res.get("name", "")).lower() == column:
                self._written(res.get("val"), self._key_of(table, column))
            self._expr(res.get("val"), None, ctes, depth)
        level = _Level()
        rel = _Rel(key=key, kind="table", table=table, column=column, scope=_child(scope, "on_conflict"))
        level.add(rel)
        level.add(_Rel(key="excluded", kind="table", column=column if writes_column else None))
        where = conflict.get("whereClause")
        self._expr(where, level, ctes, depth, filters=True)
        if column is None or table is None:
            return
        infer = conflict.get("infer") or {}
        elems = [str((e.get("IndexElem") or {}).get("name", "")).lower() for e in infer.get("indexElems") or ()]
        if column in elems:
            verdict = ScopeVerdict(rel.scope, table, "write", "present", f"conflict target includes {column}")
            group.append(verdict)
            return
        atoms = self._atoms(conjuncts(where), level)
        if writes_column:  # excluded.<column> is the written value, checked against the tenant separately
            atoms.append(_Atom(("excluded", column), None, ("excluded",)))
        ok, why = _Protection(atoms).check(rel)
        reason = why if ok else f"the conflicting row may belong to another tenant: no {column} in the conflict target"
        group.append(ScopeVerdict(rel.scope, table, "write", "present" if ok else "missing", reason))

    def update_or_delete(
        self, s: Node, scope: str, ctes: frozenset[str], depth: int, *, top: bool, label: str, extra: Any
    ) -> None:
        self._check(depth)
        ctes = self._with(s.get("withClause"), ctes, depth)
        group = self._open_group()
        relation = s.get("relation") or {}
        table = self._register(relation)
        column = self._column(relation) if table else None
        if top and self.main_table is None:
            self.main_table = table
        level = self._level()
        if column is not None and not self._root(relation):
            self.tenant_names.add(column)
        target = _Rel(key=self._rel_key(relation), kind="table", table=table, column=column, scope=scope, role="write")
        target.root = self._root(relation)
        if column is not None and self.hierarchy is not None:
            target.others = self._others(relation)
        level.add(target, relation.get("schemaname"))
        level.cores.add(0)
        self._collect_from(extra or (), level, scope, label, ctes, first_takes_scope=False)
        self.stack.append(level)
        for item in s.get("targetList") or ():
            res = item.get("ResTarget") or {}
            val = res.get("val")
            name = str(res.get("name", "")).lower()
            if self._named_key(target, name) and (val or {}).get("MultiAssignRef") is None:
                self._written(val, self._key_of(table, name))
            if column is not None and name == column:
                multi = (val or {}).get("MultiAssignRef")
                if multi is not None:
                    args = ((multi.get("source") or {}).get("RowExpr") or {}).get("args") or []
                    colno = int(multi.get("colno", 0))
                    if 0 < colno <= len(args):
                        self._written(args[colno - 1], self._key_of(table, column))
                else:
                    self._written(val, self._key_of(table, column))
            self._expr(val, None, ctes, depth)
        self._walk_from(extra or (), level, ctes, depth)
        where = s.get("whereClause")
        self._expr(where, level, ctes, depth, filters=True)
        self._returning(s, ctes, depth)
        self.stack.pop()
        self._judge(level, where, group)

    def merge(self, s: Node, scope: str, ctes: frozenset[str], depth: int, top: bool) -> None:
        self._check(depth)
        ctes = self._with(s.get("withClause"), ctes, depth)
        group = self._open_group()
        relation = s.get("relation") or {}
        table = self._register(relation)
        column = self._column(relation) if table else None
        if top and self.main_table is None:
            self.main_table = table
        level = _Level()
        level.add(
            _Rel(key=self._rel_key(relation), kind="table", table=table, column=column, scope=scope, role="write")
        )
        source = s.get("sourceRelation")
        self._collect_from([source] if source else (), level, scope, "using", ctes, first_takes_scope=False)
        self._walk_from([source] if source else (), level, ctes, depth)
        condition = s.get("joinCondition")
        self._expr(condition, level, ctes, depth, filters=True)
        self._exprs(s.get("mergeWhenClauses"), None, ctes, depth)
        self._judge(level, condition, group)

    def copy(self, s: Node, scope: str, ctes: frozenset[str], depth: int, top: bool) -> str:
        query = s.get("query")
        if query:
            self.statement(query, scope, ctes, depth + 1, top)
            return "OTHER"
        relation = s.get("relation") or {}
        table = self._register(relation)
        column = self._column(relation) if table else None
        if top and self.main_table is None:
            self.main_table = table
        if table is None or column is None:
            return "OTHER"
        group = self._open_group()
        if s.get("is_from"):
            cols = [_name(a) for a in s.get("attlist") or ()]
            ok = not cols or column in cols
            reason = f"COPY FROM {'writes' if ok else 'does not write'} {column}"
            group.append(ScopeVerdict(scope, table, "write", "present" if ok else "missing", reason))
        else:
            group.append(ScopeVerdict(scope, table, "read", "missing", "COPY TO reads the whole table"))
        return "OTHER"

    # -- FROM ----------------------------------------------------------------------------------------------------

    def _collect_from(
        self,
        items: Iterable[Node],
        level: _Level,
        scope: str,
        label: str,
        ctes: frozenset[str],
        *,
        first_takes_scope: bool,
    ) -> None:
        """Phase 1: the relations of a FROM list and which ON conditions hold for each (no recursion)."""
        level.scope = scope
        level.label = label
        level.first_free = first_takes_scope
        for item in items:
            level.cores |= self._visit(item, level, ctes, 0)[1]

    @staticmethod
    def _name_for(level: _Level, key: str) -> str:
        if level.first_free:
            level.first_free = False
            return level.scope
        return _child(level.scope, f"{level.label}:{key}")

    @staticmethod
    def _leaf(level: _Level, rel: _Rel, schema: str | None = None) -> tuple[list[int], set[int]]:
        level.add(rel, schema)
        index = len(level.rels) - 1
        return [index], {index}

    def _visit(self, item: Node, level: _Level, ctes: frozenset[str], depth: int) -> tuple[list[int], set[int]]:
        """Relations of a FROM item (indexes into ``level.rels``) and its core: those non-null in every row."""
        if depth > self.max_depth:
            raise TooDeepError(f"statement nested deeper than {self.max_depth} levels")
        if not item:
            return [], set()
        kind, body = next(iter(item.items()))
        if kind == "RangeTableSample":  # ``orders TABLESAMPLE SYSTEM (10)`` reads ``orders``
            return self._visit(body.get("relation") or {}, level, ctes, depth + 1)
        if kind == "RangeVar":
            relname = str(body.get("relname", "")).lower()
            schema = body.get("schemaname")
            key = self._rel_key(body)
            if not schema and relname in ctes:
                cte = _Rel(key=key, kind="cte", scope=self._name_for(level, key), source=relname)
                self.cte_refs.setdefault(relname, []).append(cte)
                return self._leaf(level, cte)
            column = self._column(body)
            rel = _Rel(key=key, kind="table", table=relname, column=column, scope=self._name_for(level, key))
            rel.root = column is not None and self._root(body)
            if column is not None and self.hierarchy is not None:
                rel.others = self._others(body)
            return self._leaf(level, rel, str(schema).lower() if schema else None)
        if kind in ("RangeSubselect", "RangeFunction", "RangeTableFunc", "JsonTable"):
            alias = str((body.get("alias") or {}).get("aliasname", "")).lower()
            key = alias or f"?{len(level.rels)}"
            rel = _Rel(key=key, kind="subquery" if kind == "RangeSubselect" else "function")
            rel.scope = self._name_for(level, key)
            return self._leaf(level, rel)
        if kind == "JoinExpr":
            return self._visit_join(body, level, ctes, depth)
        return [], set()

    def _visit_join(self, body: Node, level: _Level, ctes: frozenset[str], depth: int) -> tuple[list[int], set[int]]:
        jointype = str(body.get("jointype", "JOIN_INNER"))
        index = len(level.on_nodes)
        level.on_nodes.append((body.get("quals"), []))
        level.joins.append((jointype, frozenset(), frozenset(), frozenset(), frozenset()))
        left, lcore = self._visit(body.get("larg") or {}, level, ctes, depth + 1)
        right, rcore = self._visit(body.get("rarg") or {}, level, ctes, depth + 1)
        for i in left:
            level.rels[i].path.append((index, "L"))
        for i in right:
            level.rels[i].path.append((index, "R"))
        level.joins[index] = (jointype, frozenset(left), frozenset(right), frozenset(lcore), frozenset(rcore))
        using_clause = body.get("usingClause")
        if using_clause or body.get("isNatural"):
            lrels = [level.rels[i] for i in left]
            rrels = [level.rels[i] for i in right]
            using = [_name(u) for u in using_clause or ()]
            if body.get("isNatural"):
                using = self._natural_columns(lrels, rrels)
            for col in using:
                lrel = self._using_side(lrels, col)
                rrel = self._using_side(rrels, col)
                if lrel is not None and rrel is not None:
                    level.on_nodes[index][1].append(((lrel.key, col), (rrel.key, col)))
                merged = lrel if jointype in ("JOIN_INNER", "JOIN_LEFT") else rrel
                if jointype == "JOIN_FULL" or merged is None:
                    level.merged[col] = _Rel(key=f"?merged:{col}", kind="subquery")
                else:
                    level.merged[col] = merged
        join_alias = (body.get("alias") or {}).get("aliasname")
        if join_alias:
            level.qualifiers.setdefault(str(join_alias).lower(), _Rel(key=f"?join:{join_alias}", kind="subquery"))
        if jointype == "JOIN_INNER":
            return left + right, lcore | rcore
        if jointype == "JOIN_LEFT":
            return left + right, lcore
        if jointype == "JOIN_RIGHT":
            return left + right, rcore
        return left + right, set()

    @staticmethod
    def _using_side(rels: list[_Rel], col: str) -> _Rel | None:
        if len(rels) == 1:
            return rels[0]
        having = [r for r in rels if r.column == col]
        return having[0] if len(having) == 1 else None

    @staticmethod
    def _natural_columns(left: list[_Rel], right: list[_Rel]) -> list[str]:
        """NATURAL JOIN: the tenant columns both sides are known to have."""
        lcols = {r.column for r in left if r.column}
        return sorted(c for c in {r.column for r in right if r.column} if c in lcols)

    def _walk_from(self, items: Iterable[Node], level: _Level, ctes: frozenset[str], depth: int) -> None:
        """Phase 2: register tables, recurse into subqueries and walk ON conditions, in text order."""
        for item in items:
            self._walk_from_item(item, level, ctes, depth + 1)

    def _walk_from_item(self, item: Node, level: _Level, ctes: frozenset[str], depth: int) -> None:
        self._check(depth)
        if not item:
            return
        kind, body = next(iter(item.items()))
        if kind == "RangeTableSample":
            self._walk_from_item(body.get("relation") or {}, level, ctes, depth + 1)
            self._expr(body.get("args"), None, ctes, depth)
        elif kind == "RangeVar":
            relname = str(body.get("relname", "")).lower()
            if body.get("schemaname") or relname not in ctes:
                self._register(body)
        elif kind == "RangeSubselect":
            self.subqueries += 1
            scope = f"subquery:{self.subqueries}"
            inner = (body.get("subquery") or {}).get("SelectStmt")
            alias = str((body.get("alias") or {}).get("aliasname", "")).lower()
            rel = level.qualifiers.get(alias) if alias and not body.get("lateral") else None
            if inner is not None and rel is not None and rel.kind == "subquery":
                self._check(depth + 1)
                saved, self.stack = self.stack, []  # a derived table sees no enclosing level (not LATERAL)
                try:
                    rel.inner = self.select(inner, scope, ctes, depth + 2, False)
                finally:
                    self.stack = saved
            else:
                self.statement(body.get("subquery") or {}, scope, ctes, depth + 1, False)
        elif kind == "JoinExpr":
            self._walk_from_item(body.get("larg") or {}, level, ctes, depth + 1)
            self._walk_from_item(body.get("rarg") or {}, level, ctes, depth + 1)
            self._expr(body.get("quals"), level, ctes, depth, filters=True)
        else:
            self._expr(body, None, ctes, depth)

    # -- expressions ---------------------------------------------------------------------------------------------

    def _exprs(self, nodes: Any, level: _Level | None, ctes: frozenset[str], depth: int) -> None:
        """Find the subqueries (new scopes) in expressions outside filter positions."""
        if not self.sublinks or not nodes:
            return
        saved, self.filtering = self.filtering, False
        try:
            for node in nodes:
                if node:
                    self._sublinks(node, ctes, depth)
        finally:
            self.filtering = saved

    def _expr(
        self,
        node: Any,
        level: _Level | None,
        ctes: frozenset[str],
        depth: int,
        *,
        filters: bool = False,
    ) -> None:
        """Walk one expression: tenant comparisons if it is a filter (``level`` given), then its subqueries."""
        if node is None:
            return
        if filters and level is not None:
            self._filters(node, level, depth, negated=False)
        if self.sublinks:
            saved = self.filtering
            self.filtering = filters and level is not None and bool(self.stack) and self.stack[-1] is level
            try:
                self._sublinks(node, ctes, depth)
            finally:
                self.filtering = saved

    def _filters(self, node: Any, level: _Level, depth: int, negated: bool) -> None:
        """Note the tenant values compared along a filter's AND/OR/NOT structure (not under NOT)."""
        if not isinstance(node, dict):
            return
        if depth > self.max_depth:
            raise TooDeepError(f"statement nested deeper than {self.max_depth} levels")
        body = node.get("BoolExpr")
        if body is not None:
            negated = negated or body.get("boolop") == "NOT_EXPR"
            for arg in body.get("args") or ():
                self._filters(arg, level, depth + 1, negated)
            return
        body = node.get("A_Expr")
        if body is not None and not negated:
            self._note_comparison(body, level)

    def _sublinks(self, node: Any, ctes: frozenset[str], depth: int) -> None:
        """Find subqueries anywhere under ``node``; each becomes scope ``subquery:<n>`` (numbered in text order)."""
        if isinstance(node, list):
            for item in node:
                self._sublinks(item, ctes, depth)
            return
        if not isinstance(node, dict):
            return
        for key, body in node.items():
            if key[:1].isupper():
                if key in _LEAVES:
                    continue
                self._check(depth)
                if key == "SubLink":
                    self._sublinks(body.get("testexpr"), ctes, depth + 1)
                    self.subqueries += 1
                    scope = f"subquery:{self.subqueries}"
                    narrows = self.filtering and body.get("subLinkType") in _NARROWING and bool(self.stack)
                    saved, self.filtering = self.filtering, False
                    try:
                        parent = self.stack[-1] if narrows else None
                        self.statement(body.get("subselect") or {}, scope, ctes, depth + 1, False, parent=parent)
                    finally:
                        self.filtering = saved
                    continue
                if isinstance(body, dict):
                    for field_name, value in body.items():
                        if field_name not in _SKIP_FIELDS and isinstance(value, (dict, list)):
                            self._sublinks(value, ctes, depth + 1)
            elif key not in _SKIP_FIELDS and isinstance(body, (dict, list)):
                self._sublinks(body, ctes, depth)

    def _note_comparison(self, body: Node, level: _Level) -> None:
        """Record the values a tenant column is compared with (anywhere in a filter, even under OR)."""
        atom = self._atom(body, level)
        if atom is None:
            return
        if atom.right is not None:
            if self.key_columns:  # ``kr.team_id = teams.id``: the statement shows both tables' columns
                for side in (atom.left, atom.right):
                    named = level.qualifiers.get(side[0])
                    if named is not None and named.kind == "table":
                        self._named_key(named, side[1])
            return
        rel = level.qualifiers.get(atom.left[0])
        table: str | None = None
        if rel is not None and rel.kind == "table":
            if rel.column != atom.left[1] and not self._named_key(rel, atom.left[1]):
                return
            level.mentioned.add(rel.key)
            table = rel.table
        elif atom.left[1] not in self.tenant_names:
            return
        key = self._key_of(table, atom.left[1])
        if key is None:
            self.filter_values.extend(atom.values)
        else:
            self.key_filter_values.setdefault(key, []).extend(atom.values)

    # -- judging -------------------------------------------------------------------------------------------------

    def _judge(self, level: _Level, where: Any, group: list[ScopeVerdict]) -> None:
        level.where = where
        if self.sublevels and where is not None:
            self._pin(level, where)
        tenant_rels = [r for r in level.rels if r.column is not None and r.table is not None]
        derived = [r for r in level.rels if r.inner is not None or r.source in self.cte_levels]
        if not tenant_rels and not derived:
            return
        where_atoms = self._atoms(conjuncts(where), level)
        on_atoms: dict[int, list[_Atom]] = {}
        protections: dict[tuple[int, ...], _Protection] = {}
        level.conditions = (where_atoms, on_atoms, protections)
        for rel in derived:  # filters on the output columns of derived tables and CTEs
            outer = self._protection(level, rel, where_atoms, on_atoms, protections)
            key = rel.key
            columns = {a.left[1] for a in outer.atoms if a.left[0] == key}
            columns.update(a.right[1] for a in outer.atoms if a.right is not None and a.right[0] == key)
            protected = [(c, why) for c in columns for ok, why in (outer.check_column(rel, c),) if ok]
            if protected:
                outputs = self._outputs(rel)
                for output_column, why in protected:
                    if output_column in outputs:
                        self.derived.append((rel, output_column, f"{key}.{why} in the enclosing query"))
        for rel in tenant_rels:
            protection = self._protection(level, rel, where_atoms, on_atoms, protections)
            protected_by: str | None = None
            if rel.others:
                ok, reason, by = protection.check_keys(rel)
                if ok and self.hierarchy is not None:
                    protected_by = self._key_of(rel.table, by) or self.hierarchy.root_key
            else:
                ok, reason = protection.check(rel)
                by = rel.column or ""
                if ok and self.hierarchy is not None:
                    protected_by = self._key_of(rel.table, by) or self.hierarchy.root_key
            if ok and rel.root and (self.hierarchy is None or by not in self.tenant_names):
                reason += " (tenant root table)"
            if not ok:
                column = rel.column
                if rel.key in level.mentioned:
                    reason = (
                        f"{rel.key}.{column} is compared, but not in a conjunct that holds for every row "
                        "(under OR/NOT, or on the other side of an outer join)"
                    )
                else:
                    reason = f"no filter on {' or '.join(f'{rel.key}.{c}' for c in (column, *rel.others))}"
            assert rel.table is not None
            rel.verdict = "present" if ok else "missing"
            inherited: InheritedReason | None = None
            if ok:
                self.protected = True
            else:
                rel.links = protection.links_of(rel.key)
                # Decided here when a table judged before it already protects it (the ORM's joins: the filtered
                # table comes first), else at the end of the walk. Verdicts only ever go up, so deciding early
                # never says more than the end of the walk would.
                found = self._inheritance(rel, level) if self.protected and rel.links else None
                if found is None:
                    self.pending.append((rel, level))
                else:
                    inherited, reason = found
                    rel.verdict = "inherited"
            rel.slot = (group, len(group))
            verdict = ScopeVerdict(rel.scope, rel.table, rel.role, rel.verdict, reason, inherited, key=protected_by)  # type: ignore[arg-type]
            group.append(verdict)
        if self.hierarchy is not None:
            self._nested_roots(level, tenant_rels)

    def _nested_roots(self, level: _Level, rels: list[_Rel]) -> None:
        """A tenant hierarchy: ``users.team_id = teams.id`` where ``teams``, the root table of the team key, is
        protected (by the organization key) protects ``users`` by the team key, the one its rows are in."""
        assert self.hierarchy is not None
        changed = True
        while changed:
            changed = False
            for rel in rels:
                if rel.verdict not in {"missing", "inherited"} or rel.table is None:
                    continue
                for (_mine, column), (other_key, other_column) in rel.links:
                    other = level.qualifiers.get(other_key)
                    if other is None or not other.root or other.verdict != "present" or other.table is None:
                        continue
                    if column != rel.column and column not in rel.others:
                        continue
                    key = self._key_of(rel.table, column)
                    if key is None or self._key_of(other.table, other_column) != key:
                        continue
                    why = f"{column} equals {other.key}.{other_column}, the protected root table of key {key}"
                    rel.verdict = "present"
                    if rel.slot is not None:
                        group, index = rel.slot
                        old = group[index]
                        group[index] = ScopeVerdict(old.scope, old.table, old.role, "present", why, key=key)
                    changed = True
                    break

    def _protection(
        self,
        level: _Level,
        rel: _Rel,
        where_atoms: list[_Atom],
        on_atoms: dict[int, list[_Atom]],
        protections: dict[tuple[int, ...], _Protection],
    ) -> _Protection:
        """What holds in every row where ``rel`` is not null: relations under the same joins share it."""
        holding = tuple(self._holding_joins(level, rel))
        protection = protections.get(holding)
        if protection is None:
            atoms = list(where_atoms)
            for index in holding:
                if index not in on_atoms:
                    quals, using = level.on_nodes[index]
                    found = self._atoms(conjuncts(quals), level)
                    found.extend(_Atom(a, b) for a, b in using)
                    on_atoms[index] = found
                atoms.extend(on_atoms[index])
            protection = protections[holding] = _Protection(atoms)
        return protection

    def _outputs(self, rel: _Rel, depth: int = 0) -> dict[str, tuple[_Rel, str]]:
        """The output columns of a derived table or CTE that carry a tenant column, with where each comes from."""
        inner = rel.inner if rel.inner is not None else self.cte_levels.get(rel.source or "")
        if inner is None or depth > self.max_depth:
            return {}
        out: dict[str, tuple[_Rel, str]] = {}
        dup: set[str] = set()

        def put(name: str, source: tuple[_Rel, str]) -> None:
            if name in out and out[name][0] is not source[0]:
                dup.add(name)
            out[name] = source

        for item in inner.targets or ():
            res = item.get("ResTarget") if isinstance(item, dict) else None
            if res is None:
                continue
            body = (res.get("val") or {}).get("ColumnRef")
            fields = body.get("fields") if body else None
            if not fields:
                continue
            if "A_Star" in fields[-1]:
                qualifier = _name(fields[0]) if len(fields) == 2 else None
                for source in inner.rels:
                    if qualifier is not None and inner.qualifiers.get(qualifier) is not source:
                        continue
                    if source.kind == "table" and source.column is not None:
                        for name in (source.column, *source.others):
                            put(name, (source, name))
                    elif source.inner is not None or source.source in self.cte_levels:
                        for name in self._outputs(source, depth + 1):
                            put(name, (source, name))
                continue
            key = self._key(fields, inner)
            if key is None:
                continue
            found = inner.qualifiers.get(key[0]) or next((r for r in inner.rels if r.key == key[0]), None)
            if found is None:
                continue
            name = str(res.get("name") or key[1]).lower()
            derived = found.inner is not None or found.source in self.cte_levels
            if (found.kind == "table" and (found.column == key[1] or key[1] in found.others)) or (
                derived and key[1] in self._outputs(found, depth + 1)
            ):
                put(name, (found, key[1]))
        for name in dup:
            del out[name]
        return out

    def _trace(self, rel: _Rel, column: str, depth: int) -> tuple[_Rel, str] | None:
        """The table relation and column an output column of a derived table or CTE comes from, if one."""
        inner = rel.inner if rel.inner is not None else self.cte_levels.get(rel.source or "")
        if inner is None or depth > self.max_depth:
            return None
        for item in inner.targets or ():
            res = item.get("ResTarget") if isinstance(item, dict) else None
            body = ((res or {}).get("val") or {}).get("ColumnRef")
            fields = body.get("fields") if body else None
            if not fields or res is None:
                continue
            if "A_Star" in fields[-1]:
                if len(inner.rels) != 1:
                    return None  # which relation a name comes from is not known here
                source = inner.rels[0]
            else:
                name = res.get("name")
                if (str(name).lower() if name else _name(fields[-1])) != column:
                    continue  # the output name first: resolving a column costs more
                key = self._key(fields, inner)
                if key is None:
                    continue
                found = inner.qualifiers.get(key[0])
                if found is None:
                    return None
                source, column = found, key[1]
            if source.kind == "table":
                return source, column
            return self._trace(source, column, depth + 1)
        return None

    # -- provenance (end of the walk) ----------------------------------------------------------------------------

    def settle(self) -> None:
        """Upgrade verdicts by provenance, until nothing changes: filters through derived tables and CTEs
        (``present``), then ``inherited`` (foreign-key joins, correlation, narrowing subqueries).

        Cheap by construction (it runs on every cold analysis with a ``missing`` verdict): nothing to do when no
        table of the statement is protected (nothing can be inherited from), the declared keys come precomputed per
        pair of tables (:meth:`~tenantwatch.sql.tables.TenantTables.fk_links`), and traces through derived tables
        are computed once per walk."""
        self._settle_derived()
        pending = [(rel, level) for rel, level in self.pending if rel.verdict == "missing"]
        if not pending or not self.protected:
            return
        changed = True
        while changed and pending:
            changed = False
            still: list[tuple[_Rel, _Level]] = []
            for rel, level in pending:
                found = self._inheritance(rel, level) if rel.verdict == "missing" else None
                if found is None:
                    if rel.verdict == "missing":
                        still.append((rel, level))
                    continue
                reason, why = found
                self._set(rel, "inherited", why, reason)
                changed = True
            pending = still

    def _settle_derived(self) -> None:
        if not self.derived:
            return
        filtered: dict[int, set[str]] = {}
        for rel, column, _why in self.derived:
            filtered.setdefault(id(rel), set()).add(column)
        for rel, column, why in self.derived:
            if rel.source is not None:  # a CTE: every reference to it must filter that column
                refs = self.cte_refs.get(rel.source, [])
                if not all(column in filtered.get(id(r), ()) for r in refs):
                    continue
            self._protect_output(rel, column, why, 0)

    def _protect_output(self, rel: _Rel, column: str, why: str, depth: int) -> None:
        target = self._outputs(rel).get(column)
        if target is None or depth > self.max_depth:
            return
        source, source_column = target
        if source.kind == "table":
            if source.verdict in ("missing", "inherited"):  # a filter of its own beats provenance
                self._set(source, "present", why, None)
                self.protected = True
            return
        self._protect_output(source, source_column, why, depth + 1)

    @staticmethod
    def _set(rel: _Rel, verdict: str, why: str, reason: InheritedReason | None) -> None:
        rel.verdict = verdict
        if rel.slot is None:
            return
        group, index = rel.slot
        old = group[index]
        group[index] = ScopeVerdict(old.scope, old.table, old.role, verdict, why, reason)  # type: ignore[arg-type]

    @staticmethod
    def _protected(rel: _Rel | None) -> bool:
        return rel is not None and rel.kind == "table" and rel.verdict in ("present", "inherited")

    def _level_protected(self, level: _Level | None, depth: int = 0) -> bool:
        """Every tenant table of ``level`` is protected, and it has one (or narrows a protected level itself)."""
        if level is None or depth > self.max_depth:
            return False
        tenant = [r for r in level.rels if r.column is not None and r.table is not None]
        if any(not self._protected(r) for r in tenant):
            return False
        if tenant or id(level) in self.pinned_levels:
            return True
        return level.narrowing and self._level_protected(level.parent, depth + 1)

    def _traced(self, rel: _Rel, column: str) -> tuple[_Rel, str] | None:
        """:meth:`_trace`, once per walk for each derived table column."""
        key = (id(rel), column)
        traces = self.traces
        if key not in traces:
            traces[key] = self._trace(rel, column, 0)
        return traces[key]

    def _linked(
        self, links: Iterable[tuple[_Key, _Key]], level: _Level, keyed: Mapping[str, KeyPairs]
    ) -> dict[int, tuple[_Rel, str, set[tuple[str, str]]]]:
        """The tables of ``level`` that ``links`` equate with and that a declared key joins (``keyed``: by table), by
        table relation (a derived table or CTE column traced to the table it comes from): ``(table, name in this
        level, {(own column, its column)})``."""
        found: dict[int, tuple[_Rel, str, set[tuple[str, str]]]] = {}
        qualifiers = level.qualifiers
        for (_mine, my_col), (other_key, link_col) in links:
            other = qualifiers.get(other_key)
            if other is None or other_key != other.key:
                continue
            via, other_col = other_key, link_col
            if other.kind != "table":  # a derived table or CTE: the table its column comes from
                traced = self._traced(other, link_col)
                if traced is None:
                    continue
                other, other_col = traced
            if other.table in keyed:
                entry = found.get(id(other))
                if entry is None:
                    found[id(other)] = (other, via, {(my_col, other_col)})
                else:
                    entry[2].add((my_col, other_col))
        return found

    def _carrier(self, rel: _Rel, level: _Level, depth: int) -> str | None:
        """Whether a table without a tenant column (an association table) carries a protected table's tenant: it
        *refers* by a declared foreign key, on every column pair, to a protected table of the level (or to such a
        carrier), through conditions that hold for each of its rows. Its rows then belong to protected rows, as a
        child's do. Only that direction: a table without a tenant column that a protected row refers to (``users``
        shared by every tenant) may be reached from any tenant, so it carries nothing. Returns the chain for the
        reason (``"recipes_to_categories_1, which refers to protected recipes"``) or ``None``."""
        if depth > 8 or level.conditions is None or rel.table is None or self.fk_links is None:
            return None
        refers = self.fk_links(rel.table, True)
        if not refers:
            return None
        where_atoms, on_atoms, protections = level.conditions
        links = self._protection(level, rel, where_atoms, on_atoms, protections).links_of(rel.key)
        for other, via, columns in self._linked(links, level, refers).values():
            if other is rel or other.table is None:
                continue
            if not any(pairs <= columns for pairs, _refers in refers[other.table]):
                continue
            if self._protected(other):
                return f"{rel.key}, which refers to protected {via}"
            if other.column is None:
                pinned = self._pinned(other)
                if pinned is not None:
                    return f"{rel.key}, which refers to {via}, pinned to protected {pinned}"
                found = self._carrier(other, level, depth + 1)
                if found is not None:
                    return f"{rel.key}, which refers to {found}"
        return None

    def _pinned(self, rel: _Rel) -> str | None:
        """The protected table a table without a tenant column belongs to through a pin (:meth:`_pin`): an EXISTS
        at the top of its level's WHERE keys each of its rows to a protected row, so it carries that row's tenant as
        an association table referring to it would (``recipe_timeline_events WHERE EXISTS (SELECT 1 FROM recipes
        WHERE recipes.id = recipe_timeline_events.recipe_id AND recipes.group_id = ?)``). ``None`` when not pinned."""
        for column, p, p_col in self.pins.get(id(rel), ()):
            if self._keyed_to(rel, column, p, p_col):
                return p.table
        return None

    def _inheritance(self, rel: _Rel, level: _Level) -> tuple[InheritedReason, str] | None:
        assert rel.table is not None
        keyed = self.fk_links(rel.table, False) if self.fk_links is not None and rel.links else None
        via_pin: str | None = None
        if keyed:
            carried: list[tuple[_Rel, set[tuple[str, str]]]] = []
            for other, via, columns in self._linked(rel.links, level, keyed).values():
                if not any(pairs <= columns for pairs, _refers in keyed[other.table or ""]):
                    continue
                if self._protected(other):
                    return "fk_join", f"joined to protected {via} on a foreign key ({_pairs(columns)})"
                if other.column is None:
                    carried.append((other, columns))
            for other, columns in carried:  # through an association table (no tenant column of its own)
                pinned = self._pinned(other) if self.pins else None
                if pinned is not None:  # or one whose rows an EXISTS pins to a protected row (after exists_key)
                    via_pin = (
                        via_pin
                        or f"joined on a foreign key ({_pairs(columns)}) via {other.key}, pinned to protected {pinned}"
                    )
                    continue
                chain = self._carrier(other, level, 0)
                if chain is not None:
                    return "fk_join", f"joined on a foreign key ({_pairs(columns)}) to {chain}"
            outer: dict[tuple[int, int], tuple[_Rel, set[tuple[str, str]]]] = {}
            for (_mine, my_col), (other_key, other_col) in rel.links:
                if not other_key.startswith("^"):
                    continue
                qualifier = other_key[1:]
                ancestor = level.parent
                while ancestor is not None and qualifier not in ancestor.qualifiers:
                    ancestor = ancestor.parent
                found_rel = ancestor.qualifiers.get(qualifier) if ancestor is not None else None
                if found_rel is not None and found_rel.table in keyed and self._protected(found_rel):
                    entry = outer.setdefault((id(ancestor), id(found_rel)), (found_rel, set()))
                    entry[1].add((my_col, other_col))
            for correlated, columns in outer.values():
                assert correlated.table is not None
                if any(pairs <= columns for pairs, _refers in keyed[correlated.table]):
                    return (
                        "correlated_fk",
                        f"correlated with protected {correlated.key} on a foreign key ({_pairs(columns)})",
                    )
        found = self._exists_key(rel, level) if self.pins else None
        if found is not None:
            return found
        if via_pin is not None:
            return "fk_join", via_pin
        if level.narrowing and self._level_protected(level.parent):
            return "narrowing_scope", "a subquery that only narrows a protected level and returns no rows"
        return None

    def _pin(self, level: _Level, where: Any) -> None:
        """``exists_key``: an ``EXISTS (SELECT 1 FROM p WHERE p.id = c.fk AND p.<tenant> = ?)`` at the top of
        ``level``'s WHERE, with ``p`` protected in it, pins ``c.fk`` (a relation of ``level``) to the key of a
        protected ``p`` row in every row of ``level``. Under OR or NOT, uncorrelated, or with ``p`` not protected,
        it pins nothing."""
        for node in conjuncts(where):
            link = node.get("SubLink") if isinstance(node, dict) else None
            if link is None or link.get("subLinkType") != "EXISTS_SUBLINK":
                continue
            select = (link.get("subselect") or {}).get("SelectStmt")
            inner = self.sublevels.get(id(select)) if select is not None else None
            if inner is None or inner.parent is not level:
                continue
            protected = {p.key: p for p in inner.rels if p.kind == "table" and p.verdict == "present"}
            if not protected:
                continue
            for atom in self._atoms(conjuncts(inner.where), inner):  # the WHERE holds for every row of the EXISTS
                if atom.right is None:
                    continue
                for (p_key, p_col), (other_key, c_col) in ((atom.left, atom.right), (atom.right, atom.left)):
                    p = protected.get(p_key)
                    c = level.qualifiers.get(other_key[1:]) if p is not None and other_key[:1] == "^" else None
                    if p is None or c is None or c.kind == "function" or c.key.startswith("?"):
                        continue
                    self.pins.setdefault(id(c), []).append((c_col, p, p_col))
                    if self._keyed_to(c, c_col, p, p_col):
                        self.pinned_levels.add(id(level))

    def _keyed_to(self, rel: _Rel, column: str, p: _Rel, p_column: str) -> bool:
        """Whether ``rel.column = p.p_column`` makes ``rel``'s row belong to ``p``'s row: a declared foreign key
        between the two (either direction), or the same unique column of the same table (a declared foreign key
        refers to it). A derived table's or CTE's column counts as the table column it comes from."""
        if rel.kind != "table":
            traced = self._trace(rel, column, 0)
            if traced is None:
                return False
            rel, column = traced
        if rel.table is None or p.table is None or self.fk_links is None:
            return False
        if rel.table == p.table and column == p_column:  # a declared foreign key refers to that very column
            return any(
                not refers and len(pairs) == 1 and next(iter(pairs))[0] == p_column
                for keys in self.fk_links(p.table, False).values()
                for pairs, refers in keys
            )
        wanted = frozenset({(column, p_column)})
        return any(pairs <= wanted for pairs, _refers in self.fk_links(rel.table, False).get(p.table, ()))

    def _exists_key(self, rel: _Rel, level: _Level) -> tuple[InheritedReason, str] | None:
        """``exists_key``: ``rel``'s own column is pinned (see :meth:`_pin`), or ``rel`` is equated (joined, or
        correlated from a subquery) with a pinned column, and that column keys ``rel`` to the protected row."""
        candidates = list(self.pins.get(id(rel), ()))
        for (_mine, my_col), (other_key, other_col) in rel.links:
            if other_key.startswith("^"):
                qualifier = other_key[1:]
                ancestor = level.parent
                while ancestor is not None and qualifier not in ancestor.qualifiers:
                    ancestor = ancestor.parent
                other = ancestor.qualifiers.get(qualifier) if ancestor is not None else None
            else:
                other = level.qualifiers.get(other_key)
            if other is None:
                continue
            found = [(my_col, p, p_col) for c_col, p, p_col in self.pins.get(id(other), ()) if c_col == other_col]
            if not found and other.kind != "table":  # a derived table's column: pinned inside it
                traced = self._trace(other, other_col, 0)
                if traced is not None:
                    source, column = traced
                    found = [(my_col, p, p_col) for c_col, p, p_col in self.pins.get(id(source), ()) if c_col == column]
            candidates.extend(found)
        for column, p, p_col in candidates:
            if self._keyed_to(rel, column, p, p_col):
                return (
                    "exists_key",
                    f"{rel.key}.{column} is a key an EXISTS pins to a protected {p.table} row ({p.key}.{p_col})",
                )
        return None

    @staticmethod
    def _holding_joins(level: _Level, rel: _Rel) -> list[int]:
        """The joins whose ON condition holds in every row where ``rel`` is not null.

        First the relations that are then non-null too: the level's cores, and up ``rel``'s path the core of the
        other side of each INNER join and of each outer join ``rel`` is on the nullable side of. Then a join's ON
        holds if it is INNER and one of its relations is among them, LEFT and one of its right side, RIGHT and one
        of its left side, FULL and one of each side.
        """
        if not level.joins:
            return []
        index = rel.index
        present = {index} | level.cores
        for join, side in rel.path:
            jointype, _left, _right, lcore, rcore = level.joins[join]
            if jointype == "JOIN_INNER":
                present |= rcore if side == "L" else lcore
            elif jointype == "JOIN_LEFT" and side == "R":
                present |= lcore
            elif jointype == "JOIN_RIGHT" and side == "L":
                present |= rcore
        holding: list[int] = []
        for join, (jointype, left, right, _lcore, _rcore) in enumerate(level.joins):
            if jointype == "JOIN_INNER":
                ok = not present.isdisjoint(left) or not present.isdisjoint(right)
            elif jointype == "JOIN_LEFT":
                ok = not present.isdisjoint(right)
            elif jointype == "JOIN_RIGHT":
                ok = not present.isdisjoint(left)
            else:
                ok = not present.isdisjoint(left) and not present.isdisjoint(right)
            if ok:
                holding.append(join)
        return holding

    def _atoms(self, nodes: list[Any], level: _Level, depth: int = 0) -> list[_Atom]:
        atoms: list[_Atom] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            body = node.get("A_Expr")
            if body is not None:
                atom = self._atom(body, level)
                if atom is not None:
                    atoms.append(atom)
                continue
            body = node.get("BoolExpr")
            if body is not None and body.get("boolop") == "OR_EXPR":
                atoms.extend(self._or_atoms(body.get("args") or (), level, depth + 1))
        return atoms

    def _or_atoms(self, arms: Iterable[Any], level: _Level, depth: int) -> list[_Atom]:
        """What holds in every arm of an OR: a column filtered in each (against the values of all arms), an
        equality between columns stated in each."""
        self._check(depth)
        direct: dict[_Key, list[Value]] | None = None
        links: set[frozenset[_Key]] = set()
        for arm in arms:
            arm_direct: dict[_Key, list[Value]] = {}
            arm_links: set[frozenset[_Key]] = set()
            for atom in self._atoms(conjuncts(arm), level, depth + 1):
                if atom.right is None:
                    arm_direct.setdefault(atom.left, []).extend(atom.values)
                else:
                    arm_links.add(frozenset((atom.left, atom.right)))
            if direct is None:
                direct, links = arm_direct, arm_links
            else:
                direct = {k: direct[k] + v for k, v in arm_direct.items() if k in direct}
                links &= arm_links
            if not direct and not links:
                return []
        out = [_Atom(key, None, tuple(values), "OR") for key, values in (direct or {}).items()]
        for pair in links:
            a, b = sorted(pair)
            out.append(_Atom(a, b))
        return out

    def _atom(self, body: Node, level: _Level) -> _Atom | None:
        """The atom an ``A_Expr`` stands for (memoized per level: filters and verdicts both ask)."""
        memo = level.memo
        key = id(body)
        if key in memo:
            return memo[key]
        atom = self._make_atom(body, level)
        memo[key] = atom
        return atom

    def _make_atom(self, body: Node, level: _Level) -> _Atom | None:
        names = body.get("name")
        if not names or (names[-1].get("String") or {}).get("sval") != "=":
            return None
        kind = body.get("kind")
        lexpr, rexpr = body.get("lexpr"), body.get("rexpr")
        if kind == "AEXPR_OP":
            lf, rf = _column_fields(lexpr), _column_fields(rexpr)
            if lf is not None and rf is not None:
                lk, rk = self._key(lf, level), self._key(rf, level)
                if lk is not None and rk is not None and lk != rk:
                    return _Atom(lk, rk)
                return None
            fields, other = (lf, rexpr) if lf is not None else (rf, lexpr)
            if fields is None:
                return None
            value = value_of(other)
            key = self._key(fields, level)
            return _Atom(key, None, (value,)) if value is not None and key is not None else None
        if kind == "AEXPR_IN":
            fields = _column_fields(lexpr)
            items = (rexpr.get("List") or {}).get("items") if isinstance(rexpr, dict) else rexpr
            if fields is None or not isinstance(items, list) or not items:
                return None
            values = [value_of(item) for item in items]
            if any(v is None for v in values):
                return None
            key = self._key(fields, level)
            return _Atom(key, None, tuple(v for v in values if v is not None), "IN") if key is not None else None
        if kind == "AEXPR_OP_ANY":
            fields = _column_fields(lexpr)
            if fields is None or not isinstance(rexpr, dict):
                return None
            array = rexpr.get("A_ArrayExpr")
            if array is not None:
                found = [value_of(e) for e in array.get("elements") or ()]
                if not found or any(v is None for v in found):
                    return None
                values_any = tuple(v for v in found if v is not None)
            else:
                single = value_of(rexpr)
                if single is None:
                    return None
                values_any = (single,)
            key = self._key(fields, level)
            return _Atom(key, None, values_any, "ANY") if key is not None else None
        return None

    @staticmethod
    def _key(fields: list[Any], level: _Level) -> _Key | None:
        """Resolve a column reference to ``(relation key, column)`` within ``level`` (see the module docstring)."""
        if len(fields) == 2:  # the usual ``alias.column``
            column = _name(fields[1])
            qualifier = _name(fields[0])
            if not column:
                return None
            rel = level.qualifiers.get(qualifier)
            return (rel.key, column) if rel is not None else ("^" + qualifier, column)
        names = [_name(f) for f in fields]
        column = names[-1]
        if not column:
            return None
        if len(names) > 1:
            qualifier = ".".join(names[-3:-1]) if len(names) > 2 else names[0]
            rel = level.qualifiers.get(qualifier) or level.qualifiers.get(names[-2])
            return (rel.key, column) if rel is not None else ("^" + qualifier, column)
        merged = level.merged.get(column)
        if merged is not None:
            return (merged.key, column)
        candidates = [r for r in level.rels if r.column == column or column in r.others]
        if len(candidates) == 1:
            return (candidates[0].key, column)
        if len(candidates) > 1:
            return ("?", column)  # ambiguous: PostgreSQL would reject it; belongs to no relation
        if len(level.rels) == 1 and level.rels[0].column is None:
            return (level.rels[0].key, column)
        return ("", column)

    # -- helpers -------------------------------------------------------------------------------------------------

    def _check(self, depth: int) -> None:
        if depth > self.max_depth:
            raise TooDeepError(f"statement nested deeper than {self.max_depth} levels")

    def _open_group(self) -> list[ScopeVerdict]:
        group: list[ScopeVerdict] = []
        self.groups.append(group)
        return group

    def _with(self, with_clause: Node | None, ctes: frozenset[str], depth: int) -> frozenset[str]:
        if not with_clause:
            return ctes
        items = [c.get("CommonTableExpr") or {} for c in with_clause.get("ctes") or ()]
        visible = ctes | {str(c.get("ctename", "")).lower() for c in items}
        for cte in items:
            name = str(cte.get("ctename", "")).lower()
            query = cte.get("ctequery") or {}
            select = query.get("SelectStmt")
            if select is not None and not with_clause.get("recursive") and not cte.get("aliascolnames"):
                self._check(depth + 1)
                saved, self.stack = self.stack, []
                try:
                    found = self.select(select, f"cte:{name}", visible, depth + 2, False)
                finally:
                    self.stack = saved
                if found is not None:
                    self.cte_levels[name] = found
            else:
                self.statement(query, f"cte:{name}", visible, depth + 1, False)
        return visible

    def _returning(self, s: Node, ctes: frozenset[str], depth: int) -> None:
        returning = s.get("returningClause")
        exprs = returning.get("exprs") if isinstance(returning, dict) else s.get("returningList")
        self._exprs(exprs, None, ctes, depth)

    @staticmethod
    def _rel_key(relation: Node) -> str:
        alias = (relation.get("alias") or {}).get("aliasname")
        return str(alias or relation.get("relname", "")).lower()

    @staticmethod
    def _qualified(relation: Node) -> str:
        relname = str(relation.get("relname", "")).lower()
        schema = relation.get("schemaname")
        return f"{str(schema).lower()}.{relname}" if schema else relname

    def _register(self, relation: Node) -> str | None:
        relname = str(relation.get("relname", "")).lower()
        if not relname:
            return None
        self.tables.setdefault(relname, None)
        if self._column(relation) is not None:
            self.tenant.setdefault(relname, None)
        return relname

    def _column(self, relation: Node) -> str | None:
        """The tenant column of a ``RangeVar`` (looked up once per walk)."""
        qualified = self._qualified(relation)
        try:
            return self.columns[qualified]
        except KeyError:
            pass
        column = self.column_for(qualified)
        self.columns[qualified] = column
        if column is not None and not self._root(relation):
            self.tenant_names.add(column)
        return column

    def _root(self, relation: Node) -> bool:
        """Whether a ``RangeVar`` names the root table of a tenant key (judged by its key column)."""
        return self.is_root is not None and self.is_root(self._qualified(relation))

    def _others(self, relation: Node) -> tuple[str, ...]:
        """A tenant hierarchy: the key columns of a ``RangeVar`` besides its tenant column (once per walk)."""
        qualified = self._qualified(relation)
        found = self.others.get(qualified)
        if found is None and self.hierarchy is not None:
            found = self.others[qualified] = self.hierarchy.other_columns(qualified)
        return found or ()

    def _named_key(self, rel: _Rel, column: str) -> bool:
        """Whether ``column`` is one of ``rel``'s other key columns (a tenant hierarchy). A key column that the
        statement names on a tenant table (qualified, written, or compared) shows that the table has it, so it
        becomes one, also when discovery never saw the table (a ``tenant_tables`` entry names one column)."""
        if column in rel.others:
            return True
        if not self.key_columns or rel.column is None or column == rel.column or column not in self.key_columns:
            return False
        rel.others = (*rel.others, column)
        return True

    def _key_of(self, table: str | None, column: str) -> str | None:
        """The finer key ``column`` holds (a tenant hierarchy), ``None`` for the root key or without one."""
        return self.hierarchy.key_of(table, column) if self.hierarchy is not None else None

    def _written(self, node: Any, key: str | None = None) -> None:
        value = value_of(node)
        if value is not None:
            if key is None:
                self.written_values.append(value)
            else:
                self.key_written_values.setdefault(key, []).append(value)

    def _written_from_select(self, select: Node, index: int, key: str | None = None) -> None:
        """INSERT ... SELECT: the value written to column ``index``, including SQLAlchemy's insertmanyvalues form
        ``SELECT p0::INT, p1 FROM (VALUES (...), (...)) AS imp_sen(p0, p1, sen_counter)``."""
        if select.get("op", "SETOP_NONE") != "SETOP_NONE":
            return
        targets = select.get("targetList") or []
        if index >= len(targets):
            return
        val = (targets[index].get("ResTarget") or {}).get("val")
        value = value_of(val)
        if value is not None:
            self._written_value(value, key)
            return
        fields = _column_fields(val)
        if fields is None:
            return
        name = _name(fields[-1])
        for item in select.get("fromClause") or ():
            sub = item.get("RangeSubselect") if isinstance(item, dict) else None
            if sub is None:
                continue
            colnames = [_name(c) for c in (sub.get("alias") or {}).get("colnames") or ()]
            values_body = (sub.get("subquery") or {}).get("SelectStmt") or {}
            if name not in colnames or "valuesLists" not in values_body:
                continue
            position = colnames.index(name)
            for row in values_body.get("valuesLists") or ():
                items = (row.get("List") or {}).get("items") or []
                if position < len(items):
                    self._written(items[position], key)
            return

    def _written_value(self, value: Value, key: str | None) -> None:
        if key is None:
            self.written_values.append(value)
        else:
            self.key_written_values.setdefault(key, []).append(value)


def _pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{a} = {b}" for a, b in sorted(pairs))


def _combine(operations: list[str]) -> int:
    """Index of the statement whose operation represents a multi-statement string (first write, else first read)."""
    for index, op in enumerate(operations):
        if op in _WRITES:
            return index
    for index, op in enumerate(operations):
        if op == "SELECT":
            return index
    return 0


def walk(
    stmts: list[Node],
    *,
    column_for: Callable[[str], str | None],
    tenant_columns: Iterable[str],
    max_depth: int,
    has_sublinks: bool = True,
    fk_links: FkLinks | None = None,
    is_root: Callable[[str], bool] | None = None,
    hierarchy: Hierarchy | None = None,
) -> WalkResult:
    """Walk parsed statements (``[{"stmt": {...}}, ...]``). Raises :class:`TooDeepError` past ``max_depth``.

    ``has_sublinks=False`` (no ``SubLink`` anywhere in the tree) lets the walk skip expressions outside filters.
    ``fk_links`` (declared keys between tables) and ``is_root`` (tenant root tables) come from
    :class:`~tenantwatch.sql.tables.TenantTables`.
    """
    walker = _Walker(column_for, tenant_columns, max_depth, fk_links, is_root, hierarchy=hierarchy)
    walker.sublinks = has_sublinks
    operations: list[str] = []
    mains: list[str | None] = []
    several = len(stmts) > 1
    for number, raw in enumerate(stmts, start=1):
        scope = f"stmt:{number}" if several else "main"
        walker.main_table = None
        walker.main_decided = False
        operations.append(walker.statement(raw.get("stmt") or {}, scope, frozenset(), 0, True))
        mains.append(walker.main_table)
    walker.settle()
    chosen = _combine(operations) if operations else 0
    operation = operations[chosen] if operations else "OTHER"
    main_table = mains[chosen] if mains else None
    if main_table is None and walker.tables:
        main_table = next(iter(walker.tables))
    return WalkResult(
        operation=operation,
        tables=tuple(walker.tables),
        tenant_tables=tuple([t for t in walker.tables if t in walker.tenant]),
        main_table=main_table,
        scopes=tuple([v for group in walker.groups for v in group]),
        filter_values=tuple(walker.filter_values),
        written_values=tuple(walker.written_values),
        key_filter_values=tuple((k, tuple(v)) for k, v in walker.key_filter_values.items()),
        key_written_values=tuple((k, tuple(v)) for k, v in walker.key_written_values.items()),
    )
