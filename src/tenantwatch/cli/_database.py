"""Reading a database's catalog for the CLI (``explain --database-url``, ``init --database-url``).

The discovery itself is :class:`tenantwatch.sql.tables.TenantTables` (the code the instrumentation runs on first
connect); this module turns a SQLAlchemy URL into a connection for it and every failure into a :class:`UsageError`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tenantwatch.cli._common import UsageError
from tenantwatch.redaction import hide_url_secrets, safe_url
from tenantwatch.tools._drivers import missing_driver

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from tenantwatch.sql.tables import TenantTables

__all__ = ["connect_engine", "hide_password", "learn_tenant_tables", "safe_url"]


def _sync_url(url: URL) -> URL:
    """The catalog is read synchronously: an async driver URL (``postgresql+asyncpg``, ``sqlite+aiosqlite``) is read
    through the backend's sync driver instead (psycopg 3 for PostgreSQL when installed)."""
    try:
        is_async = bool(getattr(url.get_dialect(), "is_async", False))
    except Exception:  # unknown dialect or driver: create_engine reports it
        return url
    if not is_async:
        return url
    backend = url.get_backend_name()
    if backend == "postgresql" and importlib.util.find_spec("psycopg") is not None:
        return url.set(drivername="postgresql+psycopg")
    return url.set(drivername=backend)


def learn_tenant_tables(tables: TenantTables, url: str, *, option: str = "--database-url") -> tuple[str, int]:
    """Read tenant tables from the catalog of the database at ``url`` into ``tables``; returns (dialect, count)."""
    parsed = _parsed_url(url, option)
    from sqlalchemy import MetaData

    database = parsed.database or ""
    on_disk = database not in ("", ":memory:") and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and on_disk and not Path(database).is_file():
        raise UsageError(f"{option}: no SQLite database at {database}")
    engine = _engine(parsed, url, option)
    try:
        dialect = engine.dialect.name
        if dialect in ("postgresql", "sqlite"):
            raw = engine.raw_connection()
            try:
                learned = tables.learn_from_connection(raw.dbapi_connection, dialect)
            finally:
                raw.close()
        else:
            metadata = MetaData()
            metadata.reflect(engine)
            learned = tables.learn_from_metadata(metadata)
    except Exception as exc:
        raise UsageError(
            f"{option}: cannot read the catalog of {safe_url(url)}: {hide_password(str(exc), url)}"
        ) from exc
    finally:
        engine.dispose()
    return dialect, learned


def connect_engine(url: str, *, option: str = "DATABASE_URL") -> Any:
    """A SQLAlchemy engine for ``url`` (an async driver URL is read through its backend's sync driver); a bad URL or
    a missing driver is a :class:`UsageError` whose message never shows the password."""
    return _engine(_parsed_url(url, option), url, option)


def _parsed_url(url: str, option: str) -> Any:
    """``url`` parsed, an async driver swapped for its backend's sync one; a :class:`UsageError` (password hidden)
    when SQLAlchemy is missing or the URL is not one."""
    try:
        from sqlalchemy.engine import make_url
    except ImportError as exc:  # pragma: no cover - the sqlalchemy extra is not installed
        raise UsageError(f"{option} needs SQLAlchemy: pip install 'tenantwatch[sqlalchemy]'") from exc
    try:
        return _sync_url(make_url(url))
    except Exception as exc:
        raise UsageError(f"{option}: not a database URL: {hide_password(str(exc), url)}") from exc


def _engine(parsed: Any, url: str, option: str) -> Any:
    """The engine for a parsed URL; a missing driver names its extra."""
    from sqlalchemy import create_engine

    try:
        return create_engine(parsed)
    except Exception as exc:
        raise UsageError(f"{option}: {_engine_error(exc, url)}") from exc


def _engine_error(exc: Exception, url: str) -> str:
    """Why no engine: the driver to install (named by its extra), else SQLAlchemy's message without the password."""
    from sqlalchemy.engine import make_url

    return missing_driver(exc, make_url(url).drivername) or hide_password(str(exc), url)


def hide_password(message: str, url: str) -> str:
    """``message`` with every URL in it masked and the password of ``url`` (user info or ``password=`` query
    parameter) replaced by ``***`` (:func:`tenantwatch.redaction.hide_url_secrets`)."""
    return hide_url_secrets(message, url)
