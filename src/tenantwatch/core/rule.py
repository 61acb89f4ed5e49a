"""What a rule is, the registry of every rule, and :func:`evaluate`.

A rule is a small immutable object in a module of its own, ``tenantwatch/rules/<id>.py``, with

* :class:`RuleMeta`: id, title, when it fires, default severity, categories, how to fix the code, which stages it
  judges and which analysis verdict it reads;
* a typed settings model (a :class:`RuleSettings` subclass: ``enabled``, ``severity`` and the rule's own options,
  extra keys forbidden), which is what ``rules.<id>`` of the rules file is validated with;
* its logic, for one or more stages:

  ``statement``: ``rule(facts, settings)`` judges one db statement (run by :func:`evaluate`: the span processor,
  enforce mode, ``tenantwatch explain`` and offline tools all call it, so a statement gets the same verdict
  everywhere); ``request``: :meth:`Rule.judge_request` judges one server span's request facts; ``stream`` and
  ``findings``: :meth:`Rule.open_window` returns a :class:`Window`, bounded state over the stream of statements or
  of the findings kept so far (the span processor's detectors drive it).

Rules are pure functions of (facts, settings, and for windows their own bounded state); none applies suppressions
(see :mod:`tenantwatch.core.suppressions`). The registry is filled by :mod:`tenantwatch.rules`, which
:mod:`tenantwatch.config` imports: any :class:`~tenantwatch.config.Settings` object implies a full registry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tenantwatch.core.findings import Finding, Severity, finding_fingerprint
from tenantwatch.core.guard import DeliberateError, log_internal_error

if TYPE_CHECKING:
    from tenantwatch.config import Settings, StateSettings
    from tenantwatch.facts import SpanFacts

__all__ = [
    "NO_FINDINGS",
    "Rule",
    "RuleMeta",
    "RuleSettings",
    "Stage",
    "Window",
    "all_rules",
    "enabled_rules",
    "evaluate",
    "evaluate_measured",
    "measured_quiet_up_to",
    "measured_rule_ids",
    "per_settings",
    "register",
    "rule_by_id",
    "rules_for",
    "unmeasured",
]

logger = logging.getLogger(__name__)

NO_FINDINGS: tuple[Finding, ...] = ()

Stage = Literal["statement", "request", "stream", "findings"]
"""What a rule judges: one db statement, one request (server span), the stream of statements (windowed), or the
stream of findings kept so far (windowed)."""


class RuleSettings(BaseModel):
    """``rules.<id>`` of the rules file: what every rule takes. A rule with options subclasses this model; keys of
    another rule (or of none) are rejected. A key given as null (an empty YAML value) means its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(default=None, description="switch the rule on or off (default: on, unless noted)")
    severity: Severity | None = Field(default=None, description="severity of its findings (default: the rule's own)")

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(value is None for value in data.values()):
            return {key: value for key, value in data.items() if value is not None}
        return data


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What a rule says about itself: the README's rules table, docs/rules/<id>.md and the rules-file reference are
    generated from these fields."""

    id: str
    """Rule id, as in the rules file and on the ``tenantwatch.rule`` attribute."""
    title: str
    """A few words (``Missing tenant filter``)."""
    summary: str
    """When it fires, in one line."""
    severity: Severity
    """Default severity (``rules.<id>.severity`` overrides it)."""
    categories: tuple[str, ...]
    """``isolation``, ``security``, ``performance``, ``data-quality``, ``abuse`` ..."""
    remediation: str
    """How to fix the code that triggers it, in a sentence or two."""
    stages: tuple[Stage, ...]
    settings: type[RuleSettings] = RuleSettings
    enabled: bool = True
    """On unless the rules file switches it off (``False``: off unless switched on)."""
    verdict: str | None = None
    """The analysis fact it reads, and which module computes it (the verdict stays in ``sql/``: it is analysis)."""
    needs: tuple[str, ...] = ()
    """``SpanFacts`` fields of which at least one must be given (not ``None``, not an empty tuple) for the rule to
    fire at all: :func:`evaluate` does not call it otherwise. ``()``: always called."""
    measured: bool = False
    """The rule reads a fact its statement's span attributes do not carry: the span's duration (``duration_ms``).
    ``False`` (every rule but those): its verdict is a function of the span's attributes, the request tenant and the
    settings alone, which lets the span processor remember its verdict for a statement that repeats exactly
    (:mod:`tenantwatch.processors._memo`); a measured rule judges every statement."""

    def options(self) -> tuple[str, ...]:
        """The settings this rule takes besides ``enabled`` and ``severity``."""
        return tuple(name for name in self.settings.model_fields if name not in RuleSettings.model_fields)


class Window:
    """Bounded state of one windowed rule. Not thread-safe on its own: the caller holds one lock around it."""

    __slots__ = ()

    writes_only: ClassVar[bool] = False
    """``True``: :meth:`observe` finds nothing in a statement that is not a write (``SpanFacts.is_write``), so the
    detectors do not call it for reads."""

    def observe(self, facts: SpanFacts, now: float) -> Sequence[Finding]:
        """Stage ``stream``: one judged db statement at ``now``."""
        return NO_FINDINGS

    def after(self, kept: Sequence[Finding], facts: SpanFacts, now: float) -> Sequence[Finding]:
        """Stage ``findings``: the findings just kept for one span (after suppressions)."""
        return NO_FINDINGS

    def size(self) -> int:
        """Keys held (each window is bounded by ``state.max_keys`` per key kind)."""
        return 0


class Rule:
    """One rule (see the module docstring). Subclasses set :attr:`meta` and implement the hooks of its stages."""

    __slots__ = ()

    meta: ClassVar[RuleMeta]
    id: ClassVar[str]
    """``meta.id``."""
    summary: ClassVar[str]
    """``meta.summary``."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        meta = cls.__dict__.get("meta")
        if isinstance(meta, RuleMeta):
            cls.id = meta.id
            cls.summary = meta.summary

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        """Stage ``statement``: the findings for one statement (usually none)."""
        return NO_FINDINGS

    def judge_request(self, attributes: Mapping[str, Any], facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        """Stage ``request``: the findings for one server span, from the request facts the middleware recorded."""
        return NO_FINDINGS

    def open_window(self, settings: Settings, state: StateSettings) -> Window:
        """Stages ``stream`` / ``findings``: fresh bounded state for ``settings``."""
        return Window()

    def quiet_up_to(self, settings: Settings) -> float:
        """A measured rule (:attr:`RuleMeta.measured`): the longest duration in milliseconds at which it finds nothing,
        whatever the other facts (``-inf``, the default: it may fire at any duration). Lets the span processor skip
        the measured rules, and the copy of remembered facts they would read, for a repeated statement that ran
        faster than that (:func:`measured_quiet_up_to`)."""
        return -math.inf

    def __str__(self) -> str:
        return f"{self.id}: {self.summary}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def finding(
        self,
        facts: SpanFacts | None,
        settings: Settings,
        message: str,
        *,
        table: str | None = None,
        fingerprint: str | None = None,
        tenant_key: str | None = None,
    ) -> Finding:
        """A finding of this rule with the configured severity; the fingerprint defaults to the stable one of the
        statement (``facts``)."""
        if fingerprint is None:
            if facts is None:
                raise ValueError("a finding needs facts or an explicit fingerprint")
            fingerprint = _statement_fingerprint(self.id, facts)
        return Finding(
            rule=self.id,
            severity=_severities(settings)[self.id],
            message=message,
            fingerprint=fingerprint,
            table=table,
            tenant_key=tenant_key,
        )


_FINGERPRINTS: dict[tuple[str, str | None, str | None, int | None, str | None], str] = {}
_FINGERPRINTS_MAX = 4096
"""Finding fingerprints by (rule, statement fingerprint, code location): an application has a few hundred call
sites, and a SHA-1 per finding costs more than the lookup. Cleared when full (bounded memory, no eviction order)."""


def _statement_fingerprint(rule_id: str, facts: SpanFacts) -> str:
    """:func:`finding_fingerprint`, remembered."""
    key = (rule_id, facts.statement_fingerprint, facts.code_filepath, facts.code_lineno, facts.code_function)
    found = _FINGERPRINTS.get(key)
    if found is None:
        if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
            _FINGERPRINTS.clear()
        found = _FINGERPRINTS[key] = finding_fingerprint(rule_id, facts)
    return found


_REGISTRY: dict[str, Rule] = {}


def register(*rules: Rule) -> None:
    """Add rules to the registry, in evaluation order (:mod:`tenantwatch.rules` registers the catalogue)."""
    for rule in rules:
        if rule.id in _REGISTRY and type(_REGISTRY[rule.id]) is not type(rule):
            raise ValueError(f"rule id {rule.id!r} is registered twice")
        _REGISTRY[rule.id] = rule


def all_rules() -> tuple[Rule, ...]:
    """Every registered rule, in evaluation order."""
    return tuple(_REGISTRY.values())


def rules_for(stage: Stage) -> tuple[Rule, ...]:
    """The registered rules that judge ``stage``, in evaluation order."""
    return tuple(rule for rule in _REGISTRY.values() if stage in rule.meta.stages)


def rule_by_id(rule_id: str) -> Rule:
    """The rule object for ``rule_id`` (``KeyError`` for an unknown id)."""
    return _REGISTRY[rule_id]


_S = TypeVar("_S")


def per_settings(derive: Callable[[Settings], _S]) -> Callable[[Settings], _S]:
    """``derive(settings)``, cached for the last settings object seen (settings are immutable and a process runs with
    one, so rules read their thresholds once, not per statement)."""
    cache: list[tuple[Settings, _S]] = []

    def cached(settings: Settings) -> _S:
        if cache and cache[0][0] is settings:
            return cache[0][1]
        found = derive(settings)
        cache[:] = [(settings, found)]  # one entry; the slice assignment is atomic under the GIL
        return found

    return cached


@per_settings
def _enabled_statement_rules(settings: Settings) -> tuple[Rule, ...]:
    return tuple(rule for rule in rules_for("statement") if settings.enabled(rule.id))


@per_settings
def _plan(settings: Settings) -> tuple[tuple[Rule, Callable[[Any], Any] | None, bool], ...]:
    """Each enabled statement rule with a getter of the facts it needs (``None``: always called) and whether the
    getter returns several of them."""
    return _plan_of(_enabled_statement_rules(settings))


@per_settings
def _measured_plan(settings: Settings) -> tuple[tuple[Rule, Callable[[Any], Any] | None, bool], ...]:
    """:func:`_plan`, of the enabled measured rules only (see :attr:`RuleMeta.measured`)."""
    return _plan_of(tuple(rule for rule in _enabled_statement_rules(settings) if rule.meta.measured))


def _plan_of(rules: tuple[Rule, ...]) -> tuple[tuple[Rule, Callable[[Any], Any] | None, bool], ...]:
    return tuple(
        (rule, attrgetter(*rule.meta.needs) if rule.meta.needs else None, len(rule.meta.needs) > 1) for rule in rules
    )


@per_settings
def _rule_order(settings: Settings) -> dict[str, int]:
    """Rule id -> its place among the enabled statement rules (the order :func:`evaluate` reports findings in)."""
    return {rule.id: index for index, rule in enumerate(_enabled_statement_rules(settings))}


@per_settings
def measured_quiet_up_to(settings: Settings) -> float:
    """The longest duration (ms) at which no enabled measured rule can fire (:meth:`Rule.quiet_up_to`; ``inf`` when
    none is enabled): a statement whose other rules' verdict is known and that took no longer needs no judging."""
    return min((rule.quiet_up_to(settings) for rule, _needed, _several in _measured_plan(settings)), default=math.inf)


@per_settings
def measured_rule_ids(settings: Settings) -> frozenset[str]:
    """Ids of the enabled statement rules that read facts no span attribute carries (:attr:`RuleMeta.measured`)."""
    return frozenset(rule.id for rule, _needed, _several in _measured_plan(settings))


def _given(value: object) -> bool:
    return value is not None and value != ()


class _Severities(dict[str, "Severity"]):
    """Rule id -> configured severity, filled on first use of each id."""

    __slots__ = ("_settings",)

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings

    def __missing__(self, rule_id: str) -> Severity:
        severity = self[rule_id] = self._settings.severity(rule_id)
        return severity


@per_settings
def _severities(settings: Settings) -> _Severities:
    return _Severities(settings)


def enabled_rules(settings: Settings) -> tuple[Rule, ...]:
    """The statement rules ``settings`` leaves switched on, in evaluation order."""
    return _enabled_statement_rules(settings)


def evaluate(facts: SpanFacts, settings: Settings) -> list[Finding]:
    """Findings of every enabled statement rule for one statement, in rule order. Never raises: a rule that fails is
    logged (rate limited) and skipped, the others still run.

    Inside ``unscoped(reason, rules=[...])`` the rules named are skipped and every other rule judges the statement
    as if it were not unscoped (the finding still carries the facts as recorded)."""
    return _judge(facts, settings, _plan(settings))


def evaluate_measured(facts: SpanFacts, settings: Settings, known: Sequence[Finding] = ()) -> list[Finding]:
    """:func:`evaluate` for a statement whose unmeasured rules' findings are ``known`` (those rules found them for the
    same facts before): only the measured rules (:attr:`RuleMeta.measured`) run, and every finding comes back in the
    order :func:`evaluate` would give it."""
    measured = _judge(facts, settings, _measured_plan(settings))
    if not known:
        return measured
    if not measured:
        return list(known)
    order = _rule_order(settings)
    return sorted((*known, *measured), key=lambda finding: order.get(finding.rule, len(order)))


def unmeasured(findings: Sequence[Finding], settings: Settings) -> tuple[Finding, ...]:
    """The findings of unmeasured rules: what :func:`evaluate_measured` can be given as ``known`` for the same facts."""
    measured = measured_rule_ids(settings)
    return tuple(finding for finding in findings if finding.rule not in measured)


def _judge(
    facts: SpanFacts, settings: Settings, plan: tuple[tuple[Rule, Callable[[Any], Any] | None, bool], ...]
) -> list[Finding]:
    findings: list[Finding] = []
    allowed = facts.unscoped_rules
    judged = facts
    if allowed:  # unscoped(reason, rules=[...]): those rules are silent, the others judge as if not unscoped
        judged = replace(facts, unscoped_reason=None, unscoped_rules=())
    for rule, needed, several in plan:
        if needed is not None:  # a rule that cannot fire on these facts is not called (see RuleMeta.needs)
            value = needed(judged)
            if (not any(map(_given, value))) if several else (value is None or value == ()):
                continue
        if allowed and rule.id in allowed:
            continue
        try:  # what ``guard`` does, without building one per rule and statement (the hot path)
            found = rule(judged, settings)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error(f"rule {rule.id}", outcome="skipped", logger=logger, level=logging.ERROR)
            continue
        if found:
            findings.extend(found)
    return findings
