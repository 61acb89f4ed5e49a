"""The audit's lints: tenant isolation problems in a PostgreSQL schema, each with a stable id, a level and a fix.

Every lint has the same shape (in the manner of splinter's database lints): a stable ``id`` (``TWA001``) and
``name`` (``rls_disabled``), a ``title``, a ``level`` (``ERROR`` a tenant can read or write another tenant's rows
through the database, ``WARN`` isolation rests on the application alone or is weaker than it looks, ``INFO`` worth
knowing), the ``object`` it is about, a ``detail`` line, a ``remediation`` (the SQL to fix it where one exists) and
``metadata``. :data:`LINTS` lists them; docs/cli.md shows each with an example.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from tenantwatch.config import Settings
from tenantwatch.sql.rls_coverage import RlsTable, quote_ident
from tenantwatch.tools.audit.catalog import CatalogSnapshot, Policy
from tenantwatch.tools.audit.policies import PolicyVerdict, judge_expression

__all__ = ["LEVELS", "LINTS", "Level", "Lint", "LintKind", "at_or_above", "run_lints"]

Level = Literal["INFO", "WARN", "ERROR"]
LEVELS: Final[tuple[Level, ...]] = ("INFO", "WARN", "ERROR")
"""Lint levels, lowest first."""


@dataclass(frozen=True, slots=True)
class LintKind:
    """One lint: what every finding of it shares."""

    id: str
    name: str
    title: str
    level: Level
    description: str


@dataclass(frozen=True, slots=True)
class Lint:
    """One finding of a lint on one object."""

    kind: LintKind
    object: Mapping[str, str]
    """``{"type": "table", "schema": ..., "name": ...}``, ``{"type": "policy", ...}`` or ``{"type": "role", ...}``."""
    detail: str
    remediation: str
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def object_name(self) -> str:
        """The object as a reader names it: ``public.items``, ``policy p on public.items``, ``role app``."""
        kind = self.object.get("type")
        if kind == "role":
            return f"role {self.object['name']}"
        table = f"{self.object['schema']}.{self.object['table' if kind == 'policy' else 'name']}"
        return f"policy {self.object['name']} on {table}" if kind == "policy" else table

    @property
    def cache_key(self) -> str:
        """Stable across runs: the lint name and the object, for baselines and de-duplication."""
        parts = [self.kind.name, *(self.object[k] for k in ("schema", "table", "name") if k in self.object)]
        return "_".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.kind.id,
            "name": self.kind.name,
            "title": self.kind.title,
            "level": self.kind.level,
            "object": dict(self.object),
            "detail": self.detail,
            "remediation": self.remediation,
            "description": self.kind.description,
            "metadata": dict(self.metadata),
            "cache_key": self.cache_key,
        }


RLS_DISABLED = LintKind(
    "TWA001",
    "rls_disabled",
    "Tenant table without row level security",
    "ERROR",
    "A tenant table has RLS off: the database returns every tenant's rows to any statement that forgets the filter.",
)
RLS_NOT_FORCED = LintKind(
    "TWA002",
    "rls_not_forced",
    "Row level security not forced",
    "WARN",
    "RLS is enabled but not FORCEd: the table's owner (and any role inheriting from it) bypasses every policy.",
)
RLS_NO_POLICY = LintKind(
    "TWA003",
    "rls_no_policy",
    "Row level security without a policy",
    "INFO",
    "RLS is on but no policy exists: every row is hidden from roles the policies apply to (fails closed), so the "
    "application either sees nothing or connects as a role that bypasses RLS.",
)
POLICY_ALWAYS_TRUE = LintKind(
    "TWA004",
    "policy_always_true",
    "Policy that is always true",
    "ERROR",
    "A permissive policy lets every row through (USING (true), a missing WITH CHECK on INSERT, an OR with a true "
    "arm): permissive policies are ORed, so this one opens the table to every tenant.",
)
POLICY_IGNORES_TENANT = LintKind(
    "TWA005",
    "policy_ignores_tenant",
    "Policy that ignores the tenant",
    "ERROR",
    "A permissive policy does not compare the tenant column with the tenant setting tenantwatch's RLS assist sets "
    "(ANDed at its top): it does not keep tenants apart.",
)
TENANT_COLUMN_NULLABLE = LintKind(
    "TWA006",
    "tenant_column_nullable",
    "Nullable tenant column",
    "WARN",
    "Rows without a tenant belong to no tenant: policies hide them, unscoped code sees them, and an INSERT that "
    "forgets the column succeeds.",
)
TENANT_COLUMN_UNINDEXED = LintKind(
    "TWA007",
    "tenant_column_unindexed",
    "No index led by the tenant column",
    "WARN",
    "Every tenant-scoped query (and every policy check) filters on the tenant column: without an index led by it, "
    "each one scans the whole table.",
)
FOREIGN_KEY_WITHOUT_TENANT = LintKind(
    "TWA008",
    "foreign_key_without_tenant",
    "Foreign key between tenant tables without the tenant column",
    "WARN",
    "A foreign key between two tenant tables that does not include the tenant column lets a row point at another "
    "tenant's row: cross-tenant references are possible.",
)
ROLE_OWNS_TENANT_TABLE = LintKind(
    "TWA009",
    "role_owns_tenant_table",
    "Application role owns a tenant table",
    "ERROR",
    "The application role owns the table (or inherits from its owner) and RLS is not forced: RLS is silently off "
    "for every statement the application sends.",
)
ROLE_BYPASSES_RLS = LintKind(
    "TWA010",
    "role_bypasses_rls",
    "Application role has BYPASSRLS",
    "ERROR",
    "The application role has BYPASSRLS: no policy applies to it, RLS is silently off.",
)
ROLE_IS_SUPERUSER = LintKind(
    "TWA011",
    "role_is_superuser",
    "Application role is a superuser",
    "ERROR",
    "The application role is a superuser: no policy applies to it, RLS is silently off (and it can change them).",
)

LINTS: Final = (
    RLS_DISABLED,
    RLS_NOT_FORCED,
    RLS_NO_POLICY,
    POLICY_ALWAYS_TRUE,
    POLICY_IGNORES_TENANT,
    TENANT_COLUMN_NULLABLE,
    TENANT_COLUMN_UNINDEXED,
    FOREIGN_KEY_WITHOUT_TENANT,
    ROLE_OWNS_TENANT_TABLE,
    ROLE_BYPASSES_RLS,
    ROLE_IS_SUPERUSER,
)
"""Every lint, in id order."""

_TEXT_TYPES: Final = ("text", "character varying", "varchar", "character", "name", "citext")


def at_or_above(lints: list[Lint], level: Level) -> list[Lint]:
    """The lints at ``level`` or above."""
    floor = LEVELS.index(level)
    return [lint for lint in lints if LEVELS.index(lint.kind.level) >= floor]


def run_lints(snapshot: CatalogSnapshot, settings: Settings) -> list[Lint]:
    """Every lint on ``snapshot``, sorted by level (highest first), then id and object."""
    context = _Context(snapshot, settings)
    found: list[Lint] = []
    for check in _CHECKS:
        found.extend(check(context))
    found.sort(key=lambda lint: (-LEVELS.index(lint.kind.level), lint.kind.id, lint.cache_key))
    return found


class _Context:
    def __init__(self, snapshot: CatalogSnapshot, settings: Settings) -> None:
        self.snapshot = snapshot
        self.setting = settings.rls.setting
        self.settings = frozenset(s.lower() for s in (settings.rls.setting, *settings.rls.key_settings.values()))

    def tenant_predicate(self, table: RlsTable) -> str:
        """``organization_id = <the tenant setting, cast to the column's type>``: what a policy should say."""
        column = self.snapshot.columns.get(table.oid)
        setting = f"current_setting('{self.setting}', true)"
        type_name = column.type if column is not None else "text"
        if type_name.partition("(")[0].strip() not in _TEXT_TYPES:
            setting = f"NULLIF({setting}, '')::{type_name}"
        return f"{quote_ident(table.column)} = {setting}"


def _table(table: RlsTable) -> dict[str, str]:
    return {"type": "table", "schema": table.schema, "name": table.name}


def _create_policy(context: _Context, table: RlsTable) -> str:
    predicate = context.tenant_predicate(table)
    return f"CREATE POLICY tenant_isolation ON {table.qualified} USING ({predicate}) WITH CHECK ({predicate});"


def _rls_flags(context: _Context) -> Iterator[Lint]:
    for table in context.snapshot.tenant_tables:
        policies = context.snapshot.policies.get(table.oid, ())
        if not table.enabled:
            fix = [f"ALTER TABLE {table.qualified} ENABLE ROW LEVEL SECURITY;"]
            fix.append(f"ALTER TABLE {table.qualified} FORCE ROW LEVEL SECURITY;")
            if not policies:
                fix.append(_create_policy(context, table))
            yield Lint(
                RLS_DISABLED,
                _table(table),
                f"Table `{table.display}` (tenant column `{table.column}`) has row level security disabled"
                + (f"; its {len(policies)} polic{'y' if len(policies) == 1 else 'ies'} do nothing" if policies else "")
                + ".",
                "\n".join(fix),
                {"tenant_column": table.column, "policies": [p.name for p in policies]},
            )
            continue
        if not table.forced:
            yield Lint(
                RLS_NOT_FORCED,
                _table(table),
                f"Table `{table.display}` has row level security enabled but not forced: its owner "
                f"`{table.owner}` bypasses the policies.",
                f"ALTER TABLE {table.qualified} FORCE ROW LEVEL SECURITY;",
                {"owner": table.owner},
            )
        if not policies:
            yield Lint(
                RLS_NO_POLICY,
                _table(table),
                f"Table `{table.display}` has row level security enabled but no policy: every row is hidden.",
                _create_policy(context, table),
                {},
            )


def _expressions(policy: Policy) -> list[tuple[str, str | None]]:
    """The expressions that decide which rows ``policy`` lets through: (clause, expression)."""
    if policy.command == "INSERT":
        return [("WITH CHECK", policy.with_check)]
    if policy.command in ("SELECT", "DELETE"):
        return [("USING", policy.qual)]
    found: list[tuple[str, str | None]] = [("USING", policy.qual)]
    if policy.with_check is not None:
        found.append(("WITH CHECK", policy.with_check))
    return found


def _covers(restrictive: Policy, command: str) -> bool:
    return restrictive.command in ("ALL", command)


def _policies(context: _Context) -> Iterator[Lint]:
    for table in context.snapshot.tenant_tables:
        if not table.enabled:
            continue  # rls_disabled says it: the policies do nothing yet
        columns = context.snapshot.key_columns(table)
        policies = context.snapshot.policies.get(table.oid, ())
        scoped_restrictive = [
            p
            for p in policies
            if not p.permissive
            and all(judge_expression(e, columns, context.settings).verdict == "scoped" for _, e in _expressions(p))
        ]
        for policy in policies:
            if not policy.permissive or any(_covers(r, policy.command) for r in scoped_restrictive):
                continue
            problems: list[tuple[str, PolicyVerdict]] = []
            for clause, expression in _expressions(policy):
                verdict = judge_expression(expression, columns, context.settings)
                if verdict.verdict != "scoped":
                    problems.append((clause, verdict))
            if not problems:
                continue
            always = any(v.verdict == "always_true" for _, v in problems)
            kind = POLICY_ALWAYS_TRUE if always else POLICY_IGNORES_TENANT
            said = "; ".join(
                f"its {clause} {'is missing' if v.verdict == 'always_true' and _missing(policy, clause) else v.problem}"
                for clause, v in problems
            )
            predicate = context.tenant_predicate(table)
            clauses = " ".join(f"{clause} ({predicate})" for clause, _ in problems)
            yield Lint(
                kind,
                {"type": "policy", "schema": table.schema, "table": table.name, "name": policy.name},
                f"Policy `{policy.name}` on `{table.display}` (permissive, FOR {policy.command}, TO "
                f"{', '.join(policy.roles) or 'public'}): {said}. Expected `{table.column}` compared with "
                f"current_setting('{context.setting}').",
                f"ALTER POLICY {quote_ident(policy.name)} ON {table.qualified} {clauses};",
                {
                    "command": policy.command,
                    "roles": list(policy.roles),
                    "qual": policy.qual,
                    "with_check": policy.with_check,
                    "tenant_setting": context.setting,
                },
            )


def _missing(policy: Policy, clause: str) -> bool:
    return (policy.qual if clause == "USING" else policy.with_check) is None


def _columns(context: _Context) -> Iterator[Lint]:
    for table in context.snapshot.tenant_tables:
        column = context.snapshot.columns.get(table.oid)
        if column is not None and not column.not_null:
            yield Lint(
                TENANT_COLUMN_NULLABLE,
                _table(table),
                f"Tenant column `{table.display}.{table.column}` ({column.type}) allows NULL.",
                f"UPDATE {table.qualified} SET {quote_ident(table.column)} = ... WHERE {quote_ident(table.column)} "
                f"IS NULL;  -- first give the rows a tenant (or delete them)\n"
                f"ALTER TABLE {table.qualified} ALTER COLUMN {quote_ident(table.column)} SET NOT NULL;",
                {"tenant_column": table.column, "type": column.type},
            )
        if table.column not in context.snapshot.leading_index_columns.get(table.oid, frozenset()):
            yield Lint(
                TENANT_COLUMN_UNINDEXED,
                _table(table),
                f"No index of `{table.display}` starts with its tenant column `{table.column}`.",
                f"CREATE INDEX CONCURRENTLY ON {table.qualified} ({quote_ident(table.column)});",
                {"tenant_column": table.column},
            )


def _foreign_keys(context: _Context) -> Iterator[Lint]:
    for table in context.snapshot.tenant_tables:
        for fk in context.snapshot.foreign_keys(table):
            referred = context.snapshot.by_name(fk.referred)
            if referred is None:
                continue
            if (table.column, referred.column) in set(zip(fk.columns, fk.referred_columns, strict=True)):
                continue
            own = ", ".join(quote_ident(c) for c in (table.column, *fk.columns))
            wanted = (referred.column, *fk.referred_columns)
            theirs = ", ".join(quote_ident(c) for c in wanted)
            keyed = any(set(key) == set(wanted) for key in context.snapshot.tables.keys_for(referred.name))
            unique = "" if keyed else f"ALTER TABLE {referred.qualified} ADD UNIQUE ({theirs});\n"
            yield Lint(
                FOREIGN_KEY_WITHOUT_TENANT,
                _table(table),
                f"Foreign key `{table.display}` ({', '.join(fk.columns)}) -> `{referred.display}` "
                f"({', '.join(fk.referred_columns)}) does not include the tenant column: a row of one tenant may "
                f"reference a row of another.",
                f"{unique}ALTER TABLE {table.qualified} ADD FOREIGN KEY ({own}) "
                f"REFERENCES {referred.qualified} ({theirs});\n"
                f"-- then drop the foreign key on ({', '.join(fk.columns)})",
                {
                    "columns": list(fk.columns),
                    "referred": referred.display,
                    "referred_columns": list(fk.referred_columns),
                },
            )


def _role(context: _Context) -> Iterator[Lint]:
    role = context.snapshot.role
    name = quote_ident(role.name)
    if role.superuser:
        yield Lint(
            ROLE_IS_SUPERUSER,
            {"type": "role", "name": role.name},
            f"Role `{role.name}` is a superuser: row level security never applies to it.",
            f"CREATE ROLE app_user LOGIN NOSUPERUSER NOBYPASSRLS;  -- connect the application as this role\n"
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user;\n"
            f"-- or: ALTER ROLE {name} NOSUPERUSER;",
            {"role": role.name},
        )
    if role.bypass_rls and not role.superuser:
        yield Lint(
            ROLE_BYPASSES_RLS,
            {"type": "role", "name": role.name},
            f"Role `{role.name}` has BYPASSRLS: row level security never applies to it.",
            f"ALTER ROLE {name} NOBYPASSRLS;",
            {"role": role.name},
        )
    if role.superuser:
        return  # a superuser holds every role's privileges: role_is_superuser says all there is to say
    for table in context.snapshot.tenant_tables:
        if table.oid in context.snapshot.owned and table.enabled and not table.forced:
            yield Lint(
                ROLE_OWNS_TENANT_TABLE,
                _table(table),
                f"Role `{role.name}` owns `{table.display}` (owner `{table.owner}`) and RLS is not forced: its "
                f"policies do not apply to the application.",
                f"ALTER TABLE {table.qualified} FORCE ROW LEVEL SECURITY;\n"
                f"-- or give the table to a migration role: ALTER TABLE {table.qualified} OWNER TO migrator;",
                {"role": role.name, "owner": table.owner},
            )


_CHECKS: Final[tuple[Callable[[_Context], Iterator[Lint]], ...]] = (
    _rls_flags,
    _policies,
    _columns,
    _foreign_keys,
    _role,
)
