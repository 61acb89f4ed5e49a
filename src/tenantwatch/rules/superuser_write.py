"""superuser_write: a write while the context role is a superuser role (those roles are read-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenantwatch.core.findings import Finding
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings, per_settings

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "SuperuserWrite", "SuperuserWriteSettings"]


class SuperuserWriteSettings(RuleSettings):
    """``rules.superuser_write``: no options of its own; the roles are the top-level ``superuser_roles``."""


@per_settings
def _superuser_roles(settings: Settings) -> frozenset[str]:
    return frozenset(role.lower() for role in settings.superuser_roles)


class SuperuserWrite(Rule):
    """Fires on INSERT/UPDATE/DELETE when the context role is one of ``superuser_roles`` (top-level setting, default
    ``superuser, admin``; case-insensitive). Applies inside ``unscoped(reason)`` too: unscoped work may read across
    tenants, a superuser may not write."""

    __slots__ = ()
    meta = RuleMeta(
        id="superuser_write",
        title="Superuser write",
        summary="a write while the context role is a superuser role (read-only)",
        severity="high",
        categories=("isolation", "access-control"),
        remediation="Superuser and admin sessions are read-only by policy: perform the change as (or on behalf of) "
        "the tenant's own user, through the tenant-scoped code path.",
        stages=("statement",),
        settings=SuperuserWriteSettings,
        verdict="the operation of the statement (`db.operation.name`) and the context role (`enduser.role`)",
        needs=("role",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        role = facts.role
        if role is None or not facts.is_write or role.lower() not in _superuser_roles(settings):
            return NO_FINDINGS
        table = facts.main_table
        who = f"user {facts.user_id!r} with role {role!r}" if facts.user_id else f"role {role!r}"
        target = f" on {table}" if table else ""
        message = f"{who} ran {facts.operation}{target}: superuser roles are read-only"
        return (self.finding(facts, settings, message, table=table),)


RULE = SuperuserWrite()
