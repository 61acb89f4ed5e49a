"""Which tenant a returned row must belong to: the one comparison of row tenant values with the context.

A read without a direct tenant filter (verdict ``missing`` or ``inherited``) may return rows of other tenants. The
instrumentation compares the tenant column of each row it inspects with the value this module names, canonically
(:mod:`tenantwatch.core.tenant_values`), and records counts only (see ``cross_tenant_read``).

Every comparison of a stored tenant value with the context (returned rows here, ORM instances in
:mod:`tenantwatch.core.identity`) goes through :func:`context_value_for_column`: with one tenant key it is
``context.tenant_id`` for every column; with a tenant hierarchy (``tenant_keys``) it is the context value of the key
the column belongs to (``team_id`` -> ``tenant.team.id``), and ``None`` when the context holds no value of that key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.context import TenantContext

__all__ = ["context_value_for_column", "expected_row_tenant"]


def context_value_for_column(context: TenantContext, column: str, settings: Settings | None = None) -> str | None:
    """The context's tenant value that a stored tenant ``column`` (bare or ``table.column``) must hold (``None``:
    the context names none)."""
    if settings is None or not settings.tenant_keys:
        return context.tenant_id
    key = settings.key_of_column(column.rsplit(".", 1)[-1])
    return context.tenant_id if key == settings.root_key else context.value_of(key)


def expected_row_tenant(context: TenantContext, column: str, settings: Settings | None = None) -> str | None:
    """:func:`context_value_for_column` in canonical form (what inspected row values are compared with)."""
    value = context_value_for_column(context, column, settings)
    return None if value is None else canonical(value)
