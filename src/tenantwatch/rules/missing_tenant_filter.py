"""missing_tenant_filter: a tenant-scoped table is read in some scope without a tenant filter."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import Field

from tenantwatch.core.findings import Finding, Severity
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.rules._common import analysis_unknown, table_of_scope

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "MissingTenantFilter", "MissingTenantFilterSettings"]


class MissingTenantFilterSettings(RuleSettings):
    """``rules.missing_tenant_filter``."""

    latent_key_severity: Severity = Field(
        default="warning",
        description="severity of a lookup by key (an equality on the primary key or a unique column) whose returned "
        "rows were all inspected and all the context tenant's: a latent risk of one row",
    )
    latent_severity: Severity | None = Field(
        default=None,
        description="severity of any other latent read (no key predicate); default: the rule's severity, since a "
        "list query without its filter stays critical whatever it returned",
    )


class MissingTenantFilter(Rule):
    """One finding per tenant-scoped table that some read scope (main, CTE, subquery, UNION arm, JOIN) leaves
    unfiltered (``missing``). A table that only inherits its tenant (``inherited``) is a finding only with
    ``profile: strict``. Silent inside ``unscoped(reason)`` and when the statement could not be analyzed.

    **Latent**: when the instrumentation inspected every row the read returned (the table's tenant column in the
    result, see ``cross_tenant_read``) and none was another tenant's (with a tenant hierarchy: on none of the keys
    compared, which the message lists), the finding says it is latent; a lookup by key
    (``tenantwatch.db.keyed``) then takes ``latent_key_severity`` (default ``warning``), any other read
    ``latent_severity`` (default: unchanged)."""

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
        needs=("unfiltered", "inherited"),
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
            self._missing(facts, settings, operation, table, table_scopes, context)
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

    def _missing(  # noqa: PLR0917 - one call site
        self, facts: SpanFacts, settings: Settings, operation: str, table: str, scopes: list[str], context: str
    ) -> Finding:
        message = (
            f"{operation} reads {table} without a tenant filter in scope {', '.join(scopes)}: "
            f"it can see rows of every tenant; {context}"
        )
        if not _latent(facts, table, scopes):
            return self.finding(facts, settings, message, table=table)
        rows = facts.tenant_rows_inspected or 0
        # With a tenant hierarchy: whose rows they were, key by key (the keys the context holds and the rows had).
        whose = f"context's ({', '.join(facts.tenant_rows_keys)})" if facts.tenant_rows_keys else "context tenant's"
        returned = f"the {rows} row(s) it returned were all the {whose}" if rows else "it returned no row"
        own = settings.rules.missing_tenant_filter
        by_key = all(f"{scope}:{table}" in facts.keyed for scope in scopes)
        severity = own.latent_key_severity if by_key else own.latent_severity
        what = "a lookup by key" if by_key else "a read"
        finding = self.finding(facts, settings, f"{message}; latent, {what}: {returned}", table=table)
        return replace(finding, severity=severity) if severity is not None else finding


def _latent(facts: SpanFacts, table: str, scopes: list[str]) -> bool:
    """Whether every row ``table`` contributed to the result was inspected and none was another tenant's (only for
    scopes of the outermost block, whose rows are the result)."""
    return (
        facts.tenant_rows_inspected is not None
        and not facts.tenant_rows_uninspected
        and table in facts.tenant_rows_tables
        and table not in facts.tenant_rows_other_tables
        and all(scope == "main" or scope.startswith("join:") for scope in scopes)
    )


RULE = MissingTenantFilter()
