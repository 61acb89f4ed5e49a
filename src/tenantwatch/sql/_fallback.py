"""Fallback parser for SQL that PostgreSQL's grammar rejects (SQLite/MySQL idioms): sqlglot, converted to the shape
of libpg_query's JSON parse tree so that the one scope walk (:mod:`tenantwatch.sql._scope`) judges it.

Only what the walk reads is converted faithfully (statements, FROM/JOIN, WHERE/ON, comparisons, parameters,
constants, subqueries, CTEs, set operations, INSERT columns/values/conflict clauses, UPDATE SET); any other
expression becomes an opaque node that still carries its children, so subqueries inside it are found.

sqlglot is about fifty times slower than libpg_query, so callers cap the statement size tighter for it.

Statement text never reaches a log from here: sqlglot logs whole statements at WARNING (``'SET PASSWORD … =
'hunter2'' contains unsupported syntax``), so its records are dropped while this module parses, and a
:class:`FallbackError` says what failed and where (line, column), never the text.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

__all__ = ["FallbackError", "parse"]

Node = dict[str, Any]

_PARAM = re.compile(r"^\$(\d+)$")


class FallbackError(ValueError):
    """sqlglot could not parse the statement either."""


def _s(text: str) -> Node:
    return {"String": {"sval": text}}


_parsing = threading.local()


class _WhileParsing(logging.Filter):
    """Drops sqlglot's log records emitted while this module parses (they quote the statement)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_parsing, "active", False)


_FILTER = _WhileParsing()


def _quiet_sqlglot() -> None:
    sqlglot_logger = logging.getLogger("sqlglot")
    if _FILTER not in sqlglot_logger.filters:
        sqlglot_logger.addFilter(_FILTER)


def _error_message(exc: Exception) -> str:
    """What failed and where, without the statement text sqlglot's messages quote."""
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        description = str(first.get("description") or type(exc).__name__)
        return f"{description} (line {first.get('line')}, column {first.get('col')})"
    return type(exc).__name__


def parse(sql: str) -> list[Node]:
    """Parse ``sql`` (``$n`` placeholders) into libpg_query-shaped statements ``[{"stmt": {...}}]``."""
    import sqlglot
    from sqlglot import exp

    _quiet_sqlglot()
    dialect = "mysql" if "`" in sql else "sqlite"
    _parsing.active = True
    try:
        trees = sqlglot.parse(sql, read=dialect)
    except Exception as exc:  # sqlglot raises its own ParseError/TokenError hierarchy
        raise FallbackError(_error_message(exc)) from exc
    finally:
        _parsing.active = False
    converter = _Converter(exp)
    out: list[Node] = []
    for tree in trees:
        if tree is None:
            continue
        if isinstance(tree, exp.Command):  # sqlglot's "I could not parse this"
            raise FallbackError(f"unsupported statement {tree.name!r}")
        node = converter.statement(tree)
        if "VariableSetStmt" in node and not isinstance(tree, _other_statements(exp)):
            raise FallbackError(f"not a statement: {type(tree).__name__}")
        out.append({"stmt": node})
    return out


def _other_statements(exp: Any) -> tuple[type, ...]:
    """sqlglot statement classes that are analyzed as operation OTHER (a bare expression is not a statement)."""
    names = (
        "Pragma",
        "Transaction",
        "Commit",
        "Rollback",
        "Create",
        "Drop",
        "Set",
        "Use",
        "Alter",
        "Describe",
        "Show",
        "Analyze",
        "Merge",
        "Grant",
        "Revoke",
        "TruncateTable",
        "Cache",
        "Uncache",
        "Refresh",
    )
    return tuple(getattr(exp, name) for name in names if isinstance(getattr(exp, name, None), type))


class _Converter:
    """sqlglot expressions -> libpg_query JSON shapes (the subset the scope walk reads)."""

    def __init__(self, exp: Any) -> None:
        self.exp = exp

    # -- statements ----------------------------------------------------------------------------------------------

    def statement(self, e: Any) -> Node:
        exp = self.exp
        if isinstance(e, exp.Subquery):
            return self.statement(e.this)
        if isinstance(e, exp.Select):
            return {"SelectStmt": self.select_body(e)}
        if isinstance(e, exp.Union | exp.Intersect | exp.Except):
            return {"SelectStmt": self.setop_body(e)}
        if isinstance(e, exp.Insert):
            return {"InsertStmt": self.insert_body(e)}
        if isinstance(e, exp.Update):
            return {"UpdateStmt": self.update_body(e)}
        if isinstance(e, exp.Delete):
            return {"DeleteStmt": self.delete_body(e)}
        if isinstance(e, exp.Values):
            return {"SelectStmt": {"valuesLists": self.values_lists(e), "op": "SETOP_NONE"}}
        return {"VariableSetStmt": {}}

    def _with(self, e: Any, body: Node) -> Node:
        with_ = e.args.get("with_") or e.args.get("with")
        if with_ is not None:
            ctes = [
                {"CommonTableExpr": {"ctename": cte.alias_or_name.lower(), "ctequery": self.statement(cte.this)}}
                for cte in with_.expressions
            ]
            body["withClause"] = {"ctes": ctes, "recursive": bool(with_.args.get("recursive"))}
        return body

    def _body(self, e: Any) -> Node:
        """The body of a statement node (set-operation arms are unwrapped in libpg_query's JSON)."""
        node = self.statement(e)
        return next(iter(node.values())) if node else {}

    def setop_body(self, e: Any) -> Node:
        exp = self.exp
        op = "SETOP_UNION" if isinstance(e, exp.Union) else "SETOP_INTERSECT"
        if isinstance(e, exp.Except):
            op = "SETOP_EXCEPT"
        body: Node = {"op": op, "larg": self._body(e.this), "rarg": self._body(e.expression)}
        self._tail(e, body)
        return self._with(e, body)

    def select_body(self, e: Any) -> Node:
        body: Node = {"op": "SETOP_NONE", "targetList": [self.target(x) for x in e.expressions]}
        from_ = e.args.get("from_") or e.args.get("from")
        items: list[Node] = []
        if from_ is not None:
            items.append(self.from_item(from_.this))
            items.extend(self.from_item(x) for x in from_.expressions or ())
        joins = e.args.get("joins") or []
        if items and joins:
            current = items.pop()
            for join in joins:
                current = self.join(current, join)
            items.append(current)
        if items:
            body["fromClause"] = items
        where = e.args.get("where")
        if where is not None:
            body["whereClause"] = self.expr(where.this)
        having = e.args.get("having")
        if having is not None:
            body["havingClause"] = self.expr(having.this)
        group = e.args.get("group")
        if group is not None:
            body["groupClause"] = [self.expr(x) for x in group.expressions]
        self._tail(e, body)
        return self._with(e, body)

    def _tail(self, e: Any, body: Node) -> None:
        order = e.args.get("order")
        if order is not None:
            body["sortClause"] = [self.expr(x) for x in order.expressions]
        for key, name in (("limit", "limitCount"), ("offset", "limitOffset")):
            part = e.args.get(key)
            if part is not None:
                body[name] = self.expr(part.expression if part.args.get("expression") is not None else part.this)

    def insert_body(self, e: Any) -> Node:
        exp = self.exp
        target = e.this
        cols: list[Node] = []
        if isinstance(target, exp.Schema):
            cols = [{"ResTarget": {"name": c.name.lower()}} for c in target.expressions]
            target = target.this
        body: Node = {"relation": self.range_var(target), "cols": cols}
        source = e.expression
        if isinstance(source, exp.Values):
            body["selectStmt"] = {"SelectStmt": {"valuesLists": self.values_lists(source), "op": "SETOP_NONE"}}
        elif source is not None:
            body["selectStmt"] = self.statement(source)
        alternative = str(e.args.get("alternative") or "").upper()
        conflict = e.args.get("conflict")
        if alternative == "REPLACE":
            body["onConflictClause"] = {"action": "ONCONFLICT_UPDATE"}
        elif conflict is not None:
            body["onConflictClause"] = self.on_conflict(conflict)
        returning = e.args.get("returning")
        if returning is not None:
            body["returningList"] = [self.target(x) for x in returning.expressions]
        return self._with(e, body)

    def on_conflict(self, c: Any) -> Node:
        exp = self.exp
        updates = [x for x in c.expressions or () if isinstance(x, exp.EQ)]
        if c.args.get("nothing") or (not updates and not c.args.get("duplicate")):
            return {"action": "ONCONFLICT_NOTHING"}
        node: Node = {"action": "ONCONFLICT_UPDATE"}
        keys = c.args.get("conflict_keys") or []
        if keys and not c.args.get("duplicate"):
            node["infer"] = {"indexElems": [{"IndexElem": {"name": k.name.lower()}} for k in keys]}
        node["targetList"] = [
            {"ResTarget": {"name": x.this.name.lower(), "val": self.expr(x.expression)}} for x in updates
        ]
        where = c.args.get("where")
        if where is not None:
            node["whereClause"] = self.expr(where.this if isinstance(where, exp.Where) else where)
        return node

    def update_body(self, e: Any) -> Node:
        body: Node = {
            "relation": self.range_var(e.this),
            "targetList": [
                {"ResTarget": {"name": x.this.name.lower(), "val": self.expr(x.expression)}} for x in e.expressions
            ],
        }
        from_ = e.args.get("from_") or e.args.get("from")
        if from_ is not None:
            body["fromClause"] = [self.from_item(from_.this)]
        where = e.args.get("where")
        if where is not None:
            body["whereClause"] = self.expr(where.this)
        return self._with(e, body)

    def delete_body(self, e: Any) -> Node:
        body: Node = {"relation": self.range_var(e.this)}
        using = e.args.get("using")
        if isinstance(using, list) and using:
            body["usingClause"] = [self.from_item(x) for x in using]
        where = e.args.get("where")
        if where is not None:
            body["whereClause"] = self.expr(where.this)
        return self._with(e, body)

    def values_lists(self, v: Any) -> list[Node]:
        exp = self.exp
        rows = []
        for row in v.expressions:
            items = row.expressions if isinstance(row, exp.Tuple) else [row]
            rows.append({"List": {"items": [self.expr(x) for x in items]}})
        return rows

    # -- FROM ----------------------------------------------------------------------------------------------------

    def range_var(self, t: Any) -> Node:
        body: Node = {"relname": t.name.lower()}
        db = t.args.get("db")
        if db is not None and db.name:
            body["schemaname"] = db.name.lower()
        alias = t.alias
        if alias:
            body["alias"] = {"aliasname": alias.lower()}
        return body

    def from_item(self, x: Any) -> Node:
        exp = self.exp
        if isinstance(x, exp.Table) and isinstance(x.this, exp.Identifier | exp.Var | exp.Dot):
            return {"RangeVar": self.range_var(x)}
        if isinstance(x, exp.Subquery):
            node: Node = {"subquery": self.statement(x.this)}
            if x.alias:
                node["alias"] = {"aliasname": x.alias.lower()}
            return {"RangeSubselect": node}
        return {"RangeFunction": {"functions": [self.expr(x)], "alias": {"aliasname": (x.alias or "").lower()}}}

    def join(self, left: Node, j: Any) -> Node:
        side = str(j.args.get("side") or "").upper()
        kind = str(j.args.get("kind") or "").upper()
        jointype = {"LEFT": "JOIN_LEFT", "RIGHT": "JOIN_RIGHT", "FULL": "JOIN_FULL"}.get(side, "JOIN_INNER")
        if kind == "FULL":
            jointype = "JOIN_FULL"
        body: Node = {"jointype": jointype, "larg": left, "rarg": self.from_item(j.this)}
        on = j.args.get("on")
        if on is not None:
            body["quals"] = self.expr(on)
        using = j.args.get("using")
        if using:
            body["usingClause"] = [_s(u.name.lower()) for u in using]
        if "NATURAL" in (kind, str(j.args.get("method") or "").upper()):
            body["isNatural"] = True
        return {"JoinExpr": body}

    # -- expressions ---------------------------------------------------------------------------------------------

    def target(self, x: Any) -> Node:
        exp = self.exp
        if isinstance(x, exp.Alias):
            return {"ResTarget": {"name": x.alias.lower(), "val": self.expr(x.this)}}
        return {"ResTarget": {"val": self.expr(x)}}

    def _param(self, text: str) -> Node | None:
        match = _PARAM.match(text)
        return {"ParamRef": {"number": int(match.group(1))}} if match else None

    def expr(self, x: Any) -> Node:
        exp = self.exp
        if x is None:
            return {}
        if isinstance(x, exp.Paren):
            return self.expr(x.this)
        if isinstance(x, exp.Column):
            param = self._param(x.name) if not x.table else None
            if param is not None:
                return param
            parts = [p.name.lower() for p in x.parts]
            fields = [_s(p) for p in parts]
            if isinstance(x.this, exp.Star):
                fields[-1] = {"A_Star": {}}
            return {"ColumnRef": {"fields": fields}}
        if isinstance(x, exp.Placeholder | exp.Parameter):
            param = self._param(x.sql())
            return param if param is not None else {"ParamRef": {"number": 0}}
        if isinstance(x, exp.Literal):
            if x.is_string:
                return {"A_Const": {"sval": {"sval": x.this}}}
            key = "ival" if re.fullmatch(r"-?\d+", x.this) else "fval"
            return {"A_Const": {key: {key: int(x.this) if key == "ival" else x.this}}}
        if isinstance(x, exp.Boolean):
            return {"A_Const": {"boolval": {"boolval": bool(x.this)}}}
        if isinstance(x, exp.Null):
            return {"A_Const": {"isnull": True}}
        if isinstance(x, exp.And | exp.Or):
            return {
                "BoolExpr": {
                    "boolop": "AND_EXPR" if isinstance(x, exp.And) else "OR_EXPR",
                    "args": [self.expr(x.this), self.expr(x.expression)],
                }
            }
        if isinstance(x, exp.Not):
            return {"BoolExpr": {"boolop": "NOT_EXPR", "args": [self.expr(x.this)]}}
        if isinstance(x, exp.Neg):
            return {"A_Expr": {"kind": "AEXPR_OP", "name": [_s("-")], "rexpr": self.expr(x.this)}}
        if isinstance(x, exp.Cast | exp.TryCast):
            return {"TypeCast": {"arg": self.expr(x.this)}}
        if isinstance(x, exp.EQ):
            right = x.expression
            if isinstance(right, exp.Any):
                return {
                    "A_Expr": {
                        "kind": "AEXPR_OP_ANY",
                        "name": [_s("=")],
                        "lexpr": self.expr(x.this),
                        "rexpr": self.expr(right.this),
                    }
                }
            return {
                "A_Expr": {"kind": "AEXPR_OP", "name": [_s("=")], "lexpr": self.expr(x.this), "rexpr": self.expr(right)}
            }
        if isinstance(x, exp.In):
            query = x.args.get("query")
            if query is not None:
                return {
                    "SubLink": {
                        "subLinkType": "ANY_SUBLINK",
                        "testexpr": self.expr(x.this),
                        "subselect": self.statement(query),
                    }
                }
            return {
                "A_Expr": {
                    "kind": "AEXPR_IN",
                    "name": [_s("=")],
                    "lexpr": self.expr(x.this),
                    "rexpr": {"List": {"items": [self.expr(i) for i in x.expressions]}},
                }
            }
        if isinstance(x, exp.Array):
            return {"A_ArrayExpr": {"elements": [self.expr(i) for i in x.expressions]}}
        if isinstance(x, exp.Subquery):
            return {"SubLink": {"subLinkType": "EXPR_SUBLINK", "subselect": self.statement(x.this)}}
        if isinstance(x, exp.Exists):
            return {"SubLink": {"subLinkType": "EXISTS_SUBLINK", "subselect": self.statement(x.this)}}
        if isinstance(x, exp.Select | exp.Union | exp.Intersect | exp.Except):
            return {"SubLink": {"subLinkType": "EXPR_SUBLINK", "subselect": self.statement(x)}}
        if isinstance(x, exp.Binary):
            name = type(x).__name__.lower()
            return {
                "A_Expr": {
                    "kind": "AEXPR_OP",
                    "name": [_s(name)],
                    "lexpr": self.expr(x.this),
                    "rexpr": self.expr(x.expression),
                }
            }
        return {"FuncCall": {"args": [self.expr(child) for child in x.iter_expressions()]}}
