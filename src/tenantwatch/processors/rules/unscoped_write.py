"""unscoped_write: UPDATE/DELETE of a tenant table without a tenant filter; INSERT without the tenant column."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, analysis_unknown

__all__ = ["UnscopedWrite"]


class UnscopedWrite(Rule):
    """One finding per write target the instrumentation recorded as unscoped. Silent inside ``unscoped(reason)``
    and when the statement could not be analyzed."""

    __slots__ = ()
    id = "unscoped_write"
    summary = "UPDATE/DELETE on a tenant table without tenant filter; INSERT without tenant column"

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
    if operation in ("UPDATE", "DELETE"):
        return f"{operation} on {table} has no tenant filter: it can change rows of every tenant"
    return f"{operation or 'write'} on {table} is not scoped to a tenant"
