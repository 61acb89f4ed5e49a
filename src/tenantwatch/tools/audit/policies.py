"""What a row level security policy expression does with the tenant: parsed with pglast, never matched as text.

PostgreSQL stores a policy's ``USING`` and ``WITH CHECK`` expressions deparsed (``pg_policies.qual`` /
``with_check``): ``(organization_id = (current_setting('app.tenant_id'::text, true))::integer)``. Each is judged
the way tenantwatch judges a ``WHERE`` clause (docs/analysis.md): it scopes the rows to the tenant only when a
comparison of a tenant column with the tenant setting is ANDed at its top (an ``OR`` scopes only when each arm
does).

* ``always_true``: no expression on a permissive policy, a constant true (``true``, ``1 = 1``), a column compared
  with itself, or an ``OR`` with such an arm: every row passes.
* ``scoped``: ``tenant_column = <expression reading current_setting('<setting>')>`` (either side, casts, ``NULLIF``
  and ``COALESCE`` around the setting allowed; ``=``, ``= ANY (...)`` and ``IN (...)``).
* ``unscoped``: anything else; :attr:`PolicyVerdict.reads_column` / :attr:`PolicyVerdict.reads_setting` tell what
  is missing. A helper function (``tenant_id = app.current_tenant()``) is ``unscoped`` too: its body is not read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["PolicyVerdict", "judge_expression"]

Verdict = Literal["always_true", "scoped", "unscoped", "unparsable"]

_MAX_EXPRESSION_CHARS: Final = 100_000
"""Longer expressions are not parsed (``unparsable``)."""

_SETTING_FUNCTIONS: Final = frozenset({"current_setting"})


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    """What one policy expression does with the tenant."""

    verdict: Verdict
    reads_column: bool = False
    """Some tenant column of the table appears in the expression."""
    reads_setting: bool = False
    """Some tenant setting is read (``current_setting('<setting>')``)."""
    error: str | None = None
    """Why the expression could not be parsed (``unparsable``)."""
    other_settings: tuple[str, ...] = ()
    """Settings read with ``current_setting`` that are not the tenant setting (a setting of another name, such as
    ``app.tenant`` when tenantwatch's is ``app.tenant_id``: then the rules file's ``rls.setting`` is likely wrong)."""

    @property
    def problem(self) -> str:
        """What is wrong, for a lint's detail line (empty for ``scoped``)."""
        if self.verdict == "scoped":
            return ""
        if self.verdict == "always_true":
            return "is always true: every row passes"
        if self.verdict == "unparsable":
            return f"could not be parsed ({self.error})"
        if not self.reads_column and not self.reads_setting:
            return "compares neither the tenant column nor the tenant setting"
        if not self.reads_column:
            return "does not compare the tenant column"
        if not self.reads_setting:
            if self.other_settings:
                found = ", ".join(repr(name) for name in self.other_settings)
                return (
                    f"does not read the tenant setting (it reads {found}: if that is the application's tenant setting, "
                    "declare it as rls.setting in the rules file, --config)"
                )
            return "does not read the tenant setting"
        return "reads the tenant column and setting, but not as a comparison ANDed at its top"


def judge_expression(expression: str | None, columns: frozenset[str], settings: frozenset[str]) -> PolicyVerdict:
    """Judge a policy expression (``pg_policies.qual`` or ``with_check``) against the table's tenant ``columns``
    and the tenant ``settings`` (lower case). ``None`` (no expression) is ``always_true``."""
    if expression is None or not expression.strip():
        return PolicyVerdict("always_true")
    if len(expression) > _MAX_EXPRESSION_CHARS:
        return PolicyVerdict("unparsable", error=f"longer than {_MAX_EXPRESSION_CHARS} characters")
    try:
        from pglast import parse_sql

        statement: Any = parse_sql(f"SELECT ({expression})")[0].stmt
        node = statement.targetList[0].val
    except Exception as exc:  # pglast's ParseError, or an expression that is not one
        return PolicyVerdict("unparsable", error=str(exc).splitlines()[0][:200])
    judge = _Judge(columns, settings)
    reads_column = any(judge.is_column(n) for n in _walk(node))
    reads_setting = any(judge.is_setting(n) for n in _walk(node))
    if judge.always_true(node):
        return PolicyVerdict("always_true", reads_column, reads_setting)
    if judge.scoped(node):
        return PolicyVerdict("scoped", True, True)
    others = tuple(sorted({name for n in _walk(node) if (name := judge.setting_name(n)) and name not in settings}))
    return PolicyVerdict("unscoped", reads_column, reads_setting, other_settings=others)


def _walk(node: Any) -> Iterator[Any]:
    """Every AST node below ``node``, itself included."""
    from pglast.ast import Node

    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, tuple | list):
            stack.extend(current)
            continue
        if not isinstance(current, Node):
            continue
        yield current
        for name in current:
            stack.append(getattr(current, name))


def _unwrap(node: Any) -> Any:
    """``node`` without the casts around it."""
    from pglast import ast

    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _operator(node: Any) -> str:
    names = getattr(node, "name", None) or ()
    last = names[-1] if names else None
    return str(getattr(last, "sval", "") or "")


class _Judge:
    def __init__(self, columns: frozenset[str], settings: frozenset[str]) -> None:
        self.columns = columns
        self.settings = settings

    def is_column(self, node: Any) -> bool:
        from pglast import ast

        if not isinstance(node, ast.ColumnRef) or not node.fields:
            return False
        last = node.fields[-1]
        return isinstance(last, ast.String) and str(last.sval).lower() in self.columns

    def setting_name(self, node: Any) -> str | None:
        """The (lower-case) setting ``node`` reads, when it is ``current_setting('<literal>', ...)``."""
        from pglast import ast

        if not isinstance(node, ast.FuncCall) or not node.funcname or not node.args:
            return None
        name = node.funcname[-1]
        if not isinstance(name, ast.String) or str(name.sval).lower() not in _SETTING_FUNCTIONS:
            return None
        first = _unwrap(node.args[0])
        value = getattr(first, "val", None) if isinstance(first, ast.A_Const) else None
        return str(value.sval).lower() if isinstance(value, ast.String) else None

    def is_setting(self, node: Any) -> bool:
        name = self.setting_name(node)
        return name is not None and name in self.settings

    def _reads_setting_only(self, node: Any) -> bool:
        """The side opposite the tenant column: reads the setting and no tenant column."""
        nodes = list(_walk(node))
        return any(self.is_setting(n) for n in nodes) and not any(self.is_column(n) for n in nodes)

    def scoped(self, node: Any) -> bool:
        from pglast import ast
        from pglast.enums import A_Expr_Kind, BoolExprType

        node = _unwrap(node)
        if isinstance(node, ast.BoolExpr):
            if node.boolop == BoolExprType.AND_EXPR:
                return any(self.scoped(arg) for arg in node.args or ())
            if node.boolop == BoolExprType.OR_EXPR:
                return all(self.scoped(arg) for arg in node.args or ())
            return False
        if not isinstance(node, ast.A_Expr) or _operator(node) != "=":
            return False
        if node.kind not in (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_IN):
            return False
        left, right = _unwrap(node.lexpr), node.rexpr
        if self.is_column(left) and self._reads_setting_only(right):
            return True
        return node.kind == A_Expr_Kind.AEXPR_OP and self.is_column(_unwrap(right)) and self._reads_setting_only(left)

    def always_true(self, node: Any) -> bool:
        from pglast import ast
        from pglast.enums import A_Expr_Kind, BoolExprType

        node = _unwrap(node)
        if isinstance(node, ast.A_Const):
            value = node.val
            return not node.isnull and isinstance(value, ast.Boolean) and bool(value.boolval)
        if isinstance(node, ast.BoolExpr):
            if node.boolop == BoolExprType.OR_EXPR:
                return any(self.always_true(arg) for arg in node.args or ())
            if node.boolop == BoolExprType.AND_EXPR:
                return all(self.always_true(arg) for arg in node.args or ())
            return False
        if isinstance(node, ast.A_Expr) and node.kind == A_Expr_Kind.AEXPR_OP and _operator(node) in ("=", ">=", "<="):
            left, right = _unwrap(node.lexpr), _unwrap(node.rexpr)
            if isinstance(left, ast.A_Const) and isinstance(right, ast.A_Const):
                return not left.isnull and left.val == right.val
            if isinstance(left, ast.ColumnRef) and isinstance(right, ast.ColumnRef):
                return left.fields == right.fields  # a column compared with itself: true for every non-null value
        return False
