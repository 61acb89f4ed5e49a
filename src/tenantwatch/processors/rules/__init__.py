"""The rules: pure functions of (span facts, settings) that turn facts into findings.

Each rule is a small immutable predicate object in a module of its own (``rule(facts, settings)`` returns its
findings, ``str(rule)`` says when it fires). :data:`RULES` holds them in evaluation order, the order of
:data:`tenantwatch.config.RULE_IDS`. :func:`evaluate` runs the enabled ones; it is what the span processor, enforce
mode, ``tenantwatch explain`` and offline tools all call, so a statement gets the same verdict everywhere.

Suppressions are not applied here (see :mod:`tenantwatch.processors.suppressions`): a suppressed finding still
exists, it is only kept off spans, metrics and logs.
"""

from __future__ import annotations

import logging

from tenantwatch.config import RULE_IDS, Settings
from tenantwatch.core.guard import guard
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import Rule
from tenantwatch.processors.rules.cross_tenant import CrossTenant
from tenantwatch.processors.rules.injection_signal import InjectionSignal
from tenantwatch.processors.rules.large_result import LargeResult
from tenantwatch.processors.rules.missing_tenant_filter import MissingTenantFilter
from tenantwatch.processors.rules.no_tenant_context import NoTenantContext
from tenantwatch.processors.rules.slow_query import SlowQuery
from tenantwatch.processors.rules.stale_tenant_context import StaleTenantContext
from tenantwatch.processors.rules.superuser_write import SuperuserWrite
from tenantwatch.processors.rules.test_data import TestData
from tenantwatch.processors.rules.unscoped_write import UnscopedWrite

__all__ = ["RULES", "Rule", "enabled_rules", "evaluate", "rule_by_id"]

logger = logging.getLogger(__name__)

RULES: tuple[Rule, ...] = (
    MissingTenantFilter(),
    CrossTenant(),
    UnscopedWrite(),
    NoTenantContext(),
    SuperuserWrite(),
    LargeResult(),
    SlowQuery(),
    InjectionSignal(),
    TestData(),
    StaleTenantContext(),
)
"""Every pure statement rule, in evaluation order (the order of ``RULE_IDS``). Request rules and the windowed
detectors are not here: they need more than one statement's facts."""

if [rule.id for rule in RULES] != [i for i in RULE_IDS if i in {rule.id for rule in RULES}]:  # pragma: no cover
    raise RuntimeError("tenantwatch.processors.rules.RULES is out of step with tenantwatch.config.RULE_IDS")

_BY_ID = {rule.id: rule for rule in RULES}
_enabled_cache: tuple[Settings, tuple[Rule, ...]] | None = None


def rule_by_id(rule_id: str) -> Rule:
    """The rule object for ``rule_id`` (``KeyError`` for an unknown id)."""
    return _BY_ID[rule_id]


def enabled_rules(settings: Settings) -> tuple[Rule, ...]:
    """The rules ``settings`` leaves switched on, in evaluation order (cached for the last settings object seen)."""
    global _enabled_cache  # noqa: PLW0603 - a one-entry cache; the tuple swap is atomic
    cached = _enabled_cache
    if cached is not None and cached[0] is settings:
        return cached[1]
    rules = tuple(rule for rule in RULES if settings.enabled(rule.id))
    _enabled_cache = (settings, rules)
    return rules


def evaluate(facts: SpanFacts, settings: Settings) -> list[Finding]:
    """Findings of every enabled rule for one statement, in rule order. Never raises: a rule that fails is logged
    (rate limited) and skipped, the others still run."""
    findings: list[Finding] = []
    for rule in enabled_rules(settings):
        found: tuple[Finding, ...] = ()
        with guard(f"rule {rule.id}", outcome="skipped", logger=logger, level=logging.ERROR):
            found = rule(facts, settings)
        if found:
            findings.extend(found)
    return findings
