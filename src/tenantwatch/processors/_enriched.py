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
from tenantwatch.core.findings import Finding, highest_severity
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
        super().__init__(
            name=original.name,
            context=original.context,
            parent=original.parent,
            resource=original.resource,
            attributes=attributes,
            events=events,
            links=original.links,
            kind=original.kind,
            status=original.status if status is None else status,
            start_time=original.start_time,
            end_time=original.end_time,
            instrumentation_scope=original.instrumentation_scope,
        )
        self._original_dropped = (original.dropped_attributes, original.dropped_events, original.dropped_links)

    @property
    def dropped_attributes(self) -> int:
        return self._original_dropped[0]

    @property
    def dropped_events(self) -> int:
        return self._original_dropped[1]

    @property
    def dropped_links(self) -> int:
        return self._original_dropped[2]


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
            if type(value) is str and len(value) > limit:
                attributes[key] = cap(value, limit)
    return Event(A.FINDING_EVENT, attributes=attributes, timestamp=timestamp)


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
    merged[A.FINDINGS] = tuple(dict.fromkeys(finding.rule for finding in findings))
    merged[A.SEVERITY] = highest_severity([finding.severity for finding in findings]) or findings[0].severity
    timestamp = span.end_time
    if limit is not None and extra_attributes:
        limit = None
    events = (*span.events, *(finding_event(finding, timestamp, limit) for finding in findings))
    copy = EnrichedSpan(span, attributes=merged, events=events)
    if limit is not None:
        copy.fit_to_export = True
    return copy
