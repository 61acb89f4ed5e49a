"""stale_tenant_context: the statement ran for another tenant than its request, or under another RLS setting."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule

__all__ = ["StaleTenantContext"]


class StaleTenantContext(Rule):
    """Fires on a statement touching tenant data when

    * its tenant differs from the tenant of the request it ran in (the server span of the same trace): context lost
      (no tenant) or leaked (another tenant's) across async tasks, threads or jobs; or
    * (any statement) RLS assist is on and the connection's tenant setting (``tenantwatch.db.rls_tenant``) differs
      from the tenant context, ``""`` meaning the setting is missing: a pooled connection reused with another
      tenant's setting.

    Deliberately unscoped work (``tenantwatch.unscoped``) is exempt.
    """

    __slots__ = ()
    id = "stale_tenant_context"
    summary = "the statement's tenant differs from its request's tenant or from the connection's RLS setting"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if facts.unscoped_reason is not None:
            return NO_FINDINGS
        tenant = facts.tenant_id
        table = facts.tenant_tables[0] if facts.tenant_tables else facts.main_table
        request = facts.request_tenant
        if request is not None and tenant != request and facts.tenant_tables:
            seen = "no tenant" if tenant is None else f"tenant {tenant!r}"
            message = f"{facts.operation or 'statement'} on {table} ran with {seen} inside a request for {request!r}"
            return (self.finding(facts, settings, message, table=table),)
        rls = facts.rls_tenant
        if rls is not None and tenant is not None and rls != tenant:
            setting = "no RLS tenant setting" if rls == "" else f"the RLS setting of tenant {rls!r}"
            message = (
                f"{facts.operation or 'statement'} on {table} for tenant {tenant!r} ran on a connection with {setting}"
            )
            return (self.finding(facts, settings, message, table=table),)
        return NO_FINDINGS
