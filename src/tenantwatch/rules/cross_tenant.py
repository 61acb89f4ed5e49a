"""cross_tenant: a tenant value in a filter, IN list or written row differs from the context tenant; an ORM instance
of another tenant is written or loaded through."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.identity import ForeignKeyValues, foreign_identity_keys
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.core.tenant_values import canonical
from tenantwatch.rules._common import analysis_unknown, quote

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "CrossTenant", "CrossTenantSettings"]


class CrossTenantSettings(RuleSettings):
    """``rules.cross_tenant``: no options besides ``enabled`` and ``severity``."""


class CrossTenant(Rule):
    """Fires once per statement whose filter values or written tenant values include a tenant other than the one
    in context, compared canonically (:func:`tenantwatch.core.tenant_values.canonical`: a UUID in any form or as 16
    bytes, an int and its text are one tenant), or that the ORM emits on instances of another tenant (ORM identity,
    :mod:`tenantwatch.core.identity`: a flush writing such a row, a refresh or lazy load through one). Silent with no
    tenant in context, inside ``unscoped(reason)`` and when the statement could not be analyzed.

    With a tenant hierarchy (``tenant_keys``) each key is compared with the context value of the same key: the root
    key's values with ``tenant.id``, a finer key's (``team``) with ``tenant.team.id``; a key the context holds no
    value for is not compared. The message names the key. ORM instances are compared on every tenant-key column of
    their table (``projects.organization_id`` and ``projects.team_id``), each with the context value of its key."""

    __slots__ = ()
    meta = RuleMeta(
        id="cross_tenant",
        title="Cross-tenant access",
        summary="a tenant value in a filter, IN list or written row differs from the context tenant; an ORM instance "
        "of another tenant is written or loaded through",
        severity="critical",
        categories=("isolation",),
        remediation="Take the tenant from the tenant context (the verified request), never from a request parameter "
        "or a stored row, when you filter or write the tenant column.",
        stages=("statement",),
        settings=CrossTenantSettings,
        verdict="the tenant values the scope walk (`tenantwatch.sql._scope`) found in tenant filters and written "
        "rows: `tenantwatch.db.tenant_values` and the written tenant values; with a tenant hierarchy also "
        "`tenantwatch.db.tenant_values.<key>` per finer key, compared with `tenant.<key>.id`; the tenant values of "
        "the ORM instances a statement acts on (`tenantwatch.db.identity.tenant_values`)",
        needs=("tenant_id",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        tenant = facts.tenant_id
        if tenant is None or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        parts: list[str] = []
        values, written_values = facts.tenant_values, facts.written_tenant_values
        differing: list[str] = []  # the tenant keys that differ, for the finding's tenant_key (hierarchy only)
        if (values and values != (tenant,)) or (written_values and written_values != (tenant,)):
            key = settings.root_key if settings.tenant_keys else None
            found = _differences(key, tenant, values, written_values)
            parts.extend(found)
            if found and key is not None:
                differing.append(key)
        if facts.key_values or facts.written_key_values:  # a tenant hierarchy's finer keys, each with its own
            read_by_key, written_by_key = dict(facts.key_values), dict(facts.written_key_values)
            for key in dict.fromkeys((*read_by_key, *written_by_key)):
                own = facts.tenant_value(key)
                if own is not None:  # no value of that key in context: nothing to compare with
                    found = _differences(key, own, read_by_key.get(key, ()), written_by_key.get(key, ()))
                    parts.extend(found)
                    if found:
                        differing.append(key)
        instances = foreign_identity_keys(facts, settings) if facts.identity_kind is not None else ()
        for foreign in instances:  # per tenant key the instances hold another value of
            parts.append(_instances(facts, foreign))
            if foreign.key is not None:
                differing.append(foreign.key)
        if not parts:
            return NO_FINDINGS
        table = facts.main_table or (facts.tenant_tables[0] if facts.tenant_tables else None)
        operation = facts.operation or "statement"
        target = f" on {table}" if table else ""
        message = f"{operation}{target} {'; '.join(parts)}"
        tenant_key = differing[0] if differing else None
        return (self.finding(facts, settings, message, table=table, tenant_key=tenant_key),)


def _instances(facts: SpanFacts, foreign: ForeignKeyValues) -> str:
    """``writes 2 rows of tenant 'b' (ORM instances of tools.org_id) but the context tenant is 'a'`` for the
    instances of an identity fact that hold another value of one tenant key (``team`` with a tenant hierarchy)."""
    noun = "row" if foreign.rows == 1 else "rows"
    verb = "writes" if facts.identity_kind == "write" else "loads through"
    source = f" of {foreign.column}" if foreign.column else ""
    noun_key = foreign.key or "tenant"
    return (
        f"{verb} {foreign.rows} {noun} of {noun_key} {quote(list(foreign.values))} (ORM instances{source}) "
        f"but the context {noun_key} is {foreign.own!r}"
    )


_CANONICAL: dict[str, str] = {}
_CANONICAL_MAX = 4096
"""Canonical forms of the tenant values seen lately (a process sees a few tenants again and again; two regular
expressions per value cost more than the lookup). Cleared when full."""


def _canonical(value: str) -> str:
    """:func:`canonical`, remembered for text values (the span attributes the rule reads are text)."""
    if type(value) is not str:
        return canonical(value)
    found = _CANONICAL.get(value)
    if found is None:
        if len(_CANONICAL) >= _CANONICAL_MAX:
            _CANONICAL.clear()
        found = _CANONICAL[value] = canonical(value)
    return found


def _differences(key: str | None, own: str, values: tuple[str, ...], written_values: tuple[str, ...]) -> list[str]:
    """What differs from the context value ``own`` of tenant key ``key`` (``None``: the one key), in words; every
    value in its canonical form (``uuid.hex`` as bound on SQLite reads dashed, like the context's UUID)."""
    mine = _canonical(own)
    read = [value for value in _canonical_distinct(values) if value != mine]
    written = [value for value in _canonical_distinct(written_values) if value != mine]
    if not read and not written:
        return []
    noun = key or "tenant"
    what = []
    if read:
        what.append(f"filters on {noun} {quote(read)}")
    if written:
        what.append(f"writes {noun} {quote(written)}")
    return [f"{' and '.join(what)} but the context {noun} is {mine!r}"]


def _canonical_distinct(values: Iterable[str]) -> list[str]:
    """The canonical forms of ``values``, each once, in first-seen order."""
    return list(dict.fromkeys(_canonical(value) for value in values))


RULE = CrossTenant()
