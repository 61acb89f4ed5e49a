"""missing_tenant_filter: a tenant-scoped table is read in some scope without a tenant filter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.rules._common import analysis_unknown, table_of_scope

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "MissingTenantFilter", "MissingTenantFilterSettings"]


class MissingTenantFilterSettings(RuleSettings):
    """``rules.missing_tenant_filter``: no options besides ``enabled`` and ``severity``."""


class MissingTenantFilter(Rule):
    """One finding per tenant-scoped table that some read scope (main, CTE, subquery, UNION arm, JOIN) leaves
    unfiltered (``missing``). A table that only inherits its tenant (``inherited``) is a finding only with
    ``profile: strict``. Silent inside ``unscoped(reason)`` and when the statement could not be analyzed."""

    __slots__ = ()
    meta = RuleMeta(
        id="missing_tenant_filter",
        title="Missing tenant filter",
        summary="a tenant-scoped table is read in some scope without a tenant filter",
        severity="critical",
        categories=("isolation",),
        remediation="Filter every scope that reads the table on the tenant column "
        "(`WHERE organization_id = :tenant`, ANDed at the top of that scope), or wrap deliberate cross-tenant work "
        "in `unscoped(reason)`.",
        stages=("statement",),
        settings=MissingTenantFilterSettings,
        verdict="the `missing` verdicts of the scope walk (`tenantwatch.sql._scope`), one `scope:table` entry each in "
        "`tenantwatch.db.unfiltered` (`SpanFacts.unfiltered`); with `profile: strict` also the `inherited` ones "
        "(`tenantwatch.db.inherited`)",
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        strict = settings.profile == "strict" and bool(facts.inherited)
        if not (facts.unfiltered or strict) or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        scopes: dict[str, list[str]] = {}
        for item in facts.unfiltered:
            scope, table = table_of_scope(item)
            scopes.setdefault(table, []).append(scope)
        inherited: dict[str, list[str]] = {}
        if strict:
            for item in facts.inherited:
                where, _, reason = item.rpartition(":")
                scope, table = table_of_scope(where)
                if table not in scopes:
                    inherited.setdefault(table, []).append(f"{scope} ({reason})")
        operation = facts.operation or "statement"
        context = f"context tenant {facts.tenant_id!r}" if facts.tenant_id else "no tenant in context"
        found = [
            self.finding(
                facts,
                settings,
                f"{operation} reads {table} without a tenant filter in scope {', '.join(table_scopes)}: "
                f"it can see rows of every tenant; {context}",
                table=table,
            )
            for table, table_scopes in scopes.items()
        ]
        found.extend(
            self.finding(
                facts,
                settings,
                f"{operation} reads {table} without a tenant filter of its own in scope {', '.join(table_scopes)}: "
                f"it only inherits the tenant (strict profile); {context}",
                table=table,
            )
            for table, table_scopes in inherited.items()
        )
        return tuple(found)


RULE = MissingTenantFilter()
