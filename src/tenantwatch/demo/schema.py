"""The demo's multi-tenant schema and its seed data, on embedded SQLite.

Two tenants (``acme`` and ``globex``) share one database: every tenant-scoped table carries ``organization_id``, so
tenantwatch learns them from the catalog with its default settings. ``plans`` is global reference data and
``organizations`` is the tenant registry itself; neither has a tenant column.

The database is seeded with plain ``sqlite3`` (``executemany``, one transaction) before tenantwatch instruments
anything, so set-up traffic never shows up as findings. Row counts are fixed and deterministic: acme has exactly
:data:`ACME_OPEN_OBJECTIVES` open objectives, which is what the scripted large-result step reads.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Final

from sqlalchemy import Column, ForeignKey, Integer, MetaData, Table, Text
from sqlalchemy.dialects import sqlite
from sqlalchemy.schema import CreateTable

__all__ = [
    "ACME",
    "ACME_OPEN_OBJECTIVES",
    "GLOBEX",
    "METADATA",
    "SLEEP_FUNCTION",
    "create_database",
    "invoices",
    "objectives",
    "organizations",
    "plans",
    "projects",
    "users",
]

logger = logging.getLogger(__name__)

ACME: Final = "acme"
"""The bigger tenant."""

GLOBEX: Final = "globex"
"""The other tenant."""

ACME_OPEN_OBJECTIVES: Final = 1500
"""Open objectives of acme: the scripted dashboard bug reads all of them (above the 1000-row threshold)."""

SLEEP_FUNCTION: Final = "sleep_ms"
"""SQL function registered on the demo connection: ``sleep_ms(n)`` sleeps n milliseconds (capped) and returns n.

SQLite has no ``pg_sleep``; the slow-report step uses this to be genuinely slow, for a bounded and deterministic time.
"""

_MAX_SLEEP_MS = 5_000

METADATA = MetaData()

plans = Table(
    "plans",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("monthly_price_cents", Integer, nullable=False),
)

organizations = Table(
    "organizations",
    METADATA,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("plan_id", Integer, ForeignKey("plans.id"), nullable=False),
)

users = Table(
    "users",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Text, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
)

projects = Table(
    "projects",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Text, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("name", Text, nullable=False),
)

objectives = Table(
    "objectives",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Text, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress", Integer, nullable=False, default=0),
)

invoices = Table(
    "invoices",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("organization_id", Text, ForeignKey("organizations.id"), nullable=False, index=True),
    Column("number", Text, nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("issued_on", Text, nullable=False),
)


class _TenantSize:
    """How many rows one tenant gets per table."""

    def __init__(self, *, users: int, projects: int, open_objectives: int, done_objectives: int, invoices: int) -> None:
        self.users = users
        self.projects = projects
        self.open_objectives = open_objectives
        self.done_objectives = done_objectives
        self.invoices = invoices


_SIZES: Final = {
    ACME: _TenantSize(users=40, projects=30, open_objectives=ACME_OPEN_OBJECTIVES, done_objectives=300, invoices=400),
    GLOBEX: _TenantSize(users=25, projects=15, open_objectives=500, done_objectives=200, invoices=250),
}

_THEMES: Final = ("churn", "onboarding", "latency", "pipeline", "hiring", "pricing", "security", "support")
_INVOICE_STATUSES: Final = ("paid", "paid", "paid", "open", "open", "draft")
_ROLES: Final = ("member", "member", "member", "member", "admin")


def _sleep_ms(milliseconds: object) -> int:
    """``sleep_ms(n)``: sleep n milliseconds (0 to 5000) and return n."""
    if not isinstance(milliseconds, int | float | str):
        return 0
    try:
        wanted = int(milliseconds)
    except ValueError:
        return 0
    wanted = max(0, min(wanted, _MAX_SLEEP_MS))
    time.sleep(wanted / 1000.0)
    return wanted


def _ddl() -> list[str]:
    dialect = sqlite.dialect()
    return [str(CreateTable(table).compile(dialect=dialect)).strip() for table in METADATA.sorted_tables]


def _seed(conn: sqlite3.Connection) -> dict[str, int]:
    """Insert the deterministic data set; returns rows per table."""
    counts: dict[str, int] = {}
    plan_rows = [(1, "starter", 0), (2, "growth", 4900), (3, "enterprise", 49900)]
    org_rows = [(ACME, "Acme Corporation", 3), (GLOBEX, "Globex Inc.", 2)]
    user_rows: list[tuple[int, str, str, str]] = []
    project_rows: list[tuple[int, str, str]] = []
    objective_rows: list[tuple[int, str, int, int, str, str, int]] = []
    invoice_rows: list[tuple[int, str, str, int, str, str]] = []
    for org, size in _SIZES.items():
        first_user = len(user_rows) + 1
        for n in range(size.users):
            user_rows.append((first_user + n, org, f"user{n + 1}@{org}.io", _ROLES[n % len(_ROLES)]))
        first_project = len(project_rows) + 1
        for n in range(size.projects):
            project_rows.append((first_project + n, org, f"{org} {_THEMES[n % len(_THEMES)]} {n // len(_THEMES) + 1}"))
        total = size.open_objectives + size.done_objectives
        for n in range(total):
            status = "open" if n < size.open_objectives else "done"
            theme = _THEMES[n % len(_THEMES)]
            objective_rows.append(
                (
                    len(objective_rows) + 1,
                    org,
                    first_project + n % size.projects,
                    first_user + n % size.users,
                    f"Improve {theme} #{n + 1}",
                    status,
                    (n * 7) % 101,
                )
            )
        for n in range(size.invoices):
            invoice_rows.append(
                (
                    len(invoice_rows) + 1,
                    org,
                    f"{org.upper()}-{n + 1:05d}",
                    1000 + (n * 137) % 90000,
                    _INVOICE_STATUSES[n % len(_INVOICE_STATUSES)],
                    f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
                )
            )
    for table, rows in (
        ("plans", plan_rows),
        ("organizations", org_rows),
        ("users", user_rows),
        ("projects", project_rows),
        ("objectives", objective_rows),
        ("invoices", invoice_rows),
    ):
        if not rows:
            continue
        marks = ", ".join("?" * len(rows[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        counts[table] = len(rows)
    return counts


def create_database(path: str = ":memory:") -> tuple[sqlite3.Connection, dict[str, int]]:
    """Create the schema, seed it in one transaction and register :data:`SLEEP_FUNCTION`.

    Returns the open connection (usable from any thread; SQLAlchemy reuses it through a ``StaticPool``) and the
    number of rows per table.
    """
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.create_function(SLEEP_FUNCTION, 1, _sleep_ms)
    with conn:
        for statement in _ddl():
            conn.execute(statement)
        counts = _seed(conn)
    logger.debug("demo database seeded: %s", counts)
    return conn, counts
