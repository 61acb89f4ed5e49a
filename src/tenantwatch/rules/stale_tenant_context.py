"""stale_tenant_context: the statement ran for another tenant than its request, or under another RLS setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.core.tenant_values import same_tenant

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "StaleTenantContext", "StaleTenantContextSettings"]


class StaleTenantContextSettings(RuleSettings):
    """``rules.stale_tenant_context``: no options besides ``enabled`` and ``severity``."""


class StaleTenantContext(Rule):
    """Fires on a statement touching tenant data when

    * its tenant differs from the tenant of the request it ran in (the server span of the same trace): context lost
      (no tenant) or leaked (another tenant's) across async tasks, threads or jobs; or
    * (any statement) RLS assist is on and the connection's tenant setting (``tenantwatch.db.rls_tenant``) differs
      from the tenant context, ``""`` meaning the setting is missing: a pooled connection reused with another
      tenant's setting.

    Tenants are compared canonically (a UUID in any form, an int and its text are one tenant).
    Deliberately unscoped work (``tenantwatch.unscoped``) is exempt.
    """

    __slots__ = ()
    meta = RuleMeta(
        id="stale_tenant_context",
        title="Stale tenant context",
        summary="the statement's tenant differs from its request's tenant or from the connection's RLS setting",
        severity="critical",
        categories=("isolation",),
        remediation="Carry the tenant context into tasks, threads and jobs (`contextvars.copy_context()`, "
        "`tenant_context(...)` in the worker), and reset the RLS setting per transaction (`SET LOCAL`).",
        stages=("statement",),
        settings=StaleTenantContextSettings,
        verdict="the request's tenant (the server span of the same trace) and the connection's RLS setting "
        "(`tenantwatch.db.rls_tenant`), against the statement's tenant",
        needs=("request_tenant", "rls_tenant"),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if facts.unscoped_reason is not None:
            return NO_FINDINGS
        tenant = facts.tenant_id
        table = facts.tenant_tables[0] if facts.tenant_tables else facts.main_table
        request = facts.request_tenant
        if request is not None and facts.tenant_tables and (tenant is None or not same_tenant(tenant, request)):
            seen = "no tenant" if tenant is None else f"tenant {tenant!r}"
            message = f"{facts.operation or 'statement'} on {table} ran with {seen} inside a request for {request!r}"
            return (self.finding(facts, settings, message, table=table),)
        rls = facts.rls_tenant
        if rls is not None and tenant is not None and (rls == "" or not same_tenant(rls, tenant)):
            setting = "no RLS tenant setting" if rls == "" else f"the RLS setting of tenant {rls!r}"
            message = (
                f"{facts.operation or 'statement'} on {table} for tenant {tenant!r} ran on a connection with {setting}"
            )
            return (self.finding(facts, settings, message, table=table),)
        return NO_FINDINGS


RULE = StaleTenantContext()
