"""Fixtures for the SQLAlchemy instrumentation tests (helpers live in sa_support.py).

Engines are created after the instrumentor runs, as an application does: opentelemetry-instrumentation-sqlalchemy
traces engines through its patched ``sqlalchemy.create_engine``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sa_support import (
    Traced,
    create_postgres_schema,
    create_sqlite_database,
    drop_postgres_schema,
    postgres_async_engine,
    postgres_engine,
    sqlite_async_engine,
    sqlite_engine,
)

from tenantwatch.config import Settings
from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

SYNC_BACKENDS = [
    pytest.param("psycopg", marks=pytest.mark.postgres),
    pytest.param("psycopg2", marks=pytest.mark.postgres),
    "sqlite",
]
ASYNC_BACKENDS = [pytest.param("asyncpg", marks=pytest.mark.postgres), "aiosqlite"]


@pytest.fixture(autouse=True)
def _every_span_ends_once(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Taking spans over from OTel must never end one twice or touch one after it ended."""
    with caplog.at_level(logging.WARNING, logger="opentelemetry.sdk.trace"):
        yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    problems = [r.getMessage() for r in records if "ended span" in r.getMessage()]
    assert not problems


@pytest.fixture
def traced() -> Iterator[Traced]:
    traced = Traced()
    yield traced
    traced.provider.shutdown()


@pytest.fixture
def instrument(traced: Traced) -> Iterator[Callable[..., TenantwatchSQLAlchemyInstrumentor]]:
    """Instrument with spans going to ``traced`` (monitor mode, no processor unless asked); undone after the test."""
    instrumentor = TenantwatchSQLAlchemyInstrumentor()

    def start(**kwargs: Any) -> TenantwatchSQLAlchemyInstrumentor:
        kwargs.setdefault("tracer_provider", traced.provider)
        kwargs.setdefault("install_processor", False)
        kwargs.setdefault("settings", Settings())
        instrumentor.instrument(**kwargs)
        return instrumentor

    yield start
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    otel = SQLAlchemyInstrumentor()
    if otel.is_instrumented_by_opentelemetry:
        otel.uninstrument()


@pytest.fixture
def tw(instrument: Callable[..., TenantwatchSQLAlchemyInstrumentor], traced: Traced) -> Traced:
    """Instrumented in monitor mode with default settings (tenant tables discovered from the catalog)."""
    instrument()
    return traced


@pytest.fixture
def pg_schema(postgres_dsn: dict[str, Any]) -> Iterator[str]:
    schema = create_postgres_schema(postgres_dsn)
    yield schema
    drop_postgres_schema(postgres_dsn, schema)


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    create_sqlite_database(path)
    return path


@pytest.fixture(params=SYNC_BACKENDS)
def engine(request: pytest.FixtureRequest, tw: Traced) -> Iterator[Any]:
    """An instrumented sync engine on the seeded schema: psycopg, psycopg2 (PostgreSQL) or sqlite3."""
    if request.param == "sqlite":
        created = sqlite_engine(request.getfixturevalue("sqlite_path"))
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        created = postgres_engine(dsn, request.param, request.getfixturevalue("pg_schema"))
    yield created
    created.dispose()


@pytest.fixture(params=ASYNC_BACKENDS)
async def async_engine(request: pytest.FixtureRequest, tw: Traced) -> AsyncIterator[Any]:
    """An instrumented async engine on the seeded schema: asyncpg (PostgreSQL) or aiosqlite."""
    if request.param == "aiosqlite":
        created = sqlite_async_engine(request.getfixturevalue("sqlite_path"))
    else:
        created = postgres_async_engine(request.getfixturevalue("postgres_dsn"), request.getfixturevalue("pg_schema"))
    yield created
    await created.dispose()
