"""Shared fixtures: a real PostgreSQL server for the whole test session."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from postgres_server import PostgresServer

_URL_ENV = "TENANTWATCH_TEST_POSTGRES_URL"


@pytest.fixture(autouse=True)
def _fresh_internal_error_log() -> Iterator[None]:
    """Internal errors are logged once a minute per place: every test starts (and leaves) with a clean slate."""
    from tenantwatch.core.guard import INTERNAL_ERRORS

    INTERNAL_ERRORS.clear()
    yield
    INTERNAL_ERRORS.clear()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL (psycopg 3) of a real PostgreSQL server on a free loopback port, started for this session."""
    external = os.environ.get(_URL_ENV)
    if external:
        yield external
        return
    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_dsn(postgres_url: str) -> dict[str, object]:
    """host, port, user, dbname of the session's PostgreSQL server."""
    parts = urlsplit(postgres_url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "dbname": parts.path.lstrip("/") or "postgres",
    }
