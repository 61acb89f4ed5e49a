"""injection_signal: a request value appears verbatim inside the SQL text (string-built SQL), or a request carries
SQL injection, XSS, path traversal or command injection patterns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tenantwatch import attributes as A
from tenantwatch.core.findings import Finding, key_fingerprint
from tenantwatch.core.rule import NO_FINDINGS, Rule, RuleMeta, RuleSettings
from tenantwatch.rules._common import quote

if TYPE_CHECKING:
    from tenantwatch.config import Settings
    from tenantwatch.facts import SpanFacts

__all__ = ["RULE", "InjectionSignal", "InjectionSignalSettings"]

_MAX_PATTERNS_SHOWN = 8


class InjectionSignalSettings(RuleSettings):
    """``rules.injection_signal``."""

    min_length: int = Field(
        default=4, gt=0, description="shortest request value looked for in the SQL text (shorter ones match by chance)"
    )


class InjectionSignal(Rule):
    """Two stages:

    * statement: fires when the instrumentation saw values of the current request inside the statement text.
      SQLAlchemy binds parameters, so a request value only reaches the text when the SQL was built by string
      formatting: the classic injection path. The finding names where the values came from (``query.q``), never the
      values.
    * request: fires on a server span whose request carried attack patterns (``tenantwatch.http.attack_patterns``,
      recorded by the ASGI middleware from :mod:`tenantwatch.security.patterns`), one finding per request.
    """

    __slots__ = ()
    meta = RuleMeta(
        id="injection_signal",
        title="Injection signal",
        summary="a request value appears verbatim in the SQL text (string-built SQL); attack patterns in a request",
        severity="high",
        categories=("security", "injection"),
        remediation="Bind request values as parameters (`text(...).bindparams(...)`, `select(...).where(col == v)`) "
        "instead of formatting them into SQL; validate and reject malformed input at the edge.",
        stages=("statement", "request"),
        settings=InjectionSignalSettings,
        verdict="request values found in the statement text (`tenantwatch.db.request_values_in_sql`) and the "
        "request's attack patterns (`tenantwatch.http.attack_patterns`)",
        needs=("request_values_in_sql",),
    )

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        sources = facts.request_values_in_sql
        if not sources:
            return NO_FINDINGS
        message = (
            f"{facts.operation or 'statement'} text contains request value(s) from {quote(list(sources))}: "
            "the SQL is built from request input; bind parameters instead"
        )
        return (self.finding(facts, settings, message, table=facts.main_table),)

    def judge_request(self, attributes: Mapping[str, Any], facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        patterns = attributes.get(A.HTTP_ATTACK_PATTERNS)
        if not patterns:
            return NO_FINDINGS
        route = facts.route or ""
        items = [str(p) for p in (patterns if isinstance(patterns, list | tuple) else (patterns,))]
        kinds = sorted({item.split(":", 1)[0] for item in items})
        message = (
            f"request to {route or 'an unmatched route'} carries attack patterns: "
            f"{', '.join(items[:_MAX_PATTERNS_SHOWN])}"
        )
        return (self.finding(facts, settings, message, fingerprint=key_fingerprint(self.id, route, *kinds)),)


RULE = InjectionSignal()
