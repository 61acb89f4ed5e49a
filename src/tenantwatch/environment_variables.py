"""Environment variables tenantwatch reads. Precedence: explicit argument > environment > rules file > default.

A bad value in the environment logs a warning and falls back to the next source; it never stops the application.
"""

from __future__ import annotations

from typing import Final

TENANTWATCH_RULES_FILE: Final = "TENANTWATCH_RULES_FILE"
"""Path of the YAML rules file (tenant tables, thresholds, severities, suppressions)."""

TENANTWATCH_MODE: Final = "TENANTWATCH_MODE"
"""``monitor`` (default), ``enforce`` (block critical statements before they run) or ``off``."""

TENANTWATCH_TENANT_COLUMNS: Final = "TENANTWATCH_TENANT_COLUMNS"
"""Comma-separated tenant column names (default ``organization_id,tenant_id``)."""

TENANTWATCH_SUPERUSER_ROLES: Final = "TENANTWATCH_SUPERUSER_ROLES"
"""Comma-separated roles that must not write (default ``superuser,admin``)."""

TENANTWATCH_LARGE_RESULT_ROWS: Final = "TENANTWATCH_LARGE_RESULT_ROWS"
"""Row count above which ``large_result`` fires (default 1000)."""

TENANTWATCH_SLOW_QUERY_MS: Final = "TENANTWATCH_SLOW_QUERY_MS"
"""Duration in milliseconds above which ``slow_query`` fires (default 500)."""

TENANTWATCH_TENANT_LABEL_CAP: Final = "TENANTWATCH_TENANT_LABEL_CAP"
"""How many distinct tenants get their own metric label before the rest share ``__other__`` (default 100)."""

TENANTWATCH_DISCOVER: Final = "TENANTWATCH_DISCOVER"
"""``true``/``false``: learn tenant tables from the database catalog on first connect (default true)."""

TENANTWATCH_TENANT_HEADER: Final = "TENANTWATCH_TENANT_HEADER"
"""Request header that names the tenant (default ``x-tenant-id``); honored only from trusted proxies."""

TENANTWATCH_TRUSTED_PROXIES: Final = "TENANTWATCH_TRUSTED_PROXIES"
"""Comma-separated CIDRs allowed to set the tenant by header, e.g. ``10.0.0.0/8,127.0.0.1/32``."""

TENANTWATCH_TRUST_HEADERS: Final = "TENANTWATCH_TRUST_HEADERS"
"""``true``: honor tenant headers from every peer (only behind a proxy that strips them). Default false."""

TENANTWATCH_JWT_KEY_FILE: Final = "TENANTWATCH_JWT_KEY_FILE"
"""PEM public key or shared secret file that verifies bearer tokens."""

TENANTWATCH_JWKS_FILE: Final = "TENANTWATCH_JWKS_FILE"
"""JWKS document (JSON file) with the keys that verify bearer tokens."""

TENANTWATCH_JWT_TENANT_CLAIM: Final = "TENANTWATCH_JWT_TENANT_CLAIM"
"""JWT claim holding the tenant (default ``tenant_id``)."""

TENANTWATCH_SUBDOMAIN_BASE: Final = "TENANTWATCH_SUBDOMAIN_BASE"
"""Base domain for the subdomain resolver: ``acme.example.com`` acts for ``acme`` when this is ``example.com``."""

TENANTWATCH_BLOCKING: Final = "TENANTWATCH_BLOCKING"
"""``true``: turn on response actions (429/403 after repeated critical findings). Default false."""

TENANTWATCH_RLS: Final = "TENANTWATCH_RLS"
"""``true``: RLS assist, ``SET LOCAL`` the tenant setting in every PostgreSQL transaction. Default false."""

TENANTWATCH_RLS_SETTING: Final = "TENANTWATCH_RLS_SETTING"
"""Name of the PostgreSQL setting RLS policies read (default ``app.tenant_id``)."""

TENANTWATCH_DEDUPE_SECONDS: Final = "TENANTWATCH_DEDUPE_SECONDS"
"""Cooldown window for repeated findings of one fingerprint, in seconds (default 60)."""

TENANTWATCH_CONSOLE: Final = "TENANTWATCH_CONSOLE"
"""``true``/``1``: ``configure()`` prints one line per finding on standard error (rule, severity, table, tenant,
code location, normalized statement), for local runs. Default false."""

TENANTWATCH_TABLE_LABEL_CAP: Final = "TENANTWATCH_TABLE_LABEL_CAP"
"""How many distinct table names get their own ``db.collection.name`` metric label before the rest share
``__other__`` (default 200)."""

TENANTWATCH_MAX_STRING_LENGTH: Final = "TENANTWATCH_MAX_STRING_LENGTH"
"""Longest exported string in characters (attributes, finding messages, log bodies); longer ones are cut with a
``…[cut N chars]`` marker (default 4096, at least 64)."""

TENANTWATCH_REDACT_QUERY_KEYS: Final = "TENANTWATCH_REDACT_QUERY_KEYS"
"""Comma-separated words: query-string fields whose name contains one get their value redacted on server spans
(default ``token,key,password,passwd,pwd,secret,code,auth,session,signature,sig,credential,jwt,otp``)."""

TENANTWATCH_TRUST_BAGGAGE: Final = "TENANTWATCH_TRUST_BAGGAGE"
"""``true``: every peer of this process is trusted, so incoming W3C baggage (``tenant.id``, ``enduser.id``,
``enduser.role``) is the tenant context wherever no context was set. Default false: baggage alone is never trusted."""

TENANTWATCH_MASK_STATEMENTS: Final = "TENANTWATCH_MASK_STATEMENTS"
"""``false``: export db statements as their instrumentation recorded them, literals included. Default true: every
literal of an exported statement is ``?`` (the span itself is never rewritten)."""

TENANTWATCH_PROFILE: Final = "TENANTWATCH_PROFILE"
"""``strict`` or ``default``: whether tables that only inherit their tenant (foreign-key joins, correlated or
narrowing subqueries) are ``missing_tenant_filter`` findings (``strict``) or facts on the span only."""

TENANTWATCH_ENFORCE_RULES: Final = "TENANTWATCH_ENFORCE_RULES"
"""Comma-separated rule ids whose findings enforce mode blocks. Default ``missing_tenant_filter, cross_tenant,
unscoped_write``."""

TENANTWATCH_CODE_LOCATION_SKIP: Final = "TENANTWATCH_CODE_LOCATION_SKIP"
"""Comma-separated path prefixes skipped when finding the application frame that issued a statement (besides the
standard library and site-packages)."""
