"""Shared by the SQLAlchemy instrumentation tests: a tenant-scoped schema, its ORM model, span helpers."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# Imported before any test instruments anything: sqlalchemy.ext.asyncio binds ``create_engine`` at import time, so a
# first import while OTel is instrumented would keep OTel's wrapper (and its tracer) after uninstrument.
import sqlalchemy.ext.asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenantwatch import attributes as A

ROWS_PER_TENANT = 100
"""Rows each of the two tenants (organization 1 and 2) owns in ``items``."""

DRIVERS_PG_SYNC = ("psycopg", "psycopg2")
DRIVERS_SQLITE_SYNC = ("pysqlite",)


class Base(DeclarativeBase):
    pass


class Item(Base):
    """A tenant-scoped table: every row belongs to one organization."""

    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int]
    name: Mapped[str]


class Country(Base):
    """A global table (no tenant column)."""

    __tablename__ = "countries"
    code: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]


SCHEMA_SQL = (
    "CREATE TABLE items (id integer PRIMARY KEY, organization_id integer NOT NULL, name text NOT NULL)",
    "CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL)",
)


def seed_rows() -> list[tuple[int, int, str]]:
    rows = []
    for org in (1, 2):
        for i in range(ROWS_PER_TENANT):
            item_id = org * 1000 + i
            rows.append((item_id, org, f"item {item_id}"))
    return rows


@dataclass
class Traced:
    """An SDK tracer provider whose finished spans land in memory."""

    provider: TracerProvider = field(default_factory=TracerProvider)
    exporter: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)

    def __post_init__(self) -> None:
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def db_spans(self, needle: str = "items") -> list[ReadableSpan]:
        """Finished db spans whose statement mentions ``needle`` (case-insensitive)."""
        found = []
        for span in self.spans():
            attributes = span.attributes or {}
            statement = attributes.get(A.DB_STATEMENT) or attributes.get(A.DB_QUERY_TEXT)
            if isinstance(statement, str) and needle.lower() in statement.lower():
                found.append(span)
        return found

    def only_db_span(self, needle: str = "items") -> ReadableSpan:
        spans = self.db_spans(needle)
        assert len(spans) == 1, [s.attributes for s in spans]
        return spans[0]

    def clear(self) -> None:
        self.exporter.clear()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def returned_rows(span: ReadableSpan) -> Any:
    return attrs(span).get(A.DB_RETURNED_ROWS)


# --- databases -------------------------------------------------------------------------------------------------------


def create_sqlite_database(path: Path) -> None:
    """A SQLite file with the schema and the seed rows (written without SQLAlchemy: nothing traced)."""
    with sqlite3.connect(path) as conn:
        for statement in SCHEMA_SQL:
            conn.execute(statement)
        conn.executemany("INSERT INTO items VALUES (?, ?, ?)", seed_rows())
        conn.executemany("INSERT INTO countries VALUES (?, ?)", [("fr", "France"), ("de", "Germany")])


def create_postgres_schema(dsn: dict[str, Any]) -> str:
    """A fresh PostgreSQL schema with the tables and seed rows; returns its name."""
    import psycopg

    schema = f"tw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **dsn) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"SET search_path TO {schema}")
        for statement in SCHEMA_SQL:
            conn.execute(statement)
        with conn.cursor() as cursor:
            cursor.executemany("INSERT INTO items VALUES (%s, %s, %s)", seed_rows())
            cursor.executemany("INSERT INTO countries VALUES (%s, %s)", [("fr", "France"), ("de", "Germany")])
    return schema


def drop_postgres_schema(dsn: dict[str, Any], schema: str) -> None:
    import psycopg

    with psycopg.connect(autocommit=True, **dsn) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_rows(dsn: dict[str, Any], schema: str, sql: str) -> Sequence[tuple[Any, ...]]:
    """Run a query on a separate, untraced psycopg connection (to check the database's own state)."""
    import psycopg

    with psycopg.connect(autocommit=True, **dsn) as conn:
        conn.execute(f"SET search_path TO {schema}")
        return conn.execute(sql).fetchall()


def postgres_url(dsn: dict[str, Any], driver: str) -> str:
    return f"postgresql+{driver}://{dsn['user']}@{dsn['host']}:{dsn['port']}/{dsn['dbname']}"


def postgres_engine(dsn: dict[str, Any], driver: str, schema: str) -> sa.engine.Engine:
    """A sync engine (psycopg or psycopg2) whose connections use ``schema``. Call after instrumenting."""
    return sa.create_engine(postgres_url(dsn, driver), connect_args={"options": f"-csearch_path={schema}"})


def postgres_async_engine(dsn: dict[str, Any], schema: str) -> Any:
    """An asyncpg engine whose connections use ``schema``. Call after instrumenting."""
    return sqlalchemy.ext.asyncio.create_async_engine(
        postgres_url(dsn, "asyncpg"), connect_args={"server_settings": {"search_path": schema}}
    )


def sqlite_engine(path: Path) -> sa.engine.Engine:
    return sa.create_engine(f"sqlite:///{path}")


def sqlite_async_engine(path: Path) -> Any:
    return sqlalchemy.ext.asyncio.create_async_engine(f"sqlite+aiosqlite:///{path}")
