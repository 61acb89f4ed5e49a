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

With a tenant hierarchy (``tenant_keys``) the facts hold every tenant-key column of the instances' table
(``identity_column`` and ``identity_key_columns``: ``projects.organization_id`` and ``projects.team_id``;
``teams.organization_id`` and ``teams.id``), and :func:`foreign_identity_keys` compares each with the context's value
of its own key (a key the context holds no value for is not compared): an instance is the context's only if every
compared key matches, and ``cross_tenant`` names the key that differed.

Every comparison of an instance's tenant value with the context goes through :func:`context_value_for_column`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tenantwatch.context import DEFAULT_KEY
from tenantwatch.core import row_tenants
from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = [
    "IDENTITY_KINDS",
    "ForeignKeyValues",
    "apply_identity",
    "context_value_for_column",
    "foreign_identity_keys",
    "foreign_identity_rows",
    "identity_key",
]

IDENTITY_KINDS = ("write", "load")
"""``tenantwatch.db.identity.kind``: the flush writes the instances / the statement loads them or through them."""


def identity_key(facts: SpanFacts, settings: Settings | None = None) -> str:
    """The tenant key the statement's identity column holds (the root key without a hierarchy)."""
    if settings is None:
        return DEFAULT_KEY
    column = facts.identity_column
    if not column:
        return settings.root_key
    return row_tenants.key_of_column(column, settings) if settings.tenant_keys else settings.root_key


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
    if not _complete(facts) or not any(
        context_value_for_column(facts, column, settings) is not None for column in _columns(facts)
    ):
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


@dataclass(frozen=True, slots=True)
class ForeignKeyValues:
    """The instances of a statement whose value of one tenant key is not the context's."""

    key: str | None
    """The tenant key (``None`` without a tenant hierarchy)."""
    column: str | None
    """``table.column`` the values come from."""
    values: tuple[str, ...]
    """The differing values, canonical, each once."""
    own: str
    """The context's value of that key, canonical."""
    rows: int
    """Instances holding one of ``values``."""


def foreign_identity_keys(facts: SpanFacts, settings: Settings | None = None) -> tuple[ForeignKeyValues, ...]:
    """Per tenant key whose value differs from the context's in some instance of the statement, those instances:
    the tenant column first, then (with a tenant hierarchy) each further key column; a key the context holds no
    value for, and unknown values, are not compared."""
    if facts.identity_kind not in IDENTITY_KINDS or not facts.identity_tenant_values:
        return ()
    columns = _columns(facts)
    width = len(columns) - 1
    counts = facts.identity_tenant_rows
    key_values = facts.identity_key_values
    found: list[ForeignKeyValues] = []
    for position, column in enumerate(columns):
        tenant = context_value_for_column(facts, column, settings)
        if tenant is None:
            continue
        own = canonical(tenant)
        values: dict[str, None] = {}
        rows = 0
        for index, primary in enumerate(facts.identity_tenant_values):
            if position == 0:
                value = primary
            else:
                at = index * width + position - 1
                value = key_values[at] if at < len(key_values) else ""
            if not value or value == tenant or canonical(value) == own:
                continue
            values[canonical(value)] = None
            rows += counts[index] if index < len(counts) else 1
        if values:
            key = row_tenants.key_of_column(column or "", settings) if settings and settings.tenant_keys else None
            found.append(ForeignKeyValues(key, column, tuple(values), own, rows))
    return tuple(found)


def _columns(facts: SpanFacts) -> tuple[str | None, ...]:
    """The identity column and (with a tenant hierarchy) the further key columns, in the facts' order."""
    return (facts.identity_column, *facts.identity_key_columns)


def _table_of(column: str | None) -> str | None:
    """``table`` of ``table.column`` (a schema-qualified table keeps its schema out: names are bare)."""
    if not column or "." not in column:
        return None
    return column.rsplit(".", 1)[0].rsplit(".", 1)[-1]
