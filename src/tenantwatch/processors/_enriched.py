"""The enriched copy of a db span: the original plus its findings.

A span processor cannot change a span at ``on_end`` (its attributes are frozen by then, SDK 1.45), so the processor
forwards a new :class:`ReadableSpan` instead: same name, kind, context, parent, resource, scope, links, status and
times; the original attributes plus ``tenantwatch.findings`` and ``tenantwatch.severity`` (and, for spans the
processor analyzed itself, the facts it found); the original events plus one ``tenantwatch.finding`` event per finding.
Dropped-attribute/event/link counts of the original are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from tenantwatch import attributes as A
from tenantwatch.core.findings import Finding
from tenantwatch.redaction import cap

__all__ = ["EnrichedSpan", "enriched_copy", "finding_event"]


class EnrichedSpan(ReadableSpan):
    """A finished span rebuilt with extra attributes and events; reports the original's dropped counts."""

    fit_to_export: bool = False
    """True when it was built from a span already fit to leave the process (:mod:`._outgoing`) with capped finding
    strings: the processor forwards it without a second pass over its attributes and events."""

    def __init__(
        self,
        original: ReadableSpan,
        *,
        attributes: Mapping[str, AttributeValue],
        events: Sequence[Event],
        status: Status | None = None,
    ) -> None:
        try:  # the fields ReadableSpan.__init__ sets, read straight from the original's (no properties, no copies)
            self._name = original._name
            self._context = original._context
            self._kind = original._kind
            self._instrumentation_info = None
            self._instrumentation_scope = original._instrumentation_scope
            self._parent = original._parent
            self._start_time = original._start_time
            self._end_time = original._end_time
            self._links = original._links
            self._resource = original._resource
            self._status = original._status if status is None else status
        except AttributeError:  # another ReadableSpan implementation: its public surface
            super().__init__(
                name=original.name,
                context=original.context,
                parent=original.parent,
                resource=original.resource,
                links=original.links,
                kind=original.kind,
                status=original.status if status is None else status,
                start_time=original.start_time,
                end_time=original.end_time,
                instrumentation_scope=original.instrumentation_scope,
            )
        self._attributes = attributes
        self._events = events
        self._original = original
        """Its dropped counts are the copy's (read when an exporter asks)."""

    @property
    def dropped_attributes(self) -> int:
        return self._original.dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._original.dropped_events

    @property
    def dropped_links(self) -> int:
        return self._original.dropped_links


def finding_event(finding: Finding, timestamp: int | None, limit: int | None = None) -> Event:
    """The ``tenantwatch.finding`` span event for one finding; ``limit``: cap its strings at that length (as
    :mod:`._outgoing` would)."""
    attributes: dict[str, AttributeValue] = {
        A.RULE: finding.rule,
        A.SEVERITY: finding.severity,
        A.MESSAGE: finding.message,
        A.FINGERPRINT: finding.fingerprint,
    }
    if finding.table is not None:
        attributes[A.FINDING_TABLE] = finding.table
    if finding.suggestion is not None:
        attributes[A.FINDING_SUGGESTION] = finding.suggestion
    if finding.tenant_key is not None:
        attributes[A.FINDING_TENANT_KEY] = finding.tenant_key
    if limit is not None:
        for key, value in attributes.items():
            if len(value) > limit:  # type: ignore[arg-type]  # every value here is a string
                attributes[key] = cap(value, limit)  # type: ignore[arg-type]
    return Event(A.FINDING_EVENT, attributes=attributes, timestamp=timestamp)


_RANK = {severity: rank for rank, severity in enumerate(A.SEVERITIES)}


def _highest(findings: Sequence[Finding]) -> str:
    """The highest severity among ``findings`` (the first finding's when none is a known severity)."""
    best, best_rank = findings[0].severity, _RANK.get(findings[0].severity, -1)
    for finding in findings:
        rank = _RANK.get(finding.severity, -1)
        if rank > best_rank:
            best, best_rank = finding.severity, rank
    return best


def enriched_copy(
    span: ReadableSpan,
    findings: Sequence[Finding],
    *,
    attributes: Mapping[str, AttributeValue],
    extra_attributes: Mapping[str, AttributeValue] | None = None,
    limit: int | None = None,
) -> EnrichedSpan:
    """``span`` with ``findings`` on it. ``attributes`` are the span's own; ``extra_attributes`` are added where the
    span has no value of its own (facts the processor worked out for a span from another instrumentation).

    ``limit``: ``span`` is already fit to leave the process (what :func:`._outgoing.outgoing` returned) and the
    finding strings are capped at ``limit`` here, so the copy is marked :attr:`EnrichedSpan.fit_to_export`. Only
    without ``extra_attributes`` (those have not been through :mod:`._outgoing`)."""
    merged: dict[str, AttributeValue] = dict(attributes)
    if extra_attributes:
        for key, value in extra_attributes.items():
            merged.setdefault(key, value)
    rules: list[str] = []
    for finding in findings:
        if finding.rule not in rules:
            rules.append(finding.rule)
    merged[A.FINDINGS] = tuple(rules)
    merged[A.SEVERITY] = _highest(findings)
    timestamp = span.end_time
    if limit is not None and extra_attributes:
        limit = None
    events = (*span.events, *(finding_event(finding, timestamp, limit) for finding in findings))
    copy = EnrichedSpan(span, attributes=merged, events=events)
    if limit is not None:
        copy.fit_to_export = True
    return copy
