"""``tenantwatch audit``: tenant isolation lints of a PostgreSQL schema and its RLS coverage.

One module per concern: :mod:`.catalog` reads the catalog once (tenant tables as the instrumentation finds them,
their RLS flags, policies, columns, indexes, the application role), :mod:`.policies` judges policy expressions
(pglast), :mod:`.lints` holds every lint, :mod:`.output` renders the result, :mod:`.export` sends the coverage
gauges over OTLP. :func:`run_audit` ties the first three together; the command line is :mod:`tenantwatch.cli.audit`.
"""

from __future__ import annotations

from typing import Any, Literal

from tenantwatch.config import Settings
from tenantwatch.tools.audit.catalog import CatalogSnapshot, RoleNotFoundError, read_catalog
from tenantwatch.tools.audit.lints import LEVELS, LINTS, Level, Lint, LintKind, run_lints
from tenantwatch.tools.audit.output import AuditResult

__all__ = [
    "LEVELS",
    "LINTS",
    "AuditResult",
    "CatalogSnapshot",
    "Level",
    "Lint",
    "LintKind",
    "RoleNotFoundError",
    "run_audit",
]


def run_audit(
    connection: Any,
    settings: Settings,
    *,
    source: str,
    role: str | None = None,
    fail_on: Level | Literal["NEVER"] = "WARN",
) -> AuditResult:
    """Audit the PostgreSQL database behind a SQLAlchemy ``connection`` (nothing begun on it yet)."""
    snapshot = read_catalog(connection, settings, role=role)
    return AuditResult(source, snapshot, run_lints(snapshot, settings), fail_on)
