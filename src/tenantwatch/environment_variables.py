"""Environment variables tenantwatch reads. Precedence: explicit argument > environment > rules file > default.

A bad value in the environment logs a warning and falls back to the next source; it never stops the application.
"""

from __future__ import annotations

from typing import Final

TENANTWATCH_RULES_FILE: Final = "TENANTWATCH_RULES_FILE"
"""Path of the YAML rules file (tenant tables, thresholds, severities, suppressions)."""

TENANTWATCH_MODE: Final = "TENANTWATCH_MODE"
"""``monitor`` (default), ``enforce`` (block critical statements before they run) or ``off``."""

TENANTWATCH_TENANT_COLUMNS: Final = "TENANTWATCH_TENANT_COLUMNS"
"""Comma-separated tenant column names (default ``organization_id,tenant_id``)."""

TENANTWATCH_SUPERUSER_ROLES: Final = "TENANTWATCH_SUPERUSER_ROLES"
"""Comma-separated roles that must not write (default ``superuser,admin``)."""

TENANTWATCH_LARGE_RESULT_ROWS: Final = "TENANTWATCH_LARGE_RESULT_ROWS"
"""Row count above which ``large_result`` fires (default 1000)."""

TENANTWATCH_SLOW_QUERY_MS: Final = "TENANTWATCH_SLOW_QUERY_MS"
"""Duration in milliseconds above which ``slow_query`` fires (default 500)."""

TENANTWATCH_TENANT_LABEL_CAP: Final = "TENANTWATCH_TENANT_LABEL_CAP"
"""How many distinct tenants get their own metric label before the rest share ``__other__`` (default 100)."""

TENANTWATCH_DISCOVER: Final = "TENANTWATCH_DISCOVER"
"""``true``/``false``: learn tenant tables from the database catalog on first connect (default true)."""
