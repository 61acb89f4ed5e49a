"""RLS assist (opt-in, PostgreSQL): the tenant setting for row level security policies, set and watched.

With ``Settings.rls.enabled``, at the start of every SQLAlchemy transaction (the engine ``begin`` event, which
SQLAlchemy 2.0 fires when a connection autobegins, i.e. on the first statement of each transaction) tenantwatch runs,
on the DB-API connection and in the same round trip::

    SELECT current_setting('app.tenant_id', true), set_config('app.tenant_id', <context tenant>, true)

``set_config(..., true)`` is ``SET LOCAL``: the value lasts until the transaction ends, so a pooled connection never
carries it to the next user. The tenant set is only ever a verified one: :func:`~tenantwatch.context.current_context`
holds what a trust decision put there (the ASGI middleware, ``tenant_context``, ``trust_baggage``), never baggage
that merely arrived with a request.

With no tenant in context, or inside ``unscoped(reason)``, nothing is set and only the current value is read
(``SELECT current_setting(...)``): that read is what reveals a session-level value another piece of code left on a
pooled connection (``SET app.tenant_id = ...`` without ``LOCAL``).

A tenant hierarchy's finer keys get a setting each with ``Settings.rls.key_settings`` (``{team: app.team_id}``),
in the same statement: ``set_config('app.team_id', <context team>, true)`` when the tenant is set and the context
holds a team (only ever a trusted one, like the tenant), ``set_config('app.team_id', '', true)`` in every other
transaction, so a team left on a pooled connection, or a team without its organization, never reaches a policy.

Every db span then carries ``tenantwatch.db.rls_tenant``: the setting in force when the statement ran, as far as
tenantwatch can tell without asking the database again: the value it set (or read) at the start of the transaction,
updated by the application's own ``SET [LOCAL|SESSION] <setting> ...`` / ``set_config('<setting>', '...', ...)``
statements with a literal value (an unresolvable one leaves the value unknown, and the attribute off, until the next
transaction). ``""`` means unset. The ``stale_tenant_context`` rule compares it with ``tenant.id``.

A session-level value left on a pooled connection that differs from the tenant being set (compared canonically: the
dashed and the hex form of one UUID are one tenant) is reported on a span of
its own, recorded only then: the assist's statement, which ran while the connection carried the other tenant's
value (``tenantwatch.db.rls_tenant`` = that value, ``tenant.id`` = the context's), so ``stale_tenant_context`` fires
on it. The statements of the transaction run under the context tenant.

Other dialects are skipped (one debug log per engine). With ``AUTOCOMMIT`` isolation there is no transaction for
``SET LOCAL`` to last in: the assist only reads the setting. A failure is logged (rate-limited) and the transaction
rolled back before the application's first statement, so it starts clean; the application carries on.
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from typing import TYPE_CHECKING, Any

from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Tracer

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import current_context
from tenantwatch.core.guard import guard
from tenantwatch.core.tenant_values import same_tenant
from tenantwatch.facts import facts_for_statement
from tenantwatch.instrumentation._code_location import find_caller

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["RLS_STATE_KEY", "RlsAssist"]

logger = logging.getLogger(__name__)

RLS_STATE_KEY = "tenantwatch.rls_tenant"
"""Key in the pool connection record's ``info`` dict: the setting in force in the current transaction (``None``:
unknown)."""

_SETS = re.compile(r"(?i)\bset_config\b|^\s*(?:set|reset)\b")
"""A statement that may change a setting."""

_NAMED_STYLES = ("pyformat", "named")
"""DB-API paramstyles that bind by name (a dict); the others bind by position (a tuple)."""


class RlsAssist:
    """Sets the tenant setting at the start of each transaction and tracks its value per connection."""

    def __init__(self, settings: Settings, analyzer: Analyzer, tracer: Tracer) -> None:
        self.setting = settings.rls.setting
        self.key_settings = tuple(settings.rls.key_settings.items())
        """(tenant key, setting) pairs: the finer keys' settings, set or cleared in every transaction."""
        self.analyzer = analyzer
        self.tracer = tracer
        name = re.escape(self.setting)
        value = r"(?:'(?P<literal{n}>(?:[^']|'')*)'|(?P<word{n}>[\w.-]+))"
        self._changes = re.compile(
            rf"""(?ix)
              \bset\s+(?:(?:session|local)\s+)?{name}\s*(?:=|\bto\b)\s*{value.format(n=1)}
            | \breset\s+(?P<reset>{name})\b
            | \bset_config\s*\(\s*'{name}'\s*,\s*{value.format(n=2)}
            """
        )
        self._mentions = re.compile(name, re.IGNORECASE)
        self._skipped: weakref.WeakSet[Any] = weakref.WeakSet()

    # --- transaction start ------------------------------------------------------------------------------------

    def begin(self, conn: Any) -> None:
        """Engine ``begin`` listener: set the context tenant for this transaction (``SET LOCAL``) and read what the
        connection carried before."""
        with guard("RLS assist") as attempt:
            info = conn.info
            info[RLS_STATE_KEY] = None
            dialect = conn.dialect
            if dialect.name != "postgresql":
                self._skip(conn.engine, dialect.name)
                return
            context = current_context()
            tenant = context.tenant_id if context.unscoped_reason is None else None
            autocommit = bool(getattr(conn, "_is_autocommit_isolation", lambda: False)())
            dbapi_connection = conn.connection.dbapi_connection
            paramstyle = dialect.paramstyle
        if attempt.failed:
            return
        sets = tenant is not None and not autocommit
        assignments: list[tuple[str, str]] = [(self.setting, tenant)] if sets and tenant is not None else []
        if not autocommit:
            for key, setting in self.key_settings:
                value = context.value_of(key) if sets else None
                assignments.append((setting, value or ""))
        sql, parameters = _statement(paramstyle, self.setting, assignments)
        start = time.time_ns()
        with guard("RLS assist") as attempt:
            previous = _run(dbapi_connection, sql, parameters)
        if attempt.failed:
            _rollback_quietly(dbapi_connection)
            return
        end = time.time_ns()
        before = previous or ""
        info[RLS_STATE_KEY] = tenant if sets else before
        if sets and before and not same_tenant(before, tenant):
            self._report_leftover(conn, sql, before, start, end)

    def _skip(self, engine: Any, dialect_name: str) -> None:
        if engine not in self._skipped:
            self._skipped.add(engine)
            logger.debug("tenantwatch RLS assist: %s is not PostgreSQL; not setting %s", dialect_name, self.setting)

    def _report_leftover(self, conn: Any, sql: str, leftover: str, start: int, end: int) -> None:
        """A span for the assist's own statement, which ran while the connection carried another tenant's value."""
        if not is_instrumentation_enabled():
            return
        with guard("RLS assist"):
            where = find_caller(2)
            facts = facts_for_statement(
                self.analyzer.analyze(sql),
                None,
                current_context(),
                statement=sql,
                system="postgresql",
                code_function=where.function if where else None,
                code_filepath=where.filepath if where else None,
                code_lineno=where.lineno if where else None,
            )
            attributes: dict[str, Any] = dict(facts.to_attributes())
            attributes[A.DB_SYSTEM] = "postgresql"
            attributes[A.DB_SYSTEM_NAME] = "postgresql"
            attributes[A.DB_STATEMENT] = sql
            attributes[A.DB_RLS_TENANT] = leftover
            database = conn.engine.url.database
            name = f"SELECT {database}" if database else "SELECT"
            span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, start_time=start)
            span.end(end_time=end)

    # --- per statement ----------------------------------------------------------------------------------------

    def in_force(self, conn: Any) -> str | None:
        """The setting in force on ``conn`` for the statement about to be recorded (``None``: unknown)."""
        value: str | None = conn.info.get(RLS_STATE_KEY)
        return value

    def observe(self, conn: Any, statement: str) -> None:
        """After a statement ran: if it changed the setting itself, track the new value (or forget it)."""
        if self._mentions.search(statement) is None:
            return
        change = self._changes.search(statement)
        value: str | None
        if change is None:
            if _SETS.search(statement) is None:
                return  # reads it (current_setting), or a policy definition: nothing changes
            value = None  # sets it in a way not understood (a bound parameter): unknown from now on
        elif change.group("reset") is not None:
            value = ""
        elif change.group("literal1") is not None or change.group("literal2") is not None:
            value = (change.group("literal1") or change.group("literal2") or "").replace("''", "'")
        else:
            word = change.group("word1") or change.group("word2") or ""
            value = "" if word.lower() == "default" else None
        conn.info[RLS_STATE_KEY] = value


def _statement(paramstyle: str, read: str, assignments: list[tuple[str, str]]) -> tuple[str, Any]:
    """``SELECT current_setting(<read>, true), set_config(<name>, <value>, true), ...`` for ``paramstyle``, every
    name and value a bound parameter, and its parameters (a dict for named styles, else a tuple)."""
    values = [read]
    for name, value in assignments:
        values += [name, value]
    marks = [_mark(paramstyle, index) for index in range(len(values))]
    parts = [f"current_setting({marks[0]}, true)"]
    parts += [f"set_config({marks[1 + 2 * i]}, {marks[2 + 2 * i]}, true)" for i in range(len(assignments))]
    sql = "SELECT " + ", ".join(parts)
    if paramstyle in _NAMED_STYLES:
        return sql, {f"p{index}": value for index, value in enumerate(values)}
    return sql, tuple(values)


def _mark(paramstyle: str, index: int) -> str:
    """The placeholder of parameter ``index`` (0-based) in ``paramstyle``; ``format`` (``%s``) when unknown."""
    if paramstyle == "pyformat":
        return f"%(p{index})s"
    if paramstyle == "named":
        return f":p{index}"
    if paramstyle == "numeric_dollar":
        return f"${index + 1}"
    if paramstyle == "numeric":
        return f":{index + 1}"
    if paramstyle == "qmark":
        return "?"
    return "%s"


def _run(dbapi_connection: Any, sql: str, parameters: Any) -> str | None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, parameters)
        row = cursor.fetchone()
    finally:
        cursor.close()
    value = row[0] if row else None
    return None if value is None else str(value)


def _rollback_quietly(dbapi_connection: Any) -> None:
    with guard("RLS assist rollback"):
        dbapi_connection.rollback()
