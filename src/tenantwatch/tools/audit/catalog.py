"""One read of a PostgreSQL catalog: everything the audit's lints judge, taken once, in one read-only transaction.

Which tables are tenant tables, by which column, and their foreign keys come from the code the instrumentation runs
on first connect (:meth:`tenantwatch.sql.tables.TenantTables.learn_from_connection`) and their RLS flags from
:func:`tenantwatch.sql.rls_coverage.read_rls_coverage` (the coverage gauge's own query). This module adds what only
the audit needs: policies, tenant column types and nullability, the leading column of each index, and the
application role's attributes and ownership.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tenantwatch.config import Settings
from tenantwatch.sql.rls_coverage import RlsCoverage, RlsTable, read_rls_coverage
from tenantwatch.sql.tables import ForeignKey, TenantTables

__all__ = ["CatalogSnapshot", "Column", "Policy", "Role", "RoleNotFoundError", "read_catalog"]


class RoleNotFoundError(LookupError):
    """``--role`` names a role the database does not have."""


@dataclass(frozen=True, slots=True)
class Policy:
    """A row level security policy (``pg_policies``)."""

    name: str
    permissive: bool
    command: str
    """``ALL``, ``SELECT``, ``INSERT``, ``UPDATE`` or ``DELETE``."""
    roles: tuple[str, ...]
    qual: str | None
    with_check: str | None


@dataclass(frozen=True, slots=True)
class Column:
    """A tenant column: its SQL type and whether it may be NULL."""

    name: str
    type: str
    not_null: bool


@dataclass(frozen=True, slots=True)
class Role:
    """The role the application connects as."""

    name: str
    superuser: bool
    bypass_rls: bool


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the lints read, for the tenant tables of one database."""

    coverage: RlsCoverage
    tables: TenantTables
    role: Role
    policies: Mapping[int, tuple[Policy, ...]] = field(default_factory=dict)
    """Per table oid."""
    columns: Mapping[int, Column] = field(default_factory=dict)
    """The tenant column of each table (per oid)."""
    leading_index_columns: Mapping[int, frozenset[str]] = field(default_factory=dict)
    """Per table oid: the first column of each valid, non-partial index (lower case)."""
    owned: frozenset[int] = frozenset()
    """Tables whose owner is the role or a role it inherits from (it bypasses RLS unless the table FORCEs it)."""
    connected_as: str = ""
    """The role the catalog was read as (``current_user``)."""
    hidden_tables: int = 0
    """Tables (ordinary and partitioned, non-system schemas) of whose columns the connecting role sees none: it has
    no privilege on them and does not own them, so ``information_schema.columns`` hides them and their tenant
    column cannot be found."""

    @property
    def tenant_tables(self) -> tuple[RlsTable, ...]:
        return self.coverage.tables

    def key_columns(self, table: RlsTable) -> frozenset[str]:
        """Every tenant key column of ``table``: its tenant column, and a hierarchy's other key columns."""
        return frozenset({table.column, *self.tables.other_columns(f"{table.schema}.{table.name}")})

    def foreign_keys(self, table: RlsTable) -> tuple[ForeignKey, ...]:
        """The foreign keys ``table`` holds (names bare, lower case)."""
        bare = table.name.lower()
        return tuple(fk for fk in self.tables.foreign_keys(bare) if fk.table == bare)

    def by_name(self, bare: str) -> RlsTable | None:
        """A tenant table by its bare name (as foreign keys name them)."""
        return next((t for t in self.tenant_tables if t.name.lower() == bare), None)


_POLICIES = (
    "SELECT c.oid, p.policyname, p.permissive = 'PERMISSIVE', p.cmd, p.roles::text[], p.qual, p.with_check "
    "FROM pg_catalog.pg_policies p "
    "JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname "
    "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
    "WHERE c.oid = ANY(:oids) ORDER BY c.oid, p.policyname"
)
_COLUMNS = (
    "SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull "
    "FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY(:oids) AND a.attnum > 0 AND NOT a.attisdropped"
)
_INDEXES = (
    "SELECT i.indrelid, a.attname FROM pg_catalog.pg_index i "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
    "WHERE i.indrelid = ANY(:oids) AND i.indisvalid AND i.indpred IS NULL"
)
_ROLE = "SELECT rolname, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = COALESCE(:role, current_user)"
_OWNED = (
    "SELECT c.oid FROM pg_catalog.pg_class c "
    "WHERE c.oid = ANY(:oids) AND pg_catalog.pg_has_role(:role, c.relowner, 'USAGE')"
)


_HIDDEN = (
    "SELECT current_user, count(*) FILTER (WHERE NOT pg_catalog.pg_has_role(c.relowner, 'USAGE') "
    "AND NOT pg_catalog.has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES')) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)


def read_catalog(connection: Any, settings: Settings, *, role: str | None = None) -> CatalogSnapshot:
    """Read the snapshot over a SQLAlchemy ``Connection`` to PostgreSQL (nothing begun on it yet): tenant tables as
    ``settings`` and the catalog name them, the application ``role`` (default: the connecting role). Everything runs
    in one transaction that is rolled back. Raises :class:`RoleNotFoundError`, or what the driver raises."""
    from sqlalchemy import text

    tables = TenantTables(settings)
    dbapi_connection = connection.connection.dbapi_connection
    tables.learn_from_connection(dbapi_connection, "postgresql")
    coverage = read_rls_coverage(dbapi_connection, tables)
    with connection.begin() as transaction:
        connection.execute(text("SET TRANSACTION READ ONLY"))
        found = connection.execute(text(_ROLE), {"role": role}).first()
        if found is None:
            raise RoleNotFoundError(role or "current_user")
        app_role = Role(str(found[0]), bool(found[1]), bool(found[2]))
        oids = [table.oid for table in coverage.tables]
        policies: dict[int, list[Policy]] = {}
        columns: dict[int, Column] = {}
        leading: dict[int, set[str]] = {}
        owned: set[int] = set()
        if oids:
            for oid, name, permissive, command, roles, qual, check in connection.execute(
                text(_POLICIES), {"oids": oids}
            ):
                policies.setdefault(int(oid), []).append(
                    Policy(str(name), bool(permissive), str(command), tuple(roles or ()), qual, check)
                )
            wanted = {table.oid: table.column for table in coverage.tables}
            for oid, name, type_name, not_null in connection.execute(text(_COLUMNS), {"oids": oids}):
                if str(name).lower() == wanted.get(int(oid)):
                    columns[int(oid)] = Column(str(name), str(type_name), bool(not_null))
            for oid, name in connection.execute(text(_INDEXES), {"oids": oids}):
                leading.setdefault(int(oid), set()).add(str(name).lower())
            owned = {int(row[0]) for row in connection.execute(text(_OWNED), {"oids": oids, "role": app_role.name})}
        hidden = connection.execute(text(_HIDDEN)).one()
        transaction.rollback()
    return CatalogSnapshot(
        coverage=coverage,
        tables=tables,
        role=app_role,
        policies={oid: tuple(found) for oid, found in policies.items()},
        columns=columns,
        leading_index_columns={oid: frozenset(found) for oid, found in leading.items()},
        owned=frozenset(owned),
        connected_as=str(hidden[0]),
        hidden_tables=int(hidden[1]),
    )
