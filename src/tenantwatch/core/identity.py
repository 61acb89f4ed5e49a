"""ORM identity: judging a statement by the tenant of the ORM instances it acts on.

The statements an ORM emits on instances — a flush ``UPDATE``/``DELETE`` by primary key, the re-read (refresh) of
an instance, the lazy load of a loaded parent's relationship — carry no tenant predicate, but the session knows the
tenant of the rows they act on. The instrumentation records that as facts (``tenantwatch.db.identity.*``: the kind,
the tenant column, the instances' tenant values with their counts, the instances whose tenant is unknown); this
module judges them, purely from the facts:

* :func:`apply_identity`: when every instance's tenant is known and the context has a tenant, the scopes the
  instances pin — for a write the written table, for a load every read scope without a filter — are no longer
  ``missing`` but ``present`` with reason ``identity`` (``SpanFacts.identity``). ``missing_tenant_filter`` and
  ``unscoped_write`` then do not fire for them; whether the instances are the context tenant's is ``cross_tenant``'s
  question (:func:`foreign_identity_rows`), exactly as for a filter on a bound tenant value.
* With any instance of unknown tenant, or no tenant in context, nothing changes.

Every comparison of an instance's tenant value with the context goes through :func:`context_value_for_column`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tenantwatch.context import DEFAULT_KEY
from tenantwatch.core import row_tenants
from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["IDENTITY_KINDS", "apply_identity", "context_value_for_column", "foreign_identity_rows", "identity_key"]

IDENTITY_KINDS = ("write", "load")
"""``tenantwatch.db.identity.kind``: the flush writes the instances / the statement loads them or through them."""


def identity_key(facts: SpanFacts, settings: Settings | None = None) -> str:
    """The tenant key the statement's identity column holds (the root key without a hierarchy)."""
    if settings is None:
        return DEFAULT_KEY
    column = facts.identity_column
    if not column:
        return settings.root_key
    return settings.key_of_column(column.rsplit(".", 1)[-1])


def context_value_for_column(facts: SpanFacts, column: str | None, settings: Settings | None = None) -> str | None:
    """The context's tenant value to compare with a value of ``column`` (``table.column``), or ``None``.

    With one tenant key, the context tenant whatever the column; with a tenant hierarchy (``settings.tenant_keys``)
    the context's value of the key ``column`` belongs to (``team_id`` -> ``tenant.team.id``)."""
    if settings is None or not settings.tenant_keys or not column:
        return facts.tenant_id
    return row_tenants.context_value_for_column(facts.context(), column, settings)


def _complete(facts: SpanFacts) -> bool:
    """Every instance of the statement has a known tenant value."""
    return (
        facts.identity_kind in IDENTITY_KINDS
        and bool(facts.identity_tenant_values)
        and not facts.identity_unknown_rows
        and len(facts.identity_tenant_rows) == len(facts.identity_tenant_values)
    )


def apply_identity(facts: SpanFacts, settings: Settings | None = None) -> SpanFacts:
    """``facts`` with the scopes that ORM identity pins moved from ``missing`` to ``present`` (reason ``identity``).

    Unchanged when there is no identity fact, when some instance's tenant is unknown, or without a tenant in
    context. Idempotent."""
    if not _complete(facts) or context_value_for_column(facts, facts.identity_column, settings) is None:
        return facts
    if facts.identity_kind == "write":
        table = _table_of(facts.identity_column)
        writes = tuple(t for t in facts.unscoped_writes if t != table)
        pinned = tuple(f"main:{t}" for t in facts.unscoped_writes if t == table)
        unfiltered = facts.unfiltered
    else:  # load: every read scope of the statement is reached from the instance (refresh) or the parent (lazy load)
        writes = facts.unscoped_writes
        pinned = facts.unfiltered
        unfiltered = ()
    if not pinned:
        return facts
    identity = tuple(dict.fromkeys((*facts.identity, *pinned)))
    if unfiltered or writes:
        verdict = "partial"
    elif facts.inherited:
        verdict = "inherited"
    else:
        verdict = "present"
    return replace(facts, unfiltered=unfiltered, unscoped_writes=writes, identity=identity, tenant_filter=verdict)


def foreign_identity_rows(facts: SpanFacts, settings: Settings | None = None) -> tuple[tuple[str, int], ...]:
    """``(tenant value, instances)`` of the statement's ORM instances whose tenant is not the context's.

    Empty without an identity fact or a tenant in context; instances of unknown tenant are never counted."""
    if facts.identity_kind not in IDENTITY_KINDS or not facts.identity_tenant_values:
        return ()
    tenant = context_value_for_column(facts, facts.identity_column, settings)
    if tenant is None:
        return ()
    own = canonical(tenant)
    counts = facts.identity_tenant_rows
    found: list[tuple[str, int]] = []
    for index, value in enumerate(facts.identity_tenant_values):
        if value != tenant and canonical(value) != own:
            found.append((value, counts[index] if index < len(counts) else 1))
    return tuple(found)


def _table_of(column: str | None) -> str | None:
    """``table`` of ``table.column`` (a schema-qualified table keeps its schema out: names are bare)."""
    if not column or "." not in column:
        return None
    return column.rsplit(".", 1)[0].rsplit(".", 1)[-1]
