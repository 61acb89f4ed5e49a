"""Settings and the rules file.

Precedence, highest first: explicit argument > ``TENANTWATCH_*`` environment variable > rules file > default.

The rules file is YAML, validated by pydantic; a bad file raises :class:`ConfigError` at start-up naming every bad
field by its path (``rules.large_result.threshold: Input should be greater than 0``). Example::

    mode: monitor                      # monitor | enforce | off
    tenant_columns: [organization_id]  # a table with one of these columns is tenant-scoped
    tenant_tables: {legacy_orders: org} # explicit table -> tenant column (wins over discovery)
    exclude_tables: [countries]        # never tenant-scoped
    superuser_roles: [superuser, admin]
    rules:
      large_result: {threshold: 1000, per_table: {audit_log: 50000}}
      slow_query: {threshold_ms: 500, severity: warning}
      superuser_write: {enabled: false}
    suppressions:
      - {rule: missing_tenant_filter, table: plans, reason: "plans are global"}
      - {fingerprint: 3f2a9c0d1e2b4a5c, reason: "known, ticket SEC-12"}
      - {route: "/admin/*", reason: "admin console is cross-tenant by design"}
"""

from __future__ import annotations

import fnmatch
import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tenantwatch import environment_variables as env
from tenantwatch.redaction import DEFAULT_REDACT_QUERY_KEYS

__all__ = [
    "DEFAULT_DISABLED",
    "DEFAULT_TEST_DATA_PATTERNS",
    "RULE_IDS",
    "BlockingSettings",
    "ConfigError",
    "DedupeSettings",
    "HttpSettings",
    "RlsSettings",
    "RuleSettings",
    "RulesSettings",
    "Settings",
    "StateSettings",
    "Suppression",
    "load_settings",
]

logger = logging.getLogger(__name__)

Severity = Literal["info", "warning", "high", "critical"]
Mode = Literal["monitor", "enforce", "off"]

RULE_IDS: tuple[str, ...] = (
    "missing_tenant_filter",
    "cross_tenant",
    "unscoped_write",
    "no_tenant_context",
    "superuser_write",
    "large_result",
    "slow_query",
    "injection_signal",
    "test_data",
    "stale_tenant_context",
    "brute_force",
    "bulk_write",
    "rapid_write",
    "off_hours_write",
    "query_rate_spike",
    "repeated_violations",
)
"""Every rule id, in evaluation order. The first ones are pure statement rules
(:data:`tenantwatch.processors.rules.RULES`); request rules and the windowed detectors follow."""

DEFAULT_SEVERITIES: dict[str, Severity] = {
    "missing_tenant_filter": "critical",
    "cross_tenant": "critical",
    "unscoped_write": "critical",
    "no_tenant_context": "high",
    "superuser_write": "high",
    "large_result": "warning",
    "slow_query": "warning",
    "injection_signal": "high",
    "test_data": "critical",
    "stale_tenant_context": "critical",
    "brute_force": "high",
    "bulk_write": "high",
    "rapid_write": "high",
    "off_hours_write": "warning",
    "query_rate_spike": "warning",
    "repeated_violations": "high",
}

DEFAULT_DISABLED: frozenset[str] = frozenset({"off_hours_write"})
"""Rules that are off unless the rules file switches them on (they need a site-specific setting to be useful)."""

DEFAULT_TEST_DATA_PATTERNS: tuple[str, ...] = (
    r"(?i)\b[\w.-]+\.test\b",
    r"(?i)@example\.",
    r"(?i)\btenant-a\b",
    r"(?i)\b550e8400-e29b-41d4-a716-",
)
"""``test_data`` defaults: ``*.test`` names, ``@example.`` addresses, ``tenant-a``, the RFC 4122 example UUID."""


class ConfigError(ValueError):
    """A rules file, environment value or argument that cannot be used. The message names the field path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSettings(_Model):
    """Switch and severity of one rule, plus the thresholds of the rules that have one.

    One model for every rule keeps rules files uniform; each field says which rules read it. Unset fields take the
    rule's own default (documented in docs/processor.md and docs/detectors.md).
    """

    enabled: bool | None = Field(default=None, description="default: on, except the rules in DEFAULT_DISABLED")
    severity: Severity | None = None
    threshold: int | None = Field(
        default=None,
        gt=0,
        description="large_result: rows; brute_force: failures per client; bulk_write/rapid_write: rows written; "
        "repeated_violations: findings; query_rate_spike: minimum queries per window",
    )
    threshold_ms: float | None = Field(default=None, gt=0, description="slow_query: milliseconds")
    per_table: dict[str, int] = Field(default_factory=dict, description="large_result: rows per table")
    window_seconds: float | None = Field(
        default=None, gt=0, description="brute_force, bulk_write, rapid_write, repeated_violations, query_rate_spike"
    )
    patterns: tuple[str, ...] | None = Field(default=None, description="test_data: regular expressions")
    deviations: float | None = Field(default=None, gt=0, description="query_rate_spike: deviations above baseline")
    warmup: int | None = Field(default=None, ge=0, description="query_rate_spike: windows before it can fire")
    min_length: int | None = Field(default=None, gt=0, description="injection_signal: shortest request value matched")
    start: str | None = Field(default=None, description="off_hours_write: HH:MM local time the off hours begin")
    end: str | None = Field(default=None, description="off_hours_write: HH:MM local time the off hours end")
    timezone: str | None = Field(default=None, description="off_hours_write: IANA time zone, e.g. Europe/Berlin")

    @field_validator("per_table")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for table, rows in value.items():
            if rows <= 0:
                raise ValueError(f"{table}: threshold must be greater than 0")
        return {table.lower(): rows for table, rows in value.items()}

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for pattern in value or ():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a HH:MM time")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class Suppression(_Model):
    """Silence findings that match every given field. At least one of fingerprint, table, route or rule."""

    rule: str | None = None
    fingerprint: str | None = None
    table: str | None = None
    route: str | None = Field(default=None, description="glob, e.g. /admin/*")
    reason: str = ""

    @model_validator(mode="after")
    def _has_matcher(self) -> Suppression:
        if not (self.rule or self.fingerprint or self.table or self.route):
            raise ValueError("a suppression needs at least one of rule, fingerprint, table or route")
        if self.rule is not None and self.rule not in RULE_IDS:
            raise ValueError(f"unknown rule {self.rule!r}; known: {', '.join(RULE_IDS)}")
        return self

    def matches(self, *, rule: str, fingerprint: str, table: str | None, route: str | None) -> bool:
        if self.rule is not None and self.rule != rule:
            return False
        if self.fingerprint is not None and self.fingerprint != fingerprint:
            return False
        if self.table is not None and (table is None or self.table.lower() != table.lower()):
            return False
        return self.route is None or (route is not None and fnmatch.fnmatchcase(route, self.route))


class RulesSettings(_Model):
    """One entry per rule id; unknown rule ids are rejected with their path."""

    missing_tenant_filter: RuleSettings = Field(default_factory=RuleSettings)
    cross_tenant: RuleSettings = Field(default_factory=RuleSettings)
    unscoped_write: RuleSettings = Field(default_factory=RuleSettings)
    no_tenant_context: RuleSettings = Field(default_factory=RuleSettings)
    superuser_write: RuleSettings = Field(default_factory=RuleSettings)
    large_result: RuleSettings = Field(default_factory=RuleSettings)
    slow_query: RuleSettings = Field(default_factory=RuleSettings)
    injection_signal: RuleSettings = Field(default_factory=RuleSettings)
    test_data: RuleSettings = Field(default_factory=RuleSettings)
    stale_tenant_context: RuleSettings = Field(default_factory=RuleSettings)
    brute_force: RuleSettings = Field(default_factory=RuleSettings)
    bulk_write: RuleSettings = Field(default_factory=RuleSettings)
    rapid_write: RuleSettings = Field(default_factory=RuleSettings)
    off_hours_write: RuleSettings = Field(default_factory=RuleSettings)
    query_rate_spike: RuleSettings = Field(default_factory=RuleSettings)
    repeated_violations: RuleSettings = Field(default_factory=RuleSettings)


class HttpSettings(_Model):
    """How the ASGI middleware resolves the tenant and watches requests (see docs/asgi.md)."""

    resolvers: tuple[Literal["header", "jwt", "subdomain", "path"], ...] = ("jwt", "header", "subdomain", "path")
    """Resolvers tried in order; the first that yields a tenant wins (a custom callable, if given, runs first)."""
    tenant_header: str = "x-tenant-id"
    user_header: str = "x-user-id"
    role_header: str = "x-user-role"
    trusted_proxies: tuple[str, ...] = ()
    """CIDRs whose requests may set the tenant by header; headers from anyone else are ignored and counted."""
    trust_headers: bool = False
    """Honor tenant headers from every peer (only behind a proxy that strips them)."""
    jwt_key_file: str | None = None
    """PEM public key (RS*/ES*/EdDSA) or shared secret (HS*) that signs the bearer tokens."""
    jwks_file: str | None = None
    """A JWKS document (JSON) with the signing keys, chosen by the token's ``kid``."""
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256", "HS256")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_tenant_claim: str = "tenant_id"
    jwt_user_claim: str = "sub"
    jwt_role_claim: str = "role"
    subdomain_base: str | None = None
    """``example.com``: a request to ``acme.example.com`` acts for tenant ``acme``."""
    path_param: str | None = None
    """Path parameter (route template name, e.g. ``org_id``) or ``/orgs/{tenant}/`` segment name holding the tenant."""
    client_label_cap: int = Field(default=100, ge=0)
    """Distinct client addresses with a metric label of their own; the rest share ``__other__``."""
    max_request_values: int = Field(default=64, gt=0)
    """Request values (query, path, form and header values) kept per request for ``injection_signal``."""
    max_value_bytes: int = Field(default=512, gt=0)
    """Longer request values are not kept (nor scanned past this many bytes)."""
    redact_query_keys: tuple[str, ...] = DEFAULT_REDACT_QUERY_KEYS
    """Query-string fields whose name contains one of these words get their value redacted on server spans."""

    @field_validator("trusted_proxies", "resolvers", "jwt_algorithms", "redact_query_keys", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from exc
        return value

    @field_validator("tenant_header", "user_header", "role_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()


class BlockingSettings(_Model):
    """Response actions (opt-in): answer 429/403 to a client or tenant after repeated critical findings."""

    enabled: bool = False
    threshold: int = Field(default=5, gt=0)
    """Critical findings from one client address or tenant within ``window_seconds`` that start a block."""
    window_seconds: float = Field(default=60.0, gt=0)
    block_seconds: float = Field(default=300.0, gt=0)
    status: Literal[403, 429] = 429
    by: tuple[Literal["client", "tenant"], ...] = ("client", "tenant")
    max_entries: int = Field(default=10_000, gt=0)

    @field_validator("by", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class RlsSettings(_Model):
    """RLS assist (opt-in, PostgreSQL): ``SET LOCAL <setting>`` from the tenant context in every transaction."""

    enabled: bool = False
    setting: str = Field(default="app.tenant_id", pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")


class DedupeSettings(_Model):
    """Cooldown: a storm of one finding fingerprint (per tenant) logs one record per window, with a repeat count."""

    enabled: bool = True
    window_seconds: float = Field(default=60.0, gt=0)


class StateSettings(_Model):
    """Bounds on the processor's windowed state (per tenant, user, table and client keys)."""

    max_keys: int = Field(default=10_000, gt=0)
    ttl_seconds: float = Field(default=3600.0, gt=0)


class AnalysisSettings(_Model):
    """Bounds on statement analysis: hostile SQL is input like any other."""

    cache_size: int = Field(default=4096, gt=0)
    max_statement_bytes: int = Field(default=100_000, gt=0)
    max_depth: int = Field(default=100, gt=0)


class Settings(_Model):
    """Everything tenantwatch can be told. Build with :func:`load_settings` to get the precedence right."""

    mode: Mode = "monitor"
    tenant_columns: tuple[str, ...] = ("organization_id", "tenant_id")
    tenant_tables: dict[str, str] = Field(default_factory=dict)
    include_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()
    discover: bool = True
    superuser_roles: tuple[str, ...] = ("superuser", "admin")
    tenant_label_cap: int = Field(default=100, ge=0)
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    blocking: BlockingSettings = Field(default_factory=BlockingSettings)
    rls: RlsSettings = Field(default_factory=RlsSettings)
    dedupe: DedupeSettings = Field(default_factory=DedupeSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    suppressions: tuple[Suppression, ...] = ()
    table_label_cap: int = Field(default=200, ge=0)
    """Distinct table names with a ``db.collection.name`` metric label of their own; the rest share ``__other__``."""
    max_string_length: int = Field(default=4096, ge=64)
    """Longest exported string (span attribute, event attribute, status, finding message, log body and attribute),
    in characters; longer ones are cut and end with ``…[cut N chars]``."""

    @field_validator("tenant_columns", "include_tables", "exclude_tables", "superuser_roles", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if isinstance(value, list | tuple):
            return tuple(str(v).lower() for v in value)
        return value

    @field_validator("tenant_tables")
    @classmethod
    def _lower_tables(cls, value: dict[str, str]) -> dict[str, str]:
        return {table.lower(): column.lower() for table, column in value.items()}

    def rule(self, rule_id: str) -> RuleSettings:
        found = getattr(self.rules, rule_id, None)
        return found if isinstance(found, RuleSettings) else _DEFAULT_RULE

    def severity(self, rule_id: str) -> Severity:
        return self.rule(rule_id).severity or DEFAULT_SEVERITIES.get(rule_id, "warning")

    def enabled(self, rule_id: str) -> bool:
        switch = self.rule(rule_id).enabled
        return rule_id not in DEFAULT_DISABLED if switch is None else switch

    @property
    def large_result_threshold(self) -> int:
        return self.rule("large_result").threshold or 1000

    def large_result_threshold_for(self, table: str | None) -> int:
        if table is not None:
            override = self.rule("large_result").per_table.get(table.lower())
            if override is not None:
                return override
        return self.large_result_threshold

    @property
    def slow_query_ms(self) -> float:
        return self.rule("slow_query").threshold_ms or 500.0


_DEFAULT_RULE = RuleSettings()


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  {path}: {item['msg']}")
    return "\n".join(lines)


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read rules file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: the rules file must be a mapping at the top level, got {type(data).__name__}")
    return data


_ENV_FIELDS: tuple[tuple[str, str], ...] = (
    (env.TENANTWATCH_MODE, "mode"),
    (env.TENANTWATCH_TENANT_COLUMNS, "tenant_columns"),
    (env.TENANTWATCH_SUPERUSER_ROLES, "superuser_roles"),
    (env.TENANTWATCH_TENANT_LABEL_CAP, "tenant_label_cap"),
    (env.TENANTWATCH_DISCOVER, "discover"),
    (env.TENANTWATCH_LARGE_RESULT_ROWS, "rules.large_result.threshold"),
    (env.TENANTWATCH_SLOW_QUERY_MS, "rules.slow_query.threshold_ms"),
    (env.TENANTWATCH_TENANT_HEADER, "http.tenant_header"),
    (env.TENANTWATCH_TRUSTED_PROXIES, "http.trusted_proxies"),
    (env.TENANTWATCH_TRUST_HEADERS, "http.trust_headers"),
    (env.TENANTWATCH_JWT_KEY_FILE, "http.jwt_key_file"),
    (env.TENANTWATCH_JWKS_FILE, "http.jwks_file"),
    (env.TENANTWATCH_JWT_TENANT_CLAIM, "http.jwt_tenant_claim"),
    (env.TENANTWATCH_SUBDOMAIN_BASE, "http.subdomain_base"),
    (env.TENANTWATCH_BLOCKING, "blocking.enabled"),
    (env.TENANTWATCH_RLS, "rls.enabled"),
    (env.TENANTWATCH_RLS_SETTING, "rls.setting"),
    (env.TENANTWATCH_DEDUPE_SECONDS, "dedupe.window_seconds"),
    (env.TENANTWATCH_TABLE_LABEL_CAP, "table_label_cap"),
    (env.TENANTWATCH_MAX_STRING_LENGTH, "max_string_length"),
    (env.TENANTWATCH_REDACT_QUERY_KEYS, "http.redact_query_keys"),
)
"""Environment variable -> dotted settings path."""


def _nested(path: str, value: Any) -> dict[str, Any]:
    out: Any = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return dict(out)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Environment values, each validated on its own: a bad one is logged and skipped."""
    overrides: dict[str, Any] = {}
    for var, path in _ENV_FIELDS:
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        value = raw.strip().lower() if path == "mode" else raw.strip()
        candidate = _nested(path, value)
        try:
            Settings.model_validate(candidate)
        except ValidationError as exc:
            logger.warning("ignoring %s=%r: %s", var, value, exc.errors()[0]["msg"])
            continue
        overrides = _merge(overrides, candidate)
    return overrides


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_settings(
    rules_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build :class:`Settings`: explicit ``overrides`` > environment > rules file > defaults.

    ``rules_file`` defaults to ``$TENANTWATCH_RULES_FILE``. Raises :class:`ConfigError` naming the field path for a
    bad file or a bad explicit override; a bad environment value is logged and ignored.
    """
    environ = os.environ if environ is None else environ
    path = rules_file if rules_file is not None else environ.get(env.TENANTWATCH_RULES_FILE) or None
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        data = _read_file(path)
        source = str(path)
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_format_errors(exc, source)) from exc
    data = _merge(data, _env_overrides(environ))
    explicit = {key: value for key, value in overrides.items() if value is not None}
    unknown = sorted(set(explicit) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    data = _merge(data, explicit)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, "arguments" if explicit else source)) from exc
