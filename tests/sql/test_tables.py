"""Tenant-scoped tables: configuration precedence, discovery from MetaData and from real database catalogs."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table

from tenantwatch.config import Settings
from tenantwatch.sql import Analyzer, TenantTables
from tenantwatch.sql.tables import ForeignKey as DeclaredKey


def _metadata() -> MetaData:
    metadata = MetaData()
    Table("organizations", metadata, Column("id", Integer, primary_key=True), Column("name", String))
    Table(
        "projects",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("organization_id", Integer, ForeignKey("organizations.id")),
    )
    Table("tickets", metadata, Column("id", Integer, primary_key=True), Column("tenant_id", String))
    Table("both", metadata, Column("tenant_id", String), Column("organization_id", Integer))
    Table("invoices", metadata, Column("id", Integer), Column("organization_id", Integer), schema="billing")
    Table("plans", metadata, Column("id", Integer), Column("organization_id", Integer))
    return metadata


def test_explicit_tables_case_insensitive_and_schema_qualified() -> None:
    tables = TenantTables(Settings(tenant_tables={"Orders": "Org_ID", "billing.invoices": "account"}))
    assert tables.column_for("orders") == "org_id"
    assert tables.column_for("ORDERS") == "org_id"
    assert tables.column_for("public.orders") == "org_id"
    assert tables.column_for("billing.invoices") == "account"
    assert tables.column_for("invoices") == "account"
    assert tables.column_for("other.invoices") == "account"  # bare name known from billing
    assert tables.column_for("countries") is None
    assert "orders" in tables
    assert len(tables) == 2


def test_learn_from_metadata() -> None:
    tables = TenantTables(Settings(tenant_tables={"tickets": "ticket_org"}, exclude_tables=("plans",)))
    version = tables.version
    found = tables.learn_from_metadata(_metadata())
    assert found == 4  # projects, tickets, both, billing.invoices (plans excluded, organizations has none)
    assert tables.version == version + 1
    assert tables.column_for("projects") == "organization_id"
    assert tables.column_for("tickets") == "ticket_org"  # explicit wins over discovery
    assert tables.column_for("both") == "organization_id"  # first of tenant_columns in settings order
    assert tables.column_for("billing.invoices") == "organization_id"
    assert tables.column_for("invoices") == "organization_id"
    assert tables.column_for("plans") is None
    assert tables.column_for("organizations") is None
    again = tables.version
    tables.learn_from_metadata(_metadata())
    assert tables.version == again  # nothing new: cached analyses stay valid


def test_tenant_columns_order_decides() -> None:
    tables = TenantTables(Settings(tenant_columns=("tenant_id", "organization_id")))
    tables.learn_from_metadata(_metadata())
    assert tables.column_for("both") == "tenant_id"


def test_include_tables_restricts_discovery_only() -> None:
    settings = Settings(include_tables=("projects",), tenant_tables={"legacy": "org"})
    tables = TenantTables(settings)
    assert tables.learn_from_metadata(_metadata()) == 1
    assert tables.column_for("projects") == "organization_id"
    assert tables.column_for("tickets") is None
    assert tables.column_for("legacy") == "org"


def test_exclude_wins_over_explicit_and_add() -> None:
    tables = TenantTables(Settings(tenant_tables={"plans": "organization_id"}, exclude_tables=("plans",)))
    assert tables.column_for("plans") is None
    tables.add("plans", "organization_id")
    assert tables.column_for("plans") is None


def test_add_bumps_version_and_analyzer_sees_it() -> None:
    analyzer = Analyzer(Settings())
    assert analyzer.analyze("SELECT * FROM widgets").tenant_filter == "not_applicable"
    assert analyzer.tables.add("widgets", "organization_id") is True
    assert analyzer.analyze("SELECT * FROM widgets").tenant_filter == "missing"


@pytest.fixture
def sqlite_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE organizations (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE projects (id INTEGER PRIMARY KEY, organization_id INTEGER, name TEXT);
        CREATE TABLE "Mixed Case" (id INTEGER, Tenant_ID TEXT);
        CREATE VIEW project_names AS SELECT organization_id, name FROM projects;
        ATTACH DATABASE ':memory:' AS archive;
        CREATE TABLE archive.old_projects (id INTEGER, organization_id INTEGER);
        """
    )
    yield conn
    conn.close()


def test_learn_from_sqlite_connection(sqlite_db: sqlite3.Connection) -> None:
    tables = TenantTables(Settings())
    assert tables.learn_from_connection(sqlite_db, "sqlite") == 4
    assert tables.column_for("projects") == "organization_id"
    assert tables.column_for("mixed case") == "tenant_id"
    assert tables.column_for("project_names") == "organization_id"
    assert tables.column_for("archive.old_projects") == "organization_id"
    assert tables.column_for("organizations") is None
    assert not sqlite_db.in_transaction


def test_learn_from_connection_never_raises(sqlite_db: sqlite3.Connection) -> None:
    sqlite_db.close()
    tables = TenantTables(Settings())
    assert tables.learn_from_connection(sqlite_db, "sqlite") == 0
    assert tables.learn_from_connection(object(), "postgresql") == 0


def test_analysis_after_learning_from_sqlite(sqlite_db: sqlite3.Connection) -> None:
    analyzer = Analyzer(Settings())
    analyzer.tables.learn_from_connection(sqlite_db, "sqlite")
    analysis = analyzer.analyze("SELECT * FROM projects p JOIN organizations o ON o.id = p.organization_id")
    assert analysis.tenant_tables == ("projects",)
    assert analysis.unfiltered_reads == ("main:projects",)


@pytest.mark.postgres
def test_learn_from_postgresql_catalog(postgres_dsn: dict[str, object]) -> None:
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:8]}"
    conninfo = " ".join(f"{key}={value}" for key, value in postgres_dsn.items())
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.accounts (id int, organization_id int)")
        admin.execute(f"CREATE TABLE {schema}.notes (id int, tenant_id text)")
        admin.execute(f"CREATE TABLE {schema}.countries (code text)")
        admin.execute(f"CREATE VIEW {schema}.account_view AS SELECT organization_id FROM {schema}.accounts")
    try:
        with psycopg.connect(conninfo) as conn:
            tables = TenantTables(Settings(exclude_tables=(f"{schema}.notes",)))
            found = tables.learn_from_connection(conn, "postgresql")
            assert found >= 2
            assert tables.column_for(f"{schema}.accounts") == "organization_id"
            assert tables.column_for("accounts") == "organization_id"
            assert tables.column_for(f"{schema}.account_view") == "organization_id"
            assert tables.column_for(f"{schema}.notes") is None
            assert tables.column_for(f"{schema}.countries") is None
            assert tables.column_for("pg_class") is None
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # our read was rolled back

        import psycopg2

        with psycopg2.connect(**postgres_dsn) as conn2:  # type: ignore[arg-type]
            tables2 = TenantTables(Settings())
            assert tables2.learn_from_connection(conn2, "postgresql") >= 3
            assert tables2.column_for(f"{schema}.notes") == "tenant_id"
            assert conn2.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.postgres
def test_analysis_after_learning_from_postgresql(postgres_dsn: dict[str, object]) -> None:
    import psycopg

    table = f"tw_orders_{uuid.uuid4().hex[:8]}"
    conninfo = " ".join(f"{key}={value}" for key, value in postgres_dsn.items())
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id int, organization_id int)")
        try:
            analyzer = Analyzer(Settings())
            assert analyzer.tables.learn_from_connection(conn, "postgresql") >= 1
            analysis = analyzer.analyze(f"SELECT * FROM {table} WHERE organization_id = %s")
            assert analysis.tenant_filter == "present"
        finally:
            conn.execute(f"DROP TABLE {table}")


@pytest.mark.postgres
async def test_learn_through_sqlalchemy_asyncpg_adapter(postgres_url: str) -> None:
    """The instrumentation hands over SQLAlchemy's adapted asyncpg connection; the read must not leave it in a
    transaction."""
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(postgres_url.replace("+psycopg", "+asyncpg"))
    table = f"tw_async_{uuid.uuid4().hex[:8]}"
    tables = TenantTables(Settings())
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f"CREATE TABLE {table} (id int, organization_id int)")
            await conn.commit()
            raw = await conn.get_raw_connection()
            adapted = raw.dbapi_connection
            learned = await conn.run_sync(lambda _sync: tables.learn_from_connection(adapted, "postgresql"))
            assert learned >= 1
            assert tables.column_for(table) == "organization_id"
            assert adapted._started is False  # type: ignore[union-attr]
            await conn.exec_driver_sql(f"DROP TABLE {table}")
            await conn.commit()
    finally:
        await engine.dispose()


def test_fk_links_index_every_key_under_both_tables_with_its_direction() -> None:
    """The provenance walk reads keys by pair of tables: both directions, self-references, composite keys."""
    tables = TenantTables(Settings())
    tables.learn_foreign_keys(
        [
            DeclaredKey("Recipes_To_Categories", ("recipe_id",), "recipes", ("id",)),
            DeclaredKey("users", ("manager_id",), "users", ("id",)),
            DeclaredKey("foods", ("org_id", "recipe_id"), "recipes", ("org_id", "id")),
        ]
    )
    assert tables.fk_links("recipes_to_categories") == {"recipes": ((frozenset({("recipe_id", "id")}), True),)}
    assert tables.fk_links("recipes")["recipes_to_categories"] == ((frozenset({("id", "recipe_id")}), False),)
    assert tables.fk_links("recipes")["foods"] == ((frozenset({("org_id", "org_id"), ("id", "recipe_id")}), False),)
    assert set(tables.fk_links("users")["users"]) == {
        (frozenset({("manager_id", "id")}), True),
        (frozenset({("id", "manager_id")}), False),
    }
    assert tables.fk_links("recipes", True) == {}  # recipes holds no key
    assert tables.fk_links("users", True) == {"users": ((frozenset({("manager_id", "id")}), True),)}
    assert tables.fk_links("unknown") == {}


def test_declared_table_keeps_the_finer_key_the_orm_mapping_shows() -> None:
    """``tenant_tables: {key_results: organization_id}`` names one column; the mapping's ``team_id`` stays a key
    column, so a team filter scopes the table (okr's report: it read ``missing``)."""
    settings = Settings(
        tenant_tables={"key_results": "organization_id"},
        tenant_keys={
            "organization": {"columns": ["organization_id"], "root": "organizations"},
            "team": {"columns": ["team_id"], "parent": "organization", "root": "teams"},
        },
    )
    metadata = MetaData()
    Table(
        "key_results",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("organization_id", Integer),
        Column("team_id", Integer),
        Column("title", String),
    )
    analyzer = Analyzer(settings)
    analyzer.tables.learn_from_metadata(metadata)
    assert analyzer.tables.column_for("key_results") == "organization_id"
    assert analyzer.tables.other_columns("key_results") == ("team_id",)
    analysis = analyzer.analyze("SELECT * FROM key_results WHERE team_id = %(team)s")
    assert [(s.verdict, s.key) for s in analysis.scopes] == [("present", "team")]
    assert analysis.unfiltered_reads == ()
