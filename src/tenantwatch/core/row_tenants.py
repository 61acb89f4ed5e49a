"""Which tenant a returned row must belong to: the one comparison of row tenant values with the context.

A read without a direct tenant filter (verdict ``missing`` or ``inherited``) may return rows of other tenants. The
instrumentation compares the tenant column of each row it inspects with the value this module names, canonically
(:mod:`tenantwatch.core.tenant_values`), and records counts only (see ``cross_tenant_read``).

Every such comparison goes through :func:`context_value_for_column`: today a context holds one tenant value, so it
is ``context.tenant_id`` for every column; with tenant hierarchies (one value per key) this is the one function that
maps a tenant column to the context value of its key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.context import TenantContext

__all__ = ["context_value_for_column", "expected_row_tenant"]


def context_value_for_column(context: TenantContext, column: str) -> str | None:
    """The context's tenant value that a row's tenant ``column`` must hold (``None``: the context names none)."""
    return context.tenant_id


def expected_row_tenant(context: TenantContext, column: str) -> str | None:
    """:func:`context_value_for_column` in canonical form (what inspected row values are compared with)."""
    value = context_value_for_column(context, column)
    return None if value is None else canonical(value)
