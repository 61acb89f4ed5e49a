"""superuser_write: a write while the context role is a superuser role (those roles are read-only)."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, limits

__all__ = ["SuperuserWrite"]


class SuperuserWrite(Rule):
    """Fires on INSERT/UPDATE/DELETE when the context role is one of ``superuser_roles`` (case-insensitive).
    Applies inside ``unscoped(reason)`` too: unscoped work may read across tenants, a superuser may not write."""

    __slots__ = ()
    id = "superuser_write"
    summary = "a write while the context role is a superuser role (read-only)"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        role = facts.role
        if role is None or not facts.is_write or role.lower() not in limits(settings).superuser_roles:
            return NO_FINDINGS
        table = facts.main_table
        who = f"user {facts.user_id!r} with role {role!r}" if facts.user_id else f"role {role!r}"
        target = f" on {table}" if table else ""
        message = f"{who} ran {facts.operation}{target}: superuser roles are read-only"
        return (self.finding(facts, settings, message, table=table),)
