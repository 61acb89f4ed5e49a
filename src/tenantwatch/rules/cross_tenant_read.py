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

    With a tenant hierarchy (``tenant_keys``) every tenant-key column of those tables is compared with the context's
    value of the same key (a key the context holds no value for is not), and a row is the context's only if all
    match; the finding names the coarsest key that differed ("of another team", ``tenant_key: team``). A read whose
    tables are filtered only on a finer key whose value is not the context's is inspected on the other keys too
    (``teams.id = <a team of another organization>``: "of another organization").

    It judges rows already read, so it cannot block a statement before it runs: it reports in every mode (listing
    it in ``enforce.rules`` is a configuration error). In enforce mode it is also what stops a lookup by key that
    ``missing_tenant_filter`` lets run under observed enforcement: the first row of another tenant raises
    ``TenantIsolationError`` (with this finding) from the fetch, before the application receives it."""

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
        needs=("tenant_rows_other",),
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
        unfiltered = {item.rpartition(":")[2] for item in facts.unfiltered}
        finer = [key for key, values in facts.key_values if values]
        how = []
        for name in tables:
            if name in inherited:
                how.append(f"{name} (reached through a foreign key: a cross-tenant reference gone live)")
            elif name in keyed:
                how.append(f"{name} (a lookup by key without a tenant filter)")
            elif name not in unfiltered and finer:
                how.append(f"{name} (filtered by {', '.join(finer)} only)")
            else:
                how.append(f"{name} (no tenant filter)")
        key = facts.tenant_rows_other_keys[0] if settings.tenant_keys and facts.tenant_rows_other_keys else None
        message = (
            f"{facts.operation or 'statement'} returned {other} row(s) of another {key or 'tenant'} from "
            f"{', '.join(how) or table} ({inspected} inspected{cut}); context tenant {facts.tenant_id!r}"
        )
        return (self.finding(facts, settings, message, table=table, tenant_key=key),)


RULE = CrossTenantRead()
