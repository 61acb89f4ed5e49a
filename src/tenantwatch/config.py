"""Settings and the rules file.

Precedence, highest first: explicit argument > ``TENANTWATCH_*`` environment variable > rules file > default.

The rules file is YAML, validated by pydantic; a bad file raises :class:`ConfigError` at start-up naming every bad
field by its path (``rules.large_result.threshold: Input should be greater than 0``). Every key, its default and the
limits on the file: docs/rules-file.md. Example::

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

import difflib
import fnmatch
import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from tenantwatch import environment_variables as env
from tenantwatch.context import DEFAULT_KEY
from tenantwatch.core.findings import Severity
from tenantwatch.core.rule import RuleSettings
from tenantwatch.redaction import DEFAULT_REDACT_QUERY_KEYS
from tenantwatch.rules import CATALOGUE
from tenantwatch.rules import RULE_IDS as _RULE_IDS
from tenantwatch.rules.brute_force import BruteForceSettings
from tenantwatch.rules.bulk_write import BulkWriteSettings
from tenantwatch.rules.cross_tenant import CrossTenantSettings
from tenantwatch.rules.cross_tenant_read import CrossTenantReadSettings
from tenantwatch.rules.injection_signal import InjectionSignalSettings
from tenantwatch.rules.large_result import LargeResultSettings
from tenantwatch.rules.missing_tenant_filter import MissingTenantFilterSettings
from tenantwatch.rules.no_tenant_context import NoTenantContextSettings
from tenantwatch.rules.off_hours_write import OffHoursWriteSettings
from tenantwatch.rules.query_rate_spike import QueryRateSpikeSettings
from tenantwatch.rules.rapid_write import RapidWriteSettings
from tenantwatch.rules.repeated_violations import RepeatedViolationsSettings
from tenantwatch.rules.slow_query import SlowQuerySettings
from tenantwatch.rules.stale_tenant_context import StaleTenantContextSettings
from tenantwatch.rules.superuser_write import SuperuserWriteSettings
from tenantwatch.rules.test_data import DEFAULT_TEST_DATA_PATTERNS, TestDataSettings
from tenantwatch.rules.unscoped_write import UnscopedWriteSettings

__all__ = [
    "DEFAULT_DISABLED",
    "DEFAULT_TEST_DATA_PATTERNS",
    "MAX_RULES_FILE_BYTES",
    "MAX_YAML_ALIASES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "RULE_IDS",
    "RULE_OPTIONS",
    "BlockingSettings",
    "CodeLocationSettings",
    "ConfigError",
    "ConfigIssue",
    "DedupeSettings",
    "EnforceSettings",
    "HttpSettings",
    "RlsSettings",
    "RuleSettings",
    "RulesSettings",
    "Settings",
    "StateSettings",
    "Suppression",
    "TenantKey",
    "load_settings",
]

logger = logging.getLogger(__name__)

Mode = Literal["monitor", "enforce", "off"]
Profile = Literal["default", "strict"]

RULE_IDS: tuple[str, ...] = _RULE_IDS
"""Every rule id, in evaluation order (:data:`tenantwatch.rules.CATALOGUE`): the pure statement rules first, then
the request rules and the windowed detectors."""

DEFAULT_SEVERITIES: dict[str, Severity] = {rule.id: rule.meta.severity for rule in CATALOGUE}
"""Per rule id, its default severity (``RuleMeta.severity`` in ``tenantwatch/rules/<id>.py``)."""

RULE_OPTIONS: dict[str, tuple[str, ...]] = {rule.id: rule.meta.options() for rule in CATALOGUE}
"""Per rule id, the settings that rule takes besides ``enabled`` and ``severity`` (the fields of its own settings
model). A key another rule owns is rejected, naming the rule and the key."""

_COMMON_RULE_KEYS: Final = tuple(RuleSettings.model_fields)

DEFAULT_DISABLED: frozenset[str] = frozenset(rule.id for rule in CATALOGUE if not rule.meta.enabled)
"""Rules that are off unless the rules file switches them on (they need a site-specific setting to be useful)."""


def _lower_names(value: Any) -> Any:
    """``"a, B"`` or ``["a", "B"]`` -> ``("a", "b")`` (names in the rules file and environment); any other value as
    given, for the model to reject."""
    if isinstance(value, str):
        value = [part for part in (p.strip() for p in value.split(",")) if part]
    if isinstance(value, list | tuple):
        return tuple(str(v).lower() for v in value)
    return value


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem of a rules file or argument: the dotted field path (``""`` for the file as a whole), what is
    wrong, and where in the file when known (1-based line and column)."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "message": self.message, "line": self.line, "column": self.column}


class ConfigError(ValueError):
    """A rules file, environment value or argument that cannot be used. The message names the file and field path;
    :attr:`issues` holds the same problems one by one (for ``--json`` output), :attr:`source` the file or
    ``arguments``."""

    def __init__(self, message: str, *, source: str | None = None, issues: Sequence[ConfigIssue] = ()) -> None:
        super().__init__(message)
        self.source = source
        self.issues: tuple[ConfigIssue, ...] = tuple(issues) or (ConfigIssue("", message),)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'slow_query'?)`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
            raise ValueError(
                f"unknown rule {self.rule!r}{_did_you_mean(self.rule, RULE_IDS)}; valid rules: {', '.join(RULE_IDS)}"
            )
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
    """One entry per rule id, each validated with that rule's own settings model (``tenantwatch/rules/<id>.py``):
    a key of another rule, or of none, is rejected with its path; so is an unknown rule id."""

    missing_tenant_filter: MissingTenantFilterSettings = Field(default_factory=MissingTenantFilterSettings)
    cross_tenant: CrossTenantSettings = Field(default_factory=CrossTenantSettings)
    unscoped_write: UnscopedWriteSettings = Field(default_factory=UnscopedWriteSettings)
    no_tenant_context: NoTenantContextSettings = Field(default_factory=NoTenantContextSettings)
    superuser_write: SuperuserWriteSettings = Field(default_factory=SuperuserWriteSettings)
    large_result: LargeResultSettings = Field(default_factory=LargeResultSettings)
    slow_query: SlowQuerySettings = Field(default_factory=SlowQuerySettings)
    injection_signal: InjectionSignalSettings = Field(default_factory=InjectionSignalSettings)
    test_data: TestDataSettings = Field(default_factory=TestDataSettings)
    stale_tenant_context: StaleTenantContextSettings = Field(default_factory=StaleTenantContextSettings)
    brute_force: BruteForceSettings = Field(default_factory=BruteForceSettings)
    bulk_write: BulkWriteSettings = Field(default_factory=BulkWriteSettings)
    rapid_write: RapidWriteSettings = Field(default_factory=RapidWriteSettings)
    off_hours_write: OffHoursWriteSettings = Field(default_factory=OffHoursWriteSettings)
    query_rate_spike: QueryRateSpikeSettings = Field(default_factory=QueryRateSpikeSettings)
    repeated_violations: RepeatedViolationsSettings = Field(default_factory=RepeatedViolationsSettings)
    cross_tenant_read: CrossTenantReadSettings = Field(default_factory=CrossTenantReadSettings)

    @model_validator(mode="before")
    @classmethod
    def _empty_entries(cls, data: Any) -> Any:
        return _without_empty(data)


_SETTING_NAME: Final = r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$"
"""A custom PostgreSQL setting: ``prefix.name``."""


def _tenant_key_map(value: dict[str, str], *, lower_values: bool) -> dict[str, str]:
    """``{tenant key: header / claim / setting}``: key names are identifiers, values non-empty."""
    out: dict[str, str] = {}
    for key, target in value.items():
        if not (key.isascii() and key.isidentifier()):
            raise ValueError(f"{key!r} is not a tenant key name (letters, digits, underscores)")
        text = target.strip().lower() if lower_values else target.strip()
        if not text:
            raise ValueError(f"{key}: empty name")
        out[key] = text
    return out


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
    key_headers: dict[str, str] = Field(default_factory=dict)
    """A tenant hierarchy's finer keys by header, ``{team: x-team-id}``: read with the tenant header, only from
    trusted peers, and only when that header names the root tenant too (see docs/asgi.md)."""
    key_claims: dict[str, str] = Field(default_factory=dict)
    """A tenant hierarchy's finer keys by JWT claim, ``{team: team_id}``: read from a verified token that also
    carries ``jwt_tenant_claim``."""

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
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from exc
            if network.prefixlen == 0:
                raise PydanticCustomError(
                    "trusts_everyone",
                    "'{cidr}' trusts every peer to name the tenant in a header; list your proxies' addresses, or "
                    "set trust_headers: true if every request really comes through a proxy that strips the header",
                    {"cidr": cidr},
                )
        return value

    @field_validator("tenant_header", "user_header", "role_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("key_headers")
    @classmethod
    def _key_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return _tenant_key_map(value, lower_values=True)

    @field_validator("key_claims")
    @classmethod
    def _key_claims(cls, value: dict[str, str]) -> dict[str, str]:
        return _tenant_key_map(value, lower_values=False)


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
    setting: str = Field(default="app.tenant_id", pattern=_SETTING_NAME)
    key_settings: dict[str, str] = Field(default_factory=dict)
    """A tenant hierarchy's finer keys by setting, ``{team: app.team_id}``: ``SET LOCAL`` to the context's trusted
    value of that key in every transaction that sets the tenant, and to ``''`` in every other one."""

    @field_validator("key_settings")
    @classmethod
    def _key_settings(cls, value: dict[str, str]) -> dict[str, str]:
        value = _tenant_key_map(value, lower_values=False)
        for key, setting in value.items():
            parts = setting.split(".")
            if len(parts) != 2 or not all(part.isascii() and part.isidentifier() for part in parts):
                raise ValueError(f"{key}: {setting!r} is not a setting name like app.team_id")
        return value


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
    cache_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Bytes both analysis caches may hold together (keys and results, estimated); statements over
    ``max_statement_bytes`` are never cached."""


DEFAULT_ENFORCED_RULES: Final = ("missing_tenant_filter", "cross_tenant", "unscoped_write")
"""The isolation rules enforce mode blocks by default."""

OBSERVED_ONLY_RULES: Final = ("cross_tenant_read",)
"""Rules that judge rows already read: enforce mode cannot block them, so ``enforce.rules`` may not list them."""


class EnforceSettings(_Model):
    """Enforce mode: which findings stop a statement before it reaches the database."""

    rules: tuple[str, ...] = DEFAULT_ENFORCED_RULES
    """Rule ids whose findings block (at any severity), on verdicts that are certain: a statement tenantwatch could
    not analyze (verdict ``unknown``) is never blocked. Every other rule only reports, ``test_data`` included."""

    @field_validator("rules", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("rules")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for rule_id in value:
            if rule_id not in _RULE_IDS:
                raise ValueError(f"unknown rule id {rule_id!r}; valid ids: {', '.join(_RULE_IDS)}")
            if rule_id in OBSERVED_ONLY_RULES:
                raise ValueError(
                    f"{rule_id} judges rows already read, so it cannot block a statement; it reports in every mode "
                    "(enforce mode stops another tenant's row of a lookup by key at the fetch through "
                    "missing_tenant_filter)"
                )
        return value


class CodeLocationSettings(_Model):
    """Where a statement was issued (``code.*`` on the db span, part of the finding fingerprint)."""

    skip_prefixes: tuple[str, ...] = ()
    """Path prefixes of code that is not the application's, skipped besides the standard library, site-packages,
    dist-packages, SQLAlchemy, OpenTelemetry and tenantwatch (a vendored library, a company-wide framework)."""

    @field_validator("skip_prefixes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value


_KEY_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class TenantKey(_Model):
    """One key of a tenant hierarchy (``tenant_keys.<name>``): the columns that hold it, its parent key (none for
    the root, whose context value is ``tenant.id``) and its root table."""

    columns: tuple[str, ...] = Field(min_length=1)
    """Column names that hold this key; a table with one of them is tenant-scoped, a filter on it protects it."""
    parent: str | None = None
    """The key this one is nested in (``team`` in ``organization``); exactly one key has none: the root."""
    root: str | None = None
    """The root table of this key, ``table`` (key column ``id``) or ``table.column``, as in ``tenant_roots``."""

    @field_validator("columns", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _lower_names(value)

    @field_validator("columns")
    @classmethod
    def _identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for column in value:
            if not re.match(_KEY_NAME, column):
                raise ValueError(f"{column!r} is not a column name (letters, digits and _)")
        return value

    @field_validator("parent", "root", mode="after")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None


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
    mask_statements: bool = True
    """Mask the literals of every exported db statement (``db.statement`` / ``db.query.text``, as ``?``): the span
    keeps the text its instrumentation set, what leaves the process through tenantwatch's processor is masked."""
    trust_baggage: bool = False
    """Every peer of this process is trusted: incoming W3C baggage is the tenant context wherever no context was set
    (zero-code services behind their own gateway). Off by default: baggage is a claim anyone can send."""
    tenant_roots: dict[str, str] = Field(default_factory=dict)
    """Tenant column -> the root table of that key, ``table`` (key column ``id``) or ``table.column``, e.g.
    ``{organization_id: organizations}``: ``organizations.id = :p`` is then a tenant filter (the root is judged like
    a tenant table by its key column), and joins through ``x.organization_id = organizations.id`` carry it."""
    profile: Profile = "default"
    """``strict``: a table that only inherits its tenant (``inherited`` verdict: foreign-key join, correlation,
    narrowing subquery) is a ``missing_tenant_filter`` finding too; ``default``: it is a fact on the span only."""
    enforce: EnforceSettings = Field(default_factory=EnforceSettings)
    code_location: CodeLocationSettings = Field(default_factory=CodeLocationSettings)
    tenant_keys: dict[str, TenantKey] = Field(default_factory=dict)
    """A tenant hierarchy (``organization`` ⊃ ``team``): per key name its columns, parent and root table. Empty: one
    key, ``tenant``, made of ``tenant_columns`` and ``tenant_roots``. Set: those two are derived from it (root key's
    columns first), and giving them too, with other values, is an error."""

    @field_validator("tenant_columns", "include_tables", "exclude_tables", "superuser_roles", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _lower_names(value)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        return _without_empty(data)

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare ``mode: off`` as ``false``: that is what the user wrote, so it means ``off``."""
        return "off" if value is False else value

    @field_validator("tenant_tables")
    @classmethod
    def _lower_tables(cls, value: dict[str, str]) -> dict[str, str]:
        return {table.lower(): column.lower() for table, column in value.items()}

    @field_validator("tenant_roots")
    @classmethod
    def _lower_roots(cls, value: dict[str, str]) -> dict[str, str]:
        return {column.lower(): table.lower() for column, table in value.items()}

    @model_validator(mode="after")
    def _watches_something(self) -> Settings:
        if self.tenant_keys:
            self._derive_from_keys()
        if self.mode != "off" and not self.tenant_columns and not self.tenant_tables:
            raise PydanticCustomError(
                "watches_nothing",
                "names no tenant column and no tenant_tables are set, so no table is tenant-scoped and tenant "
                "isolation goes unwatched; name a column, or set mode: off to switch tenantwatch off on purpose",
                {"field": "tenant_columns"},
            )
        return self

    def _derive_from_keys(self) -> None:
        """Validate ``tenant_keys`` (names, one root, parents, no cycle, a column in one key) and derive
        ``tenant_columns`` and ``tenant_roots`` from it."""
        keys = self.tenant_keys
        order = _key_order(keys)
        columns: list[str] = []
        owner: dict[str, str] = {}
        roots: dict[str, str] = {}
        for name in order:
            key = keys[name]
            for column in key.columns:
                if column in owner and owner[column] != name:
                    raise _key_error(
                        f"tenant_keys.{name}.columns",
                        f"column {column!r} belongs to key {owner[column]!r} already; a column holds one key",
                    )
                owner[column] = name
                columns.append(column)
            if key.root is not None:
                roots[key.columns[0]] = key.root
        derived_columns = tuple(dict.fromkeys(columns))
        if "tenant_columns" in self.model_fields_set and set(self.tenant_columns) != set(derived_columns):
            raise _key_error(
                "tenant_columns",
                "tenant_keys declares the tenant columns (here: "
                f"{', '.join(derived_columns)}); remove tenant_columns, or list its columns under a key",
            )
        if "tenant_roots" in self.model_fields_set and self.tenant_roots != roots:
            raise _key_error(
                "tenant_roots",
                "tenant_keys declares the root tables (tenant_keys.<key>.root); remove tenant_roots, or move each "
                "entry to the root of its key",
            )
        object.__setattr__(self, "tenant_columns", derived_columns)  # a frozen model: derived once, here
        object.__setattr__(self, "tenant_roots", roots)

    @property
    def root_key(self) -> str:
        """The name of the root tenant key (its context value is ``tenant.id``): ``tenant`` without ``tenant_keys``."""
        for name, key in self.tenant_keys.items():
            if key.parent is None:
                return name
        return DEFAULT_TENANT_KEY

    @property
    def finer_keys(self) -> tuple[str, ...]:
        """The keys below the root (``team`` in ``organization``), parents before children; empty with one key."""
        if not self.tenant_keys:
            return ()
        return _key_order(self.tenant_keys)[1:]

    def key_of_column(self, column: str) -> str:
        """The tenant key a tenant column holds (the root key for a column of ``tenant_columns`` or one no key
        names, e.g. an explicit ``tenant_tables`` column)."""
        column = column.lower()
        for name, key in self.tenant_keys.items():
            if column in key.columns:
                return name
        return self.root_key

    def rule(self, rule_id: str) -> RuleSettings:
        """The settings of ``rule_id`` (its own model; typed access: ``settings.rules.<id>``)."""
        found = getattr(self.rules, rule_id, None)
        return found if isinstance(found, RuleSettings) else _DEFAULT_RULE

    def severity(self, rule_id: str) -> Severity:
        return self.rule(rule_id).severity or DEFAULT_SEVERITIES.get(rule_id, "warning")

    def enabled(self, rule_id: str) -> bool:
        switch = self.rule(rule_id).enabled
        return rule_id not in DEFAULT_DISABLED if switch is None else switch

    @property
    def large_result_threshold(self) -> int:
        return self.rules.large_result.threshold

    def large_result_threshold_for(self, table: str | None) -> int:
        if table is not None:
            override = self.rules.large_result.per_table.get(table.lower())
            if override is not None:
                return override
        return self.large_result_threshold

    @property
    def slow_query_ms(self) -> float:
        return self.rules.slow_query.threshold_ms


_DEFAULT_RULE = RuleSettings()

DEFAULT_TENANT_KEY: Final = DEFAULT_KEY
"""The name of the one tenant key when the rules file declares no ``tenant_keys`` (``tenant``)."""


def _key_error(field: str, message: str) -> PydanticCustomError:
    return PydanticCustomError("tenant_keys", message, {"field": field})


def _key_order(keys: Mapping[str, TenantKey]) -> tuple[str, ...]:
    """The key names, root first, then each key after its parent (declaration order among siblings). Raises a
    ``PydanticCustomError`` naming the field for a bad name, no or several roots, a missing parent, a cycle."""
    for name in keys:
        if not re.match(_KEY_NAME, name):
            raise _key_error(f"tenant_keys.{name}", f"{name!r} is not a key name (letters, digits and _)")
    roots = [name for name, key in keys.items() if key.parent is None]
    if len(roots) != 1:
        found = f"{len(roots)} have none ({', '.join(roots)})" if roots else "every key has one (a cycle)"
        raise _key_error("tenant_keys", f"exactly one key must have no parent (the root, tenant.id); {found}")
    for name, key in keys.items():
        if key.parent is not None and key.parent not in keys:
            raise _key_error(
                f"tenant_keys.{name}.parent",
                f"unknown key {key.parent!r}{_did_you_mean(key.parent, keys)}; keys: {', '.join(keys)}",
            )
        if key.parent == name:
            raise _key_error(f"tenant_keys.{name}.parent", f"key {name!r} cannot be its own parent")
    order = [roots[0]]
    placed = {roots[0]}
    while len(order) < len(keys):
        added = [n for n, k in keys.items() if n not in placed and k.parent in placed]
        if not added:
            cycle = sorted(n for n in keys if n not in placed)
            raise _key_error(
                f"tenant_keys.{cycle[0]}.parent",
                f"keys {', '.join(cycle)} are parents of each other (a cycle); every key must lead up to the root",
            )
        order.extend(added)
        placed.update(added)
    return tuple(order)


def _without_empty(data: Any) -> Any:
    """An empty YAML entry (``rules:`` or ``slow_query:`` with everything under it commented out) reads as null;
    it means "the defaults", so it is dropped instead of failing as "not a mapping"."""
    if isinstance(data, dict) and any(value is None for value in data.values()):
        return {key: value for key, value in data.items() if value is not None}
    return data


MAX_RULES_FILE_BYTES: Final = 262_144
"""A rules file larger than this (256 KiB; a real one is a few KiB) is refused before it is parsed."""
MAX_YAML_DEPTH: Final = 32
"""Collections nested deeper than this are refused (a rules file needs about five levels)."""
MAX_YAML_ALIASES: Final = 64
"""At most this many aliases (``*name``) in a rules file."""
MAX_YAML_NODES: Final = 200_000
"""At most this many YAML nodes once aliases are expanded: an alias bomb is refused while it is being read, before
anything is built from it."""

Marks = dict[tuple[str | int, ...], tuple[int, int]]
"""Field path -> (line, column), 1-based, of each value in a rules file."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with bounds on nesting, aliases and the size of the document with aliases expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}

    def _refuse(self, problem: str, mark: yaml.Mark | None) -> None:
        raise yaml.composer.ComposerError(None, None, problem, mark)

    def _mark(self) -> yaml.Mark | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-pyyaml
        return getattr(event, "start_mark", None)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            mark = self._mark()
            if self._aliases > MAX_YAML_ALIASES:
                self._refuse(f"more than {MAX_YAML_ALIASES} aliases (*name)", mark)
            node = super().compose_node(parent, index)
            self._nodes += self._sizes.get(id(node), 1)
            if self._nodes > MAX_YAML_NODES:
                self._refuse(f"more than {MAX_YAML_NODES} values once aliases are expanded", mark)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            self._refuse(f"nested deeper than {MAX_YAML_DEPTH} levels", self._mark())
        before = self._nodes
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._nodes += 1
        if node is not None:
            self._sizes[id(node)] = self._nodes - before
        if self._nodes > MAX_YAML_NODES and node is not None:
            self._refuse(f"more than {MAX_YAML_NODES} values once aliases are expanded", node.start_mark)
        return node


def _marks(node: yaml.Node) -> Marks:
    """Where each value sits in the file, by field path (iterative: the depth is bounded, but stay flat anyway)."""
    found: Marks = {}
    stack: list[tuple[tuple[str | int, ...], yaml.Node]] = [((), node)]
    seen: set[int] = set()
    while stack:
        path, current = stack.pop()
        found.setdefault(path, (current.start_mark.line + 1, current.start_mark.column + 1))
        if id(current) in seen:  # an alias: its children are already mapped under the anchor's path
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    found.setdefault((*path, key.value), (key.start_mark.line + 1, key.start_mark.column + 1))
                    stack.append(((*path, key.value), value))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append(((*path, index), item))
    return found


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None, int | None]:
    """The message of a YAML error without PyYAML's ``in "<unicode string>"`` lines, and its 1-based position."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        parts = [part for part in (exc.context, exc.problem) if part]
        text = "; ".join(parts) or "invalid YAML"
        if mark is not None:
            return text, mark.line + 1, mark.column + 1
        return text, None, None
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.character!r} is not allowed in YAML ({exc.reason})", None, None
    return str(exc), None, None


def _position(offset: int, data: bytes) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return line, column


def _read_text(file: Path, what: str = "rules file", max_bytes: int = MAX_RULES_FILE_BYTES) -> str:
    try:
        with file.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read {what}: {exc.strerror or exc}", source=str(file)) from exc
    if len(raw) > max_bytes:
        message = f"larger than {max_bytes} bytes: not a {what}"
        raise ConfigError(f"{file}: {message}", source=str(file), issues=[ConfigIssue("", message)])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _position(exc.start, raw)
        hint = " (the file is UTF-16: save it as UTF-8)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        message = f"not UTF-8 text: byte 0x{raw[exc.start]:02x} cannot be decoded{hint}"
        raise ConfigError(
            f"{file}:{line}:{column}: {message}", source=str(file), issues=[ConfigIssue("", message, line, column)]
        ) from exc


def read_yaml_file(
    path: str | os.PathLike[str], *, what: str = "rules file", max_bytes: int = MAX_RULES_FILE_BYTES
) -> tuple[Any, Marks]:
    """A YAML file tenantwatch reads (the rules file, the CI gate's baseline) and where each value sits in it (None
    for an empty file). Every problem is a :class:`ConfigError` naming the file (and line and column when there is
    one): unreadable, larger than ``max_bytes``, not UTF-8, bad YAML, too deep, aliases beyond the bounds."""
    file = Path(path)
    text = _read_text(file, what, max_bytes)
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        problem, line, column = _yaml_problem(exc)
        where = f"{file}:{line}:{column}" if line is not None else str(file)
        raise ConfigError(
            f"{where}: not valid YAML: {problem}", source=str(file), issues=[ConfigIssue("", problem, line, column)]
        ) from exc
    except RecursionError as exc:  # bounded by MAX_YAML_DEPTH; kept so no input can end in a traceback
        message = f"nested deeper than {MAX_YAML_DEPTH} levels"
        raise ConfigError(f"{file}: not valid YAML: {message}", source=str(file)) from exc
    finally:
        loader.dispose()
    return data, _marks(node) if node is not None else {}


def _read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Marks]:
    """The rules file as a mapping, and where each value sits in it (see :func:`read_yaml_file`; also refused: a
    top level that is not a mapping)."""
    file = Path(path)
    data, marks = read_yaml_file(file)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        message = f"the rules file must be a mapping at the top level, got {type(data).__name__}"
        raise ConfigError(f"{file}: {message}", source=str(file), issues=[ConfigIssue("", message, 1, 1)])
    return data, marks


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The settings model a validation location points into (``("rules", "x")`` -> RulesSettings), if any."""
    model: type[BaseModel] | None = Settings
    by_name = False
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int) or by_name:  # a list index, or the key of a mapping of models (tenant_keys.<name>)
            by_name = False
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        candidates = (field.annotation, *get_args(field.annotation))
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        by_name = model is not None and get_origin(field.annotation) is dict
    return model


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    """The message for a key that is not a setting: which keys are, and the closest one."""
    key = str(loc[-1])
    parent = loc[:-1]
    if parent == ("rules",):
        return f"unknown rule {key!r}{_did_you_mean(key, RULE_IDS)}; valid rules: {', '.join(RULE_IDS)}"
    if len(parent) == 2 and parent[0] == "rules" and parent[1] in RULE_OPTIONS:
        rule = str(parent[1])
        allowed = (*_COMMON_RULE_KEYS, *RULE_OPTIONS[rule])
        owners = [other for other, options in RULE_OPTIONS.items() if key in options]
        if owners:  # a misplaced key: say whose it is
            return f"{key!r} is not a {rule} setting (it belongs to {', '.join(owners)}); {rule} takes: " + ", ".join(
                allowed
            )
        return f"unknown key {key!r}{_did_you_mean(key, allowed)}; {rule} takes: {', '.join(allowed)}"
    model = _model_at(parent)
    if model is None:
        return f"unknown key {key!r}"
    keys = list(model.model_fields)
    where = ".".join(str(p) for p in parent) or "the top level"
    return f"unknown key {key!r}{_did_you_mean(key, keys)}; valid keys at {where}: {', '.join(keys)}"


def _issues(error: ValidationError, marks: Marks | None = None) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        ctx = item.get("ctx") or {}
        if not loc and isinstance(ctx.get("field"), str):
            loc = tuple(ctx["field"].split("."))
        path = ".".join(str(part) for part in loc) or "<root>"
        message = _unknown_key(loc) if item["type"] == "extra_forbidden" and loc else item["msg"]
        line = column = None
        if marks:
            for end in range(len(loc), -1, -1):  # the value itself, else the closest parent the file has
                if loc[:end] in marks:
                    line, column = marks[loc[:end]]
                    break
        issues.append(ConfigIssue(path, message, line, column))
    return issues


_WHOLE_MODEL_FIELDS: Final = ("mode", "tenant_columns", "tenant_tables", "tenant_roots", "tenant_keys")
"""What the checks across fields of :class:`Settings` read (``tenant_keys`` against ``tenant_columns``, a file that
watches nothing). pydantic skips them when any field is bad."""


def _whole_model_issues(error: ValidationError, data: Mapping[str, Any], marks: Marks | None) -> list[ConfigIssue]:
    """The cross-field problems pydantic did not reach because a field elsewhere was bad (``rules.slow_qeury``):
    those checks run again on their own fields, so one pass names every problem."""
    if any(not item["loc"] for item in error.errors()):  # the cross-field checks ran: nothing is hidden
        return []
    bad = {item["loc"][0] for item in error.errors()}
    subset = {name: data[name] for name in _WHOLE_MODEL_FIELDS if name in data and name not in bad}
    try:
        Settings.model_validate(subset)
    except ValidationError as again:
        return [
            issue
            for issue, item in zip(_issues(again, marks), again.errors(), strict=True)
            if not item["loc"] and (item["type"] != "watches_nothing" or "mode" not in bad)  # mode: off misspelt?
        ]
    return []


def _config_error(
    error: ValidationError, source: str, marks: Marks | None = None, data: Mapping[str, Any] | None = None
) -> ConfigError:
    issues = _issues(error, marks)
    if data is not None:
        seen = {(issue.path, issue.message) for issue in issues}
        issues += [i for i in _whole_model_issues(error, data, marks) if (i.path, i.message) not in seen]
    lines = [f"{source}: invalid configuration"]
    for issue in issues:
        where = f" (line {issue.line}, column {issue.column})" if issue.line is not None else ""
        lines.append(f"  {issue.path}: {issue.message}{where}")
    return ConfigError("\n".join(lines), source=source, issues=issues)


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
    (env.TENANTWATCH_TRUST_BAGGAGE, "trust_baggage"),
    (env.TENANTWATCH_MASK_STATEMENTS, "mask_statements"),
    (env.TENANTWATCH_PROFILE, "profile"),
    (env.TENANTWATCH_ENFORCE_RULES, "enforce.rules"),
    (env.TENANTWATCH_CODE_LOCATION_SKIP, "code_location.skip_prefixes"),
)
"""Environment variable -> dotted settings path."""

_ENV_LISTS: Final = {
    "tenant_columns": ", and no tenant column would leave every table unwatched (monitoring off)",
    "superuser_roles": ", and no superuser role would let every role write unflagged",
    "http.trusted_proxies": "",
}
"""Comma-separated values, and what an empty one would do: ``,,,`` is a mistake, not an empty list."""


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
        if path in _ENV_LISTS and not any(part.strip() for part in value.split(",")):
            logger.warning(
                "ignoring %s=%r: it names nothing%s; the rules file or default applies", var, value, _ENV_LISTS[path]
            )
            continue
        candidate = _nested(path, value)
        try:
            Settings.model_validate(candidate)
        except ValidationError as exc:
            issue = _issues(exc)[0]
            logger.warning("ignoring %s=%r: %s: %s", var, value, issue.path, issue.message)
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
        data, marks = _read_file(path)
        source = str(path)
        try:
            Settings.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, source, marks, data) from exc
    data = _merge(data, _env_overrides(environ))
    explicit = {key: value for key, value in overrides.items() if value is not None}
    unknown = sorted(set(explicit) - set(Settings.model_fields))
    if unknown:
        issues = [ConfigIssue(key, _unknown_key((key,))) for key in unknown]
        message = f"unknown setting(s): {', '.join(unknown)}" + "".join(f"\n  {i.path}: {i.message}" for i in issues)
        raise ConfigError(message, source="arguments", issues=issues)
    data = _merge(data, explicit)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, "arguments" if explicit else source, data=data) from exc
