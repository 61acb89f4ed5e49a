"""Row level security coverage of a PostgreSQL database's tenant tables: which have RLS enabled, which forced.

The share of tenant tables with RLS enabled **and** forced is the ``tenantwatch.rls.coverage`` gauge: ``FORCE`` makes
the policies apply to the table's owner too, so an application that connects as the owner is not silently exempt.
Both ``tenantwatch audit`` (its lints and ``--export``) and the instrumentation (on the first connect of each
PostgreSQL engine) read it here, with one catalog query.

Tenant tables are the ones :class:`~tenantwatch.sql.tables.TenantTables` names (the rules file, then discovery):
ordinary and partitioned tables of the non-system schemas (partitions and views are left out: a policy lives on the
table that is queried), counted when the tenant column it names exists on the table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from tenantwatch.sql.tables import TenantTables, _fetch_all, _rollback_quietly, _transaction_idle

__all__ = ["RLS_STATES", "RlsCoverage", "RlsTable", "read_rls_coverage"]

logger = logging.getLogger(__name__)

RLS_STATES: Final = ("forced", "enabled", "disabled")
"""A tenant table's RLS state: enabled and forced, enabled only, off."""

_STATEMENT_TIMEOUT_MS: Final = 2000
"""The catalog query gives up after this long (set only inside a transaction this module opened)."""

_TABLES_SQL: Final = (
    "SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, "
    "pg_catalog.pg_get_userbyid(c.relowner), current_database(), "
    "ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
    "WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' ESCAPE '\\' "
    "ORDER BY n.nspname, c.relname"
)


@dataclass(frozen=True, slots=True)
class RlsTable:
    """One tenant table and its row level security flags."""

    oid: int
    schema: str
    name: str
    column: str
    """The tenant column (lower case, as :class:`TenantTables` names it)."""
    enabled: bool
    forced: bool
    owner: str
    columns: tuple[str, ...]
    """Every column of the table, in order."""

    @property
    def qualified(self) -> str:
        """``schema.name``, quoted where SQL needs it."""
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def display(self) -> str:
        """``schema.name`` unquoted, for messages."""
        return f"{self.schema}.{self.name}"

    @property
    def state(self) -> str:
        """``forced``, ``enabled`` or ``disabled`` (one of :data:`RLS_STATES`)."""
        if self.enabled and self.forced:
            return "forced"
        return "enabled" if self.enabled else "disabled"


@dataclass(frozen=True, slots=True)
class RlsCoverage:
    """The tenant tables of one database with their RLS flags."""

    database: str
    tables: tuple[RlsTable, ...]

    @property
    def ratio(self) -> float | None:
        """Share of tenant tables with RLS enabled and forced; ``None`` without tenant tables."""
        if not self.tables:
            return None
        return sum(1 for table in self.tables if table.state == "forced") / len(self.tables)

    def counts(self) -> Mapping[str, int]:
        """Tenant tables per RLS state (every state present, zero included)."""
        found = dict.fromkeys(RLS_STATES, 0)
        for table in self.tables:
            found[table.state] += 1
        return found


def quote_ident(name: str) -> str:
    """``name`` as a SQL identifier: bare when PostgreSQL would read it back unchanged, double-quoted otherwise."""
    if name and name.isidentifier() and name.isascii() and name == name.lower():
        return name
    return '"' + name.replace('"', '""') + '"'


def read_rls_coverage(dbapi_connection: Any, tables: TenantTables) -> RlsCoverage:
    """The tenant tables (as ``tables`` names them) of the database behind a DB-API PostgreSQL connection, with their
    RLS flags. One catalog query; on an idle connection it runs in a transaction of its own (with a statement timeout)
    that is rolled back. Raises what the driver raises."""
    idle = _transaction_idle(dbapi_connection)
    try:
        if idle:
            _fetch_all(dbapi_connection, f"SELECT set_config('statement_timeout', '{_STATEMENT_TIMEOUT_MS}', true)")
        rows = _fetch_all(dbapi_connection, _TABLES_SQL)
        database = str(rows[0][6]) if rows else _database_name(dbapi_connection)
    finally:
        if idle:
            _rollback_quietly(dbapi_connection)
    found: list[RlsTable] = []
    for oid, schema, name, enabled, forced, owner, _database, columns in rows:
        column = tables.column_for(f"{schema}.{name}")
        names = tuple(str(c) for c in columns or ())
        if column is None or column not in {c.lower() for c in names}:
            continue
        found.append(RlsTable(int(oid), str(schema), str(name), column, bool(enabled), bool(forced), str(owner), names))
    return RlsCoverage(database, tuple(found))


def _database_name(dbapi_connection: Any) -> str:
    rows = _fetch_all(dbapi_connection, "SELECT current_database()")
    return str(rows[0][0]) if rows else ""
