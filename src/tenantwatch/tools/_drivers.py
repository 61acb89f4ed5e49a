"""A database driver that is not installed, said as what to install: ``postgresql+psycopg URLs need psycopg: pip
install 'tenantwatch[psycopg]'`` instead of SQLAlchemy's bare ``No module named 'psycopg'``.

Used wherever a command connects to a database URL (``audit``, ``audit --compare``, ``init`` and ``explain``
``--database-url``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["missing_driver"]

_EXTRAS: Final = {"psycopg": "psycopg", "psycopg2": "psycopg2", "asyncpg": "asyncpg", "aiosqlite": "aiosqlite"}
"""Driver module -> the tenantwatch extra that installs it."""

_PLAIN_POSTGRESQL: Final = (
    "postgresql URLs need psycopg2: pip install 'tenantwatch[psycopg2]' "
    "(or write postgresql+psycopg:// and pip install 'tenantwatch[psycopg]')"
)


def _module_not_found(exc: BaseException | None) -> ModuleNotFoundError | None:
    seen = 0
    while exc is not None and seen < 5:  # SQLAlchemy may wrap it
        if isinstance(exc, ModuleNotFoundError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def missing_driver(exc: BaseException, drivername: str) -> str | None:
    """What to install when ``exc`` says a driver module is missing for a URL of ``drivername`` (as the user wrote
    it: ``postgresql``, ``postgresql+psycopg``, ``postgresql+asyncpg``, ...); None for any other error."""
    missing = _module_not_found(exc)
    module = (missing.name or "").partition(".")[0] if missing is not None else ""
    extra = _EXTRAS.get(module)
    if extra is None:
        return None
    if drivername == "postgresql":
        return _PLAIN_POSTGRESQL
    driver = drivername.partition("+")[2]
    if driver and driver != module:  # an async URL read through a sync driver
        return f"{drivername} URLs are read through {module} here: pip install 'tenantwatch[{extra}]'"
    return f"{drivername} URLs need {module}: pip install 'tenantwatch[{extra}]'"
