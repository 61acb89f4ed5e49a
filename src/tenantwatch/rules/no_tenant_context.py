"""no_tenant_context: a tenant-scoped query runs with no tenant in context (and not explicitly unscoped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.rules._common import analysis_unknown

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "NoTenantContext", "NoTenantContextSettings"]


class NoTenantContextSettings(RuleSettings):
    """``rules.no_tenant_context``: no options besides ``enabled`` and ``severity``."""


class NoTenantContext(Rule):
    """Fires once per statement that touches tenant-scoped tables while no tenant is in context and the work is not
    marked ``unscoped(reason)``. Silent when the statement could not be analyzed."""

    __slots__ = ()
    meta = RuleMeta(
        id="no_tenant_context",
        title="No tenant context",
        summary="a tenant-scoped query runs with no tenant in context (and not explicitly unscoped)",
        severity="high",
        categories=("isolation",),
        remediation="Run tenant work inside `tenant_context(tenant)` (the ASGI middleware does it per request; "
        "background jobs must do it themselves), or mark deliberate cross-tenant work `unscoped(reason)`.",
        stages=("statement",),
        settings=NoTenantContextSettings,
        verdict="the tenant-scoped tables of the statement (`tenantwatch.db.tenant_tables`) and the tenant context",
        needs=("tenant_tables",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if (
            not facts.tenant_tables
            or facts.tenant_id is not None
            or facts.tenant_keys  # a tenant hierarchy: a finer key alone (a team) is a tenant context too
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


RULE = NoTenantContext()
