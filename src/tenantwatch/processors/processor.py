"""The span processor: judges db spans at ``on_end`` and forwards what it found.

:class:`TenantwatchSpanProcessor` wraps the span processor (or exporter) spans go to. For every db span it

1. reads the facts the instrumentation put on the span, or, for a db span from another instrumentation that carries
   only ``db.statement`` / ``db.query.text``, analyzes the statement text itself (a span with ``db.system`` but no
   statement and no operation, such as a ``connect`` span, is not a statement and passes untouched);
2. records ``db.client.operation.duration`` and ``tenantwatch.db.returned_rows``;
3. runs the enabled rules (for a db span whose attributes repeat those of one judged before, only the rules that
   read its duration; the others' findings are remembered: :mod:`._memo`), drops the findings a suppression matches
   (counting them on ``tenantwatch.findings.suppressed``), and for each remaining finding counts
   ``tenantwatch.findings`` and emits a log record;
4. forwards an enriched copy of the span (finding attributes and events) when there are findings, the span itself
   otherwise. Spans that are not db spans are forwarded untouched, except that
5. every forwarded span leaves fit to export (:mod:`._outgoing`): strings capped at ``max_string_length``, literals
   of foreign statements masked, database errors in status and exception events without the values they quote.

It never raises into the code that ends the span and never blocks: rules are pure and cheap, analysis of foreign
statements is cached by text. Any internal error is logged (rate limited) and the original span is forwarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry._logs import LoggerProvider
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import TenantContext, current_context
from tenantwatch.core.findings import Finding
from tenantwatch.core.guard import DeliberateError, guard, log_internal_error
from tenantwatch.core.handover import announce, claim
from tenantwatch.core.rule import evaluate, evaluate_measured, measured_quiet_up_to, unmeasured
from tenantwatch.core.suppressions import matching_suppression
from tenantwatch.core.windows.cooldown import Cooldown
from tenantwatch.facts import SpanFacts, facts_for_statement, with_duration
from tenantwatch.processors._enriched import EnrichedSpan, enriched_copy
from tenantwatch.processors._logs import FindingLogs
from tenantwatch.processors._memo import VerdictMemo
from tenantwatch.processors._outgoing import attributes_fit, bare, outgoing
from tenantwatch.processors._routes import RouteIndex
from tenantwatch.processors.detectors import Detectors
from tenantwatch.processors.metrics import ProcessorMetrics
from tenantwatch.processors.requests import has_request_facts, judge_request, request_facts

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

_SERVER = SpanKind.SERVER
"""``SpanKind.SERVER`` (an enum member looked up on its class costs as much as the rest of a cheap check)."""

__all__ = ["NOSQL_SYSTEMS", "TenantwatchSpanProcessor"]

logger = logging.getLogger(__name__)

NOSQL_SYSTEMS: frozenset[str] = frozenset(
    {
        "redis",
        "memcached",
        "mongodb",
        "elasticsearch",
        "opensearch",
        "cassandra",
        "couchdb",
        "couchbase",
        "dynamodb",
        "aws.dynamodb",
        "cosmosdb",
        "azure.cosmosdb",
        "neo4j",
        "hbase",
        "geode",
        "other_nosql",
    }
)
"""``db.system`` values of non-SQL stores: their spans are forwarded untouched (no metrics, no rules)."""


def _guard(where: str, outcome: str = "ignored") -> guard:
    """The processor's guard: internal errors logged at ERROR on this module's logger (rate-limited)."""
    return guard(where, outcome=outcome, logger=logger, level=logging.ERROR)


def _raw_attributes(span: ReadableSpan) -> Mapping[str, Any]:
    """The span's attributes as a plain mapping, without copying.

    ``span.attributes`` is a ``MappingProxyType`` over the SDK's ``BoundedAttributes``, whose ``get`` runs Python
    code (and raises/catches ``KeyError`` for every missing key); reading its inner dict directly is several times
    faster on the hot path. Falls back to the public property for any other span implementation.
    """
    raw = getattr(span, "_attributes", None)
    inner = getattr(raw, "_dict", None)
    if isinstance(inner, dict):
        return inner
    if isinstance(raw, dict):
        return raw
    return span.attributes or {}


class TenantwatchSpanProcessor(SpanProcessor):
    """Evaluates tenantwatch's rules on db spans and forwards enriched copies to ``delegate``.

    ``delegate`` is the span processor spans go to next, or a span exporter (wrapped in a ``BatchSpanProcessor``).
    ``settings`` defaults to :func:`tenantwatch.config.load_settings` (environment and rules file); ``analyzer``
    (for db spans of other instrumentations) is created from the settings on first use; metrics and log records go
    to ``meter_provider`` / ``logger_provider``, else to the global providers.
    """

    def __init__(
        self,
        delegate: SpanProcessor | SpanExporter,
        *,
        settings: Settings | None = None,
        analyzer: Analyzer | None = None,
        meter_provider: MeterProvider | None = None,
        logger_provider: LoggerProvider | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._delegate: SpanProcessor = BatchSpanProcessor(delegate) if isinstance(delegate, SpanExporter) else delegate
        self._settings = settings if settings is not None else load_settings()
        self._analyzer: Analyzer | None = analyzer
        self._analyzer_failed = False
        self._metrics = ProcessorMetrics(
            meter_provider,
            tenant_label_cap=self._settings.tenant_label_cap,
            table_label_cap=self._settings.table_label_cap,
        )
        self._logs = FindingLogs(logger_provider, max_length=self._settings.max_string_length)
        self._routes = RouteIndex()
        self._memo = VerdictMemo()
        """Facts and unmeasured findings of db spans by their attributes: a span that repeats one exactly is not read
        back and judged again in full (:mod:`._memo`)."""
        self._off = self._settings.mode == "off"
        self._quiet_up_to = measured_quiet_up_to(self._settings)
        """A remembered clean span that took no longer than this (ms) is clean again: no measured rule can fire."""
        self._clock = clock or time.time
        """Wall-clock seconds for the windowed detectors and the log cooldown (injectable for tests)."""
        self._detectors = Detectors(self._settings, self._clock)
        self._listeners: list[Callable[[Finding, SpanFacts, ReadableSpan], None]] = []
        dedupe, state = self._settings.dedupe, self._settings.state
        self._cooldown = (
            Cooldown(dedupe.window_seconds, max_keys=state.max_keys, ttl=state.ttl_seconds) if dedupe.enabled else None
        )
        self._installed = False
        """True when :func:`tenantwatch.processors.install` created this processor around a provider's processors."""
        announce(self)  # tools that hear every processor of the process (the pytest gate) subscribe now

    # --- public surface ---------------------------------------------------------------------------------------

    @property
    def delegate(self) -> SpanProcessor:
        """The span processor spans are forwarded to."""
        return self._delegate

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def tenant_buckets(self) -> frozenset[str]:
        """Tenants that have a ``tenant.bucket`` label value of their own (at most ``tenant_label_cap``)."""
        return self._metrics.tenant_bucket.tracked

    def add_finding_listener(self, listener: Callable[[Finding, SpanFacts, ReadableSpan], None]) -> None:
        """Call ``listener(finding, facts, span)`` for every kept finding, synchronously as the span ends (so in the
        request that produced it). Used by response actions; a listener that raises is logged and ignored."""
        if listener not in self._listeners:
            self._listeners.append(listener)

    @property
    def detectors(self) -> Detectors:
        """The windowed detectors (state size, for operators and tests)."""
        return self._detectors

    def analyzer(self) -> Analyzer | None:
        """The analyzer used for db spans that carry only statement text (created on first use)."""
        if self._analyzer is None and not self._analyzer_failed:
            with _guard("creating the statement analyzer", "no analysis of foreign db spans") as attempt:
                from tenantwatch.sql.analyzer import Analyzer

                self._analyzer = Analyzer(self._settings)
            self._analyzer_failed = attempt.failed
        return self._analyzer

    # --- SpanProcessor ----------------------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        # try/except with the guard's semantics, not two guard objects per span (every span passes here)
        try:
            if span.kind is _SERVER:
                self._routes.started(span)
                claim(self)  # an ASGI middleware serving this request listens to this processor's findings
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("on_start", logger=logger, level=logging.ERROR)
        try:
            self._delegate.on_start(span, parent_context=parent_context)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("the wrapped span processor's on_start", logger=logger, level=logging.ERROR)

    def _on_ending(self, span: Span) -> None:
        try:
            self._delegate._on_ending(span)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("the wrapped span processor's _on_ending", logger=logger, level=logging.ERROR)

    def on_end(self, span: ReadableSpan) -> None:
        # what two ``_guard`` blocks do, without building two guard objects per span (every span passes here)
        forwarded = span
        try:
            forwarded, fit = self._judge(span)
            if fit is True and forwarded is span and bare(span):
                pass  # the common case: the span itself, its attributes known to be fit, nothing else to clean
            elif not self._off and not (type(forwarded) is EnrichedSpan and forwarded.fit_to_export):
                forwarded = outgoing(
                    forwarded,
                    _raw_attributes(forwarded),
                    self._settings.max_string_length,
                    self._settings.mask_statements,
                    fit=fit,
                )
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("on_end", outcome="span forwarded unchanged", logger=logger, level=logging.ERROR)
        try:
            self._delegate.on_end(forwarded)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("the wrapped span processor's on_end", logger=logger, level=logging.ERROR)

    def shutdown(self) -> None:
        self._delegate.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._delegate.force_flush(timeout_millis)

    # --- judging ----------------------------------------------------------------------------------------------

    def process(self, span: ReadableSpan) -> ReadableSpan:
        """Judge one finished span: record metrics, findings and logs; return the span to forward."""
        return self._judge(span)[0]

    def _judge(self, span: ReadableSpan) -> tuple[ReadableSpan, bool | None]:
        """:meth:`process`, and whether the returned span's attributes are fit to export as they are (``None``:
        not known)."""
        if span.kind is _SERVER:
            self._routes.ended(span)
        if self._off:
            return span, None
        attributes = _raw_attributes(span)
        if not attributes:
            return span, None
        start, end = span.start_time, span.end_time
        duration_ms = (end - start) / 1e6 if start is not None and end is not None else None
        foreign = False
        fit: bool | None = None
        # stale: facts remembered with the first span's duration; only the windowed detectors, which do not read
        # it, see them so (the metrics get this span's duration), anything that publishes them gets a copy
        stale = False
        settings = self._settings
        if A.DB_TENANT_FILTER in attributes:  # tenantwatch's own facts: a span that repeats is judged from memory
            request_tenant = self._routes.tenant_for(span) if attributes.get(A.DB_TENANT_TABLES) else None
            memo = self._memo
            key = memo.key(attributes, request_tenant)
            remembered = memo.get(key)
            if remembered is not None:
                facts, fit, known = remembered
                if known or duration_ms is None or duration_ms > self._quiet_up_to:
                    facts = with_duration(facts, duration_ms)
                    findings = evaluate_measured(facts, settings, known)
                else:  # clean before and too fast for any measured rule: clean now, no copy needed yet
                    stale = True
                    findings = []
            else:
                facts = SpanFacts.from_attributes(attributes, duration_ms=duration_ms)
                if request_tenant is not None:
                    # from_attributes built these facts a moment ago and nothing holds them yet: set the field
                    # instead of dataclasses.replace (≈8 µs for SpanFacts' 50 fields)
                    facts.request_tenant = request_tenant
                findings = evaluate(facts, settings)
                fit = attributes_fit(attributes, settings.max_string_length, settings.mask_statements)
                if key is not None:
                    memo.put(key, facts, fit, unmeasured(findings, settings) if findings else ())
        elif A.DB_STATEMENT in attributes or A.DB_QUERY_TEXT in attributes or A.DB_OPERATION_NAME in attributes:
            system = attributes.get(A.DB_SYSTEM_NAME, attributes.get(A.DB_SYSTEM))
            if system is not None and str(system).lower() in NOSQL_SYSTEMS:
                return span, None
            facts, foreign = self._analyze_foreign(attributes, duration_ms)
            if facts.tenant_tables:
                request_tenant = self._routes.tenant_for(span)
                if request_tenant is not None:
                    facts = replace(facts, request_tenant=request_tenant)
            findings = evaluate(facts, settings)
        else:
            if span.kind is _SERVER and has_request_facts(attributes):
                return self._judge_request(span, attributes), None
            return span, None

        metrics = self._metrics
        bucket = metrics.bucket_of(facts.tenant_id)
        if metrics.enabled:
            metrics.record_statement(facts, bucket, duration_ms)
        detectors = self._detectors
        if detectors.active:
            findings.extend(detectors.observe(facts))
        if not findings:
            return span, fit
        if stale:
            facts = with_duration(facts, duration_ms)
        if facts.route is None:
            route = self._routes.route_for(span, attributes)
            if route is not None:
                facts = replace(facts, route=route)
        kept = self._unsuppressed(findings, facts)
        if kept and detectors.watches_findings:
            repeated = detectors.after(kept, facts)
            if repeated:
                kept = kept + self._unsuppressed(repeated, facts)
        if not kept:
            return span, fit
        self._publish(span, kept, facts, bucket)
        if foreign:  # the facts we worked out travel with the copy (on_end makes the copy fit to export)
            return enriched_copy(span, kept, attributes=attributes, extra_attributes=facts.to_attributes()), None
        # clean the original once (usually: the span itself, no copy), then add the findings already capped, so
        # on_end does not pass over the copy's attributes and events again
        clean = outgoing(span, attributes, settings.max_string_length, settings.mask_statements, fit=fit)
        clean_attributes = attributes if clean is span else _raw_attributes(clean)
        return enriched_copy(clean, kept, attributes=clean_attributes, limit=settings.max_string_length), None

    def _publish(self, span: ReadableSpan, kept: list[Finding], facts: SpanFacts, bucket: str) -> None:
        """Count, log (through the cooldown) and hand to the listeners every kept finding."""
        for finding in kept:
            self._metrics.record_finding(finding, bucket)
            for listener in self._listeners:
                with _guard("a finding listener"):
                    listener(finding, facts, span)
            repeats = 0
            if self._cooldown is not None:
                held = self._cooldown.admit(finding.rule, finding.fingerprint, facts.tenant_id, self._clock())
                if held is None:
                    continue  # same finding within the cooldown window: counted and on the span, not logged again
                repeats = held
            with _guard("emitting a finding log record"):  # a broken log pipeline must not cost the span's finding
                self._logs.emit(span, finding, facts, repeats=repeats)

    def _judge_request(self, span: ReadableSpan, attributes: Mapping[str, Any]) -> ReadableSpan:
        """Request rules on a server span (attack patterns, brute force)."""
        facts = request_facts(attributes)
        findings = judge_request(attributes, facts, self._settings)
        kept = self._unsuppressed(findings, facts) if findings else []
        if kept and self._detectors.watches_findings:
            repeated = self._detectors.after(kept, facts)
            if repeated:
                kept = kept + self._unsuppressed(repeated, facts)
        if not kept:
            return span
        self._publish(span, kept, facts, self._metrics.tenant_bucket(facts.tenant_id))
        return enriched_copy(span, kept, attributes=attributes, extra_attributes=None)

    def _unsuppressed(self, findings: list[Finding], facts: SpanFacts) -> list[Finding]:
        if not self._settings.suppressions:
            return findings
        kept: list[Finding] = []
        for finding in findings:
            suppression = matching_suppression(finding, facts, self._settings)
            if suppression is None:
                kept.append(finding)
                continue
            self._metrics.record_suppressed(finding)
            logger.debug(
                "tenantwatch finding %s (%s) suppressed: %s", finding.rule, finding.fingerprint, suppression.reason
            )
        return kept

    def _analyze_foreign(self, attributes: Mapping[str, Any], duration_ms: float | None) -> tuple[SpanFacts, bool]:
        """Facts for a db span from another instrumentation: analyze its statement text ourselves.

        Bound parameters are unknown here, so only inline literal tenant values are seen. The tenant comes from the
        span's ``tenant.id`` / ``enduser.*`` / ``tenantwatch.unscoped.reason`` attributes when it has them, else from
        the tenant context of the thread or task ending the span (where the statement ran). Returns the facts and
        whether they came from our own analysis.
        """
        base = SpanFacts.from_attributes(attributes, duration_ms=duration_ms)
        statement = base.statement
        analyzer = self.analyzer() if statement else None
        if statement is None or analyzer is None:
            return base, False
        analysis = analyzer.analyze(statement)
        if base.tenant_id is not None or base.unscoped_reason is not None:
            context = TenantContext(
                tenant_id=base.tenant_id,
                user_id=base.user_id,
                role=base.role,
                unscoped_reason=base.unscoped_reason,
                unscoped_rules=base.unscoped_rules,
                keys=base.tenant_keys,
            )
        else:
            context = current_context()
        facts = facts_for_statement(
            analysis,
            None,
            context,
            statement=statement,
            system=base.system,
            returned_rows=base.returned_rows,
            duration_ms=duration_ms,
            code_function=base.code_function,
            code_filepath=base.code_filepath,
            code_lineno=base.code_lineno,
            route=base.route,
        )
        return facts, True
