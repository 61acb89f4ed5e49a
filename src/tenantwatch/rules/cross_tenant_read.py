"""cross_tenant_read: a read without a direct tenant filter returned rows of another tenant: an observed leak."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "CrossTenantRead", "CrossTenantReadSettings"]


class CrossTenantReadSettings(RuleSettings):
    """``rules.cross_tenant_read``."""

    max_rows: int = Field(
        default=1000,
        ge=0,
        description="returned rows inspected per statement; the rest are counted as uninspected (0: inspect none)",
    )


class CrossTenantRead(Rule):
    """Fires once per read whose returned rows, as the application fetched them, hold a tenant value other than the
    context tenant's in the tenant column of a table read without a direct tenant filter (verdict ``missing``, a
    lookup by key included, or ``inherited``: another tenant's row reached through a foreign key). Counts only,
    never values. Silent with no tenant in context, inside ``unscoped(reason)`` and when nothing was inspected.

    It judges rows already read, so enforce mode cannot block it: it reports in every mode (listing it in
    ``enforce.rules`` is a configuration error)."""

    __slots__ = ()
    meta = RuleMeta(
        id="cross_tenant_read",
        title="Cross-tenant read",
        summary="a read without a direct tenant filter returned rows of another tenant (by key or not)",
        severity="critical",
        categories=("isolation",),
        remediation="Filter the read on the tenant column from the tenant context (`WHERE organization_id = "
        ":tenant`, also for a lookup by id: `session.get()` does not filter), or load the row through a "
        "tenant-filtered parent; check which requests reached it, since these rows left their tenant.",
        stages=("statement",),
        settings=CrossTenantReadSettings,
        verdict="the tenant values of the rows actually returned, compared by the instrumentation "
        "(`tenantwatch.instrumentation._row_tenants`) for the `missing` and `inherited` tables whose tenant column "
        "is in the result: `tenantwatch.db.tenant_rows.*` counts",
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        other = facts.tenant_rows_other
        if not other or facts.tenant_id is None or facts.unscoped_reason is not None:
            return NO_FINDINGS
        tables = facts.tenant_rows_other_tables
        table = tables[0] if tables else facts.main_table
        inspected = facts.tenant_rows_inspected or 0
        uninspected = facts.tenant_rows_uninspected or 0
        cut = f", {uninspected} more not inspected" if uninspected else ""
        keyed = {item.rpartition(":")[2] for item in facts.keyed}
        inherited = {item.rpartition(":")[0].rpartition(":")[2] for item in facts.inherited}
        how = []
        for name in tables:
            if name in inherited:
                how.append(f"{name} (reached through a foreign key: a cross-tenant reference gone live)")
            elif name in keyed:
                how.append(f"{name} (a lookup by key without a tenant filter)")
            else:
                how.append(f"{name} (no tenant filter)")
        message = (
            f"{facts.operation or 'statement'} returned {other} row(s) of another tenant from "
            f"{', '.join(how) or table} ({inspected} inspected{cut}); context tenant {facts.tenant_id!r}"
        )
        return (self.finding(facts, settings, message, table=table),)


RULE = CrossTenantRead()
