"""missing_tenant_filter: a tenant-scoped table is read in some scope without a tenant filter."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, analysis_unknown, table_of_scope

__all__ = ["MissingTenantFilter"]


class MissingTenantFilter(Rule):
    """One finding per tenant-scoped table that some read scope (main, CTE, subquery, UNION arm, JOIN) leaves
    unfiltered. Silent inside ``unscoped(reason)`` and when the statement could not be analyzed."""

    __slots__ = ()
    id = "missing_tenant_filter"
    summary = "a tenant-scoped table is read in some scope without a tenant filter"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if not facts.unfiltered or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        scopes: dict[str, list[str]] = {}
        for item in facts.unfiltered:
            scope, table = table_of_scope(item)
            scopes.setdefault(table, []).append(scope)
        operation = facts.operation or "statement"
        context = f"context tenant {facts.tenant_id!r}" if facts.tenant_id else "no tenant in context"
        return tuple(
            self.finding(
                facts,
                settings,
                f"{operation} reads {table} without a tenant filter in scope {', '.join(table_scopes)}: "
                f"it can see rows of every tenant; {context}",
                table=table,
            )
            for table, table_scopes in scopes.items()
        )
