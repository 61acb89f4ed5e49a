"""Schemas for the audit tests, built on the session's real PostgreSQL: one correct database, and one broken
database where each table is correct except for the one defect its name says (so each lint must fire on exactly
its table). Roles: an application role (no superuser, no BYPASSRLS, owns nothing), an owner role, a BYPASSRLS role.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import psycopg

APP_ROLE = "tw_audit_app"
OWNER_ROLE = "tw_audit_owner"
BYPASS_ROLE = "tw_audit_bypass"

SETTING = "NULLIF(current_setting('app.tenant_id', true), '')::integer"
GOOD_POLICY = f"organization_id = {SETTING}"


def table(
    name: str,
    *,
    rls: bool = True,
    force: bool = True,
    policy: str | None = f"USING ({GOOD_POLICY})",
    nullable: bool = False,
    primary_key: str = "organization_id, id",
    index: bool = True,
    extra: str = "",
) -> str:
    """DDL of a tenant table, correct unless told otherwise."""
    null = "" if nullable else " NOT NULL"
    out = [
        f"CREATE TABLE {name} (id integer NOT NULL, organization_id integer{null}, body text{extra}, "
        f"PRIMARY KEY ({primary_key}));"
    ]
    if index and not primary_key.startswith("organization_id"):
        out.append(f"CREATE INDEX ON {name} (organization_id);")
    if rls:
        out.append(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;")
    if force:
        out.append(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY;")
    if policy is not None:
        out.append(f"CREATE POLICY {name}_tenant ON {name} {policy};")
    out.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {APP_ROLE};")
    return "\n".join(out)


COMMON = """
CREATE TABLE countries (code text PRIMARY KEY, name text);   -- not a tenant table: never linted
"""

GOOD = "\n".join(
    [
        COMMON,
        table("projects"),
        # a composite foreign key that carries the tenant column
        table("tasks", extra=", project_id integer NOT NULL")
        + "\nALTER TABLE tasks ADD FOREIGN KEY (organization_id, project_id) "
        "REFERENCES projects (organization_id, id);",
        # a text tenant column compared without a cast, and separate policies per command
        "CREATE TABLE labels (id integer PRIMARY KEY, organization_id text NOT NULL);\n"
        "CREATE INDEX ON labels (organization_id, id);\n"
        "ALTER TABLE labels ENABLE ROW LEVEL SECURITY; ALTER TABLE labels FORCE ROW LEVEL SECURITY;\n"
        "CREATE POLICY labels_read ON labels FOR SELECT USING (organization_id = current_setting('app.tenant_id'));\n"
        "CREATE POLICY labels_write ON labels FOR INSERT "
        "WITH CHECK (current_setting('app.tenant_id', true) = organization_id);\n"
        f"GRANT SELECT, INSERT ON labels TO {APP_ROLE};",
        # a permissive always-true policy made safe by a restrictive tenant policy for every command
        table("archive", policy="USING (true)")
        + f"\nCREATE POLICY archive_tenant_only ON archive AS RESTRICTIVE USING ({GOOD_POLICY});",
    ]
)

BROKEN_TABLES = {
    "b_disabled": ("rls_disabled", table("b_disabled", rls=False, force=False)),
    "b_unforced": ("rls_not_forced", table("b_unforced", force=False)),
    "b_no_policy": ("rls_no_policy", table("b_no_policy", policy=None)),
    "b_true": ("policy_always_true", table("b_true", policy="USING (true)")),
    "b_or_true": ("policy_always_true", table("b_or_true", policy=f"USING ({GOOD_POLICY} OR true)")),
    "b_open_insert": (
        "policy_always_true",
        table("b_open_insert", policy=f"FOR SELECT USING ({GOOD_POLICY})")
        + "\nCREATE POLICY b_open_insert_ins ON b_open_insert FOR INSERT WITH CHECK (true);",
    ),
    "b_other_setting": (
        "policy_ignores_tenant",
        table("b_other_setting", policy="USING (organization_id = current_setting('app.other')::integer)"),
    ),
    "b_no_column": (
        "policy_ignores_tenant",
        table("b_no_column", policy="USING (body = current_user)"),
    ),
    "b_nullable": ("tenant_column_nullable", table("b_nullable", nullable=True, primary_key="id")),
    "b_unindexed": (
        "tenant_column_unindexed",
        table("b_unindexed", primary_key="id", index=False),
    ),
    "b_fk_child": (
        "foreign_key_without_tenant",
        table("b_fk_parent", primary_key="organization_id, id")
        + "\nALTER TABLE b_fk_parent ADD UNIQUE (id);\n"
        + table("b_fk_child", extra=", parent_id integer REFERENCES b_fk_parent (id)"),
    ),
}
"""Table -> (the one lint it must trip, its DDL)."""

OWNED = f"""
{table("b_owned", force=False)}
ALTER TABLE b_owned OWNER TO {OWNER_ROLE};
"""
"""Owned by the owner role, RLS not forced: ``rls_not_forced`` always, ``role_owns_tenant_table`` for that role."""


def roles_sql() -> str:
    return "\n".join(
        f"DO $$ BEGIN CREATE ROLE {name} LOGIN {attrs}; EXCEPTION WHEN duplicate_object THEN NULL; END $$;"
        for name, attrs in (
            (APP_ROLE, "NOSUPERUSER NOBYPASSRLS"),
            (OWNER_ROLE, "NOSUPERUSER NOBYPASSRLS"),
            (BYPASS_ROLE, "NOSUPERUSER BYPASSRLS"),
        )
    )


def create_database(postgres_url: str, name: str, ddl: str) -> str:
    """A fresh database ``name`` on the session's server with ``ddl`` run in it; returns its SQLAlchemy URL."""
    parts = urlsplit(postgres_url)
    dsn = {"host": parts.hostname, "port": parts.port, "user": parts.username or "postgres"}
    with psycopg.connect(**dsn, dbname=parts.path.lstrip("/"), autocommit=True) as conn:
        conn.execute(roles_sql())
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(**dsn, dbname=name, autocommit=True) as conn:
        if ddl.strip():
            conn.execute(ddl)
    return urlunsplit(parts._replace(path=f"/{name}"))


def as_user(url: str, user: str, password: str | None = None) -> str:
    """``url`` connecting as ``user`` (with ``password`` in the URL when given)."""
    parts = urlsplit(url)
    login = user if password is None else f"{user}:{password}"
    return urlunsplit(parts._replace(netloc=f"{login}@{parts.hostname}:{parts.port}"))
