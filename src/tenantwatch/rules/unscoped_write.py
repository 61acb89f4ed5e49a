"""unscoped_write: UPDATE/DELETE of a tenant table without a tenant filter; INSERT without the tenant column."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.rules._common import analysis_unknown

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "UnscopedWrite", "UnscopedWriteSettings"]


class UnscopedWriteSettings(RuleSettings):
    """``rules.unscoped_write``: no options besides ``enabled`` and ``severity``."""


class UnscopedWrite(Rule):
    """One finding per write target the instrumentation recorded as unscoped. Silent inside ``unscoped(reason)``
    and when the statement could not be analyzed."""

    __slots__ = ()
    meta = RuleMeta(
        id="unscoped_write",
        title="Unscoped write",
        summary="UPDATE/DELETE on a tenant table without tenant filter; INSERT without tenant column; TRUNCATE",
        severity="critical",
        categories=("isolation",),
        remediation="Add `AND organization_id = :tenant` to the UPDATE/DELETE, and set the tenant column from the "
        "tenant context on every INSERT.",
        stages=("statement",),
        settings=UnscopedWriteSettings,
        verdict="the write targets the scope walk (`tenantwatch.sql._scope`) judged `missing` (UPDATE/DELETE) or "
        "written without the tenant column (INSERT): `tenantwatch.db.unscoped_writes`",
        needs=("unscoped_writes",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        if not facts.unscoped_writes or facts.unscoped_reason is not None or analysis_unknown(facts):
            return NO_FINDINGS
        return tuple(
            self.finding(facts, settings, _message(facts.operation, table), table=table)
            for table in dict.fromkeys(facts.unscoped_writes)
        )


def _message(operation: str | None, table: str) -> str:
    if operation == "INSERT":
        return f"INSERT into {table} does not set the tenant column: the new rows belong to no tenant"
    if operation == "TRUNCATE":
        return f"TRUNCATE of {table} removes the rows of every tenant"
    if operation in ("UPDATE", "DELETE"):
        return f"{operation} on {table} has no tenant filter: it can change rows of every tenant"
    return f"{operation or 'write'} on {table} is not scoped to a tenant"


RULE = UnscopedWrite()
