"""cross_tenant: a tenant value in a filter, IN list or written row differs from the context tenant."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, analysis_unknown, quote

__all__ = ["CrossTenant"]


class CrossTenant(Rule):
    """Fires once per statement whose filter values or written tenant values (compared as text) include a tenant
    other than the one in context. Silent with no tenant in context, inside ``unscoped(reason)`` and when the
    statement could not be analyzed."""

    __slots__ = ()
    id = "cross_tenant"
    summary = "a tenant value in a filter, IN list or written row differs from the context tenant"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        tenant = facts.tenant_id
        if tenant is None or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        values, written_values = facts.tenant_values, facts.written_tenant_values
        if (not values or values == (tenant,)) and (not written_values or written_values == (tenant,)):
            return NO_FINDINGS
        read = [value for value in values if value != tenant]
        written = [value for value in written_values if value != tenant]
        if not read and not written:
            return NO_FINDINGS
        table = facts.main_table or (facts.tenant_tables[0] if facts.tenant_tables else None)
        operation = facts.operation or "statement"
        what = []
        if read:
            what.append(f"filters on tenant {quote(read)}")
        if written:
            what.append(f"writes tenant {quote(written)}")
        target = f" on {table}" if table else ""
        message = f"{operation}{target} {' and '.join(what)} but the context tenant is {tenant!r}"
        return (self.finding(facts, settings, message, table=table),)
