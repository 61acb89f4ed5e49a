"""no_tenant_context: a tenant-scoped query runs with no tenant in context (and not explicitly unscoped)."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, analysis_unknown

__all__ = ["NoTenantContext"]


class NoTenantContext(Rule):
    """Fires once per statement that touches tenant-scoped tables while no tenant is in context and the work is not
    marked ``unscoped(reason)``. Silent when the statement could not be analyzed."""

    __slots__ = ()
    id = "no_tenant_context"
    summary = "a tenant-scoped query runs with no tenant in context (and not explicitly unscoped)"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if (
            not facts.tenant_tables
            or facts.tenant_id is not None
            or facts.unscoped_reason is not None
            or analysis_unknown(facts)
        ):
            return NO_FINDINGS
        tables = ", ".join(facts.tenant_tables)
        message = (
            f"{facts.operation or 'statement'} on tenant-scoped {tables} ran with no tenant in context; "
            "wrap the work in tenant_context(...) or unscoped(reason)"
        )
        return (self.finding(facts, settings, message, table=facts.main_table or facts.tenant_tables[0]),)
