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
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tenantwatch import environment_variables as env

__all__ = [
    "RULE_IDS",
    "ConfigError",
    "RuleSettings",
    "RulesSettings",
    "Settings",
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
)
"""Rules the processor evaluates, in evaluation order."""

DEFAULT_SEVERITIES: dict[str, Severity] = {
    "missing_tenant_filter": "critical",
    "cross_tenant": "critical",
    "unscoped_write": "critical",
    "no_tenant_context": "high",
    "superuser_write": "high",
    "large_result": "warning",
    "slow_query": "warning",
}


class ConfigError(ValueError):
    """A rules file, environment value or argument that cannot be used. The message names the field path."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSettings(_Model):
    """Switch and severity of one rule, plus the thresholds of the rules that have one."""

    enabled: bool = True
    severity: Severity | None = None
    threshold: int | None = Field(default=None, gt=0, description="large_result: rows")
    threshold_ms: float | None = Field(default=None, gt=0, description="slow_query: milliseconds")
    per_table: dict[str, int] = Field(default_factory=dict, description="large_result: rows per table")

    @field_validator("per_table")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for table, rows in value.items():
            if rows <= 0:
                raise ValueError(f"{table}: threshold must be greater than 0")
        return {table.lower(): rows for table, rows in value.items()}


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
    suppressions: tuple[Suppression, ...] = ()

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
        return self.rule(rule_id).enabled

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


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Environment values, each validated on its own: a bad one is logged and skipped."""
    candidates: list[tuple[str, str, Any]] = []
    for var, field in (
        (env.TENANTWATCH_MODE, "mode"),
        (env.TENANTWATCH_TENANT_COLUMNS, "tenant_columns"),
        (env.TENANTWATCH_SUPERUSER_ROLES, "superuser_roles"),
        (env.TENANTWATCH_TENANT_LABEL_CAP, "tenant_label_cap"),
        (env.TENANTWATCH_DISCOVER, "discover"),
    ):
        raw = environ.get(var)
        if raw is not None and raw.strip():
            candidates.append((var, field, raw.strip().lower() if field == "mode" else raw.strip()))
    overrides: dict[str, Any] = {}
    for var, field, value in candidates:
        try:
            Settings.model_validate({field: value})
        except ValidationError as exc:
            logger.warning("ignoring %s=%r: %s", var, value, exc.errors()[0]["msg"])
            continue
        overrides[field] = value
    rule_env: dict[str, dict[str, Any]] = {}
    for var, rule_id, key in (
        (env.TENANTWATCH_LARGE_RESULT_ROWS, "large_result", "threshold"),
        (env.TENANTWATCH_SLOW_QUERY_MS, "slow_query", "threshold_ms"),
    ):
        raw = environ.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            RuleSettings.model_validate({key: raw.strip()})
        except ValidationError as exc:
            logger.warning("ignoring %s=%r: %s", var, raw, exc.errors()[0]["msg"])
            continue
        rule_env.setdefault(rule_id, {})[key] = raw.strip()
    if rule_env:
        overrides["rules"] = rule_env
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
