"""cross_tenant: a tenant value in a filter, IN list or written row differs from the context tenant; an ORM instance
of another tenant is written or loaded through."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.identity import foreign_identity_rows
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
    tenant in context, inside ``unscoped(reason)`` and when the statement could not be analyzed."""

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
        "rows: `tenantwatch.db.tenant_values` and the written tenant values; the tenant values of the ORM instances "
        "a statement acts on (`tenantwatch.db.identity.tenant_values`)",
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        tenant = facts.tenant_id
        if tenant is None or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        values, written_values = facts.tenant_values, facts.written_tenant_values
        instances = foreign_identity_rows(facts) if facts.identity_kind is not None else ()
        if (
            (not values or values == (tenant,))
            and (not written_values or written_values == (tenant,))
            and not instances
        ):
            return NO_FINDINGS
        own = canonical(tenant)
        read = [value for value in values if value != tenant and canonical(value) != own]
        written = [value for value in written_values if value != tenant and canonical(value) != own]
        if not read and not written and not instances:
            return NO_FINDINGS
        table = facts.main_table or (facts.tenant_tables[0] if facts.tenant_tables else None)
        operation = facts.operation or "statement"
        what = []
        if read:
            what.append(f"filters on tenant {quote(read)}")
        if written:
            what.append(f"writes tenant {quote(written)}")
        if instances:
            what.append(_instances(facts, instances))
        target = f" on {table}" if table else ""
        message = f"{operation}{target} {' and '.join(what)} but the context tenant is {tenant!r}"
        return (self.finding(facts, settings, message, table=table),)


def _instances(facts: SpanFacts, instances: tuple[tuple[str, int], ...]) -> str:
    """``writes 2 rows of tenant 'b' (ORM instances of tools.org_id)`` for an identity fact."""
    rows = sum(count for _, count in instances)
    noun = "row" if rows == 1 else "rows"
    verb = "writes" if facts.identity_kind == "write" else "loads through"
    source = f" of {facts.identity_column}" if facts.identity_column else ""
    return f"{verb} {rows} {noun} of tenant {quote([value for value, _ in instances])} (ORM instances{source})"


RULE = CrossTenant()
