"""Lookups by key (``StatementAnalysis.keyed``) and the primary / unique keys they rest on."""

from __future__ import annotations

import sqlite3
import uuid

import pytest
from sqlalchemy import Column, ForeignKey, Index, Integer, MetaData, String, Table, UniqueConstraint

from tenantwatch.config import Settings
from tenantwatch.sql import Analyzer


def _metadata() -> MetaData:
    metadata = MetaData()
    Table("users", metadata, Column("id", Integer, primary_key=True), Column("organization_id", Integer))
    Table(
        "notes",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("organization_id", Integer),
        Column("slug", String, unique=True),
        Column("number", Integer),
        Column("user_id", Integer, ForeignKey("users.id")),
        UniqueConstraint("organization_id", "number"),
    )
    tags = Table("tags", metadata, Column("code", String), Column("organization_id", Integer), Column("name", String))
    Index("tags_code", tags.c.code, unique=True)
    return metadata


@pytest.fixture
def analyzer() -> Analyzer:
    found = Analyzer(Settings())
    found.tables.learn_from_metadata(_metadata())
    return found


KEYED: list[tuple[str, str, tuple[str, ...]]] = [
    ("session.get", "SELECT notes.id, notes.organization_id FROM notes WHERE notes.id = %(pk_1)s", ("main:notes",)),
    ("unique column", "SELECT * FROM notes WHERE notes.slug = :slug", ("main:notes",)),
    ("unique index", "SELECT * FROM tags WHERE code = ?", ("main:tags",)),
    ("IN of one value", "SELECT * FROM notes WHERE notes.id IN (?)", ("main:notes",)),
    (
        "joined by its key to a keyed row",
        "SELECT * FROM notes LEFT OUTER JOIN users AS users_1 ON users_1.id = notes.user_id WHERE notes.id = ?",
        ("main:notes", "join:users_1:users"),
    ),
    ("composite unique key, one column given", "SELECT * FROM notes WHERE notes.number = ?", ()),
    ("no key predicate: a list query", "SELECT * FROM notes WHERE notes.number > ?", ()),
    ("key under OR", "SELECT * FROM notes WHERE notes.id = ? OR notes.id = ?", ()),
    ("key of a non-key table: no id assumed once keys are known", "SELECT * FROM tags WHERE tags.id = ?", ()),
    ("key in a subquery is not the outer block's", "SELECT * FROM (SELECT * FROM notes WHERE id = ?) AS s", ()),
    (
        "joined on a non-key column",
        "SELECT * FROM notes JOIN users ON users.organization_id = notes.number WHERE notes.id = ?",
        ("main:notes",),
    ),
]


@pytest.mark.parametrize(("sql", "expected"), [(s, e) for _, s, e in KEYED], ids=[c[0] for c in KEYED])
def test_keyed_reads(analyzer: Analyzer, sql: str, expected: tuple[str, ...]) -> None:
    assert analyzer.analyze(sql).keyed == expected


def test_filtered_reads_are_never_keyed(analyzer: Analyzer) -> None:
    analysis = analyzer.analyze("SELECT * FROM notes WHERE notes.id = ? AND notes.organization_id = ?")
    assert analysis.tenant_filter == "present"
    assert analysis.keyed == ()


def test_id_is_the_key_only_of_a_table_whose_keys_are_unknown() -> None:
    analyzer = Analyzer(Settings(tenant_tables={"notes": "organization_id"}))
    assert analyzer.analyze("SELECT * FROM notes WHERE id = ?").keyed == ("main:notes",)
    assert analyzer.tables.learn_keys([("notes", ["uuid"])]) == 1  # a new key: cached analyses are redone
    assert analyzer.analyze("SELECT * FROM notes WHERE id = ?").keyed == ()
    assert analyzer.analyze("SELECT * FROM notes WHERE uuid = ?").keyed == ("main:notes",)


def test_keys_from_metadata(analyzer: Analyzer) -> None:
    keys = analyzer.tables.keys_for
    assert set(keys("notes")) == {("id",), ("slug",), ("organization_id", "number")}
    assert keys("public.tags") == (("code",),)
    assert keys("nowhere") == ()


def test_keys_from_sqlite_pragmas() -> None:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, organization_id INTEGER, slug TEXT UNIQUE, body TEXT);
        CREATE UNIQUE INDEX notes_body ON notes (lower(body));
        CREATE UNIQUE INDEX notes_partial ON notes (body) WHERE body IS NOT NULL;
        """
    )
    analyzer = Analyzer(Settings())
    assert analyzer.tables.learn_from_connection(conn, "sqlite") == 1
    assert set(analyzer.tables.keys_for("notes")) == {("id",), ("slug",)}  # expression and partial indexes: not keys
    assert analyzer.analyze("SELECT * FROM notes WHERE slug = ?").keyed == ("main:notes",)
    conn.close()


@pytest.mark.postgres
def test_keys_from_the_postgresql_catalog(postgres_dsn: dict[str, object]) -> None:
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:8]}"
    table = f"keyed_{uuid.uuid4().hex[:8]}"
    conninfo = " ".join(f"{key}={value}" for key, value in postgres_dsn.items())
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(
            f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, organization_id int, slug text UNIQUE, n int, "
            "UNIQUE (organization_id, n))"
        )
        admin.execute(f"CREATE UNIQUE INDEX ON {schema}.{table} (lower(slug))")
    try:
        with psycopg.connect(conninfo) as conn:
            analyzer = Analyzer(Settings())
            assert analyzer.tables.learn_from_connection(conn, "postgresql") >= 1
            assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert set(analyzer.tables.keys_for(table)) == {("id",), ("slug",), ("organization_id", "n")}
        assert analyzer.analyze(f"SELECT * FROM {schema}.{table} WHERE slug = %s").keyed == (f"main:{table}",)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
