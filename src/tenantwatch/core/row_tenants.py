"""Which tenant a returned row must belong to: the one comparison of row tenant values with the context.

A read without a direct tenant filter (verdict ``missing`` or ``inherited``) may return rows of other tenants. The
instrumentation compares the tenant column of each row it inspects with the value this module names, canonically
(:mod:`tenantwatch.core.tenant_values`), and records counts only (see ``cross_tenant_read``).

Every comparison of a stored tenant value with the context (returned rows here, ORM instances in
:mod:`tenantwatch.core.identity`) goes through :func:`context_value_for_column`: with one tenant key it is
``context.tenant_id`` for every column; with a tenant hierarchy (``tenant_keys``) it is the context value of the key
the column belongs to (``team_id`` -> ``tenant.team.id``; a key's root table by its key column, ``teams.id`` ->
``tenant.team.id``), and ``None`` when the context holds no value of that key (that key is then not compared). A row
or an instance is the context's only if every compared key matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.context import TenantContext

__all__ = ["context_value_for_column", "context_value_for_key", "expected_row_tenant", "key_of_column"]


def key_of_column(column: str, settings: Settings) -> str:
    """The tenant key a stored tenant ``column`` (bare or ``table.column``) holds: a key's root table by its key
    column (``teams.id`` with ``tenant_keys.team.root: teams``) holds that key, any other column the key that lists
    it (:meth:`Settings.key_of_column`)."""
    table, _, bare = column.lower().rpartition(".")
    if table:
        table = table.rpartition(".")[2]
        for name, key in settings.tenant_keys.items():
            root = key.root
            if root is not None:
                root_table, _, root_column = root.partition(".")
                if root_table == table and (root_column or "id") == bare:
                    return name
    return settings.key_of_column(bare)


def context_value_for_key(context: TenantContext, key: str | None, settings: Settings | None = None) -> str | None:
    """The context's value of tenant key ``key`` (``None`` or the root key: ``tenant_id``)."""
    if key is None or settings is None or key == settings.root_key:
        return context.tenant_id
    return context.value_of(key)


def context_value_for_column(context: TenantContext, column: str, settings: Settings | None = None) -> str | None:
    """The context's tenant value that a stored tenant ``column`` (bare or ``table.column``) must hold (``None``:
    the context names none)."""
    if settings is None or not settings.tenant_keys:
        return context.tenant_id
    return context_value_for_key(context, key_of_column(column, settings), settings)


def expected_row_tenant(
    context: TenantContext, column: str, settings: Settings | None = None, *, key: str | None = None
) -> str | None:
    """:func:`context_value_for_column` in canonical form (what inspected row values are compared with); with
    ``key``, the context value of that tenant key (what the inspection plan found the column to hold)."""
    if key is not None:
        value = context_value_for_key(context, key, settings)
    else:
        value = context_value_for_column(context, column, settings)
    return None if value is None else canonical(value)
