"""The last step before a span leaves the processor: nothing private, nothing unbounded.

:func:`outgoing` returns the span to forward: the span itself when it is clean (the common case, one pass over its
attributes), else an :class:`~tenantwatch.processors._enriched.EnrichedSpan` copy in which

* every string (span attributes, event attributes, the status description) is capped at
  ``Settings.max_string_length`` with a ``…[cut N chars]`` marker;
* the statement of every db span (``db.statement`` / ``db.query.text``) has its literals masked
  (``Settings.mask_statements``, on by default): the span itself keeps the text OpenTelemetry's instrumentation set
  on it, only what leaves the process is masked;
* database errors lose the values they quote (:func:`tenantwatch.redaction.scrub_db_error`): in the status
  description and in ``exception`` events (``exception.message``, ``exception.stacktrace``) of db spans, and of any
  other span whose exception text carries a database error (a request span that recorded a SQLAlchemy
  ``IntegrityError`` with its ``[parameters: …]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status
from opentelemetry.util.types import AttributeValue

from tenantwatch import attributes as A
from tenantwatch.processors._enriched import EnrichedSpan
from tenantwatch.redaction import cap, cap_attributes, looks_like_db_error, mask_statement, scrub_db_error

__all__ = ["attributes_fit", "bare", "outgoing"]

_EXCEPTION_EVENT = "exception"
_EXCEPTION_TEXT = ("exception.message", "exception.stacktrace")
_STATEMENT_KEYS = (A.DB_STATEMENT, A.DB_QUERY_TEXT)


def _scrub(text: str, is_db: bool, limit: int) -> str:
    if is_db or looks_like_db_error(text):
        text = scrub_db_error(text)
    return cap(text, limit)


def _event(event: Event, is_db: bool, limit: int) -> Event | None:
    """The event cleaned, or ``None`` when it is clean already."""
    attributes: Mapping[str, AttributeValue] = event.attributes or {}
    changed: dict[str, AttributeValue] | None = None
    if event.name == _EXCEPTION_EVENT:
        for key in _EXCEPTION_TEXT:
            value = attributes.get(key)
            if isinstance(value, str):
                clean = _scrub(value, is_db, limit)
                if clean != value:
                    changed = dict(attributes) if changed is None else changed
                    changed[key] = clean
    current = changed if changed is not None else attributes
    if not _fits(current, limit):  # the plain loop first: most events (the findings' own) fit
        capped = cap_attributes(current, limit)
        if capped is not None:
            changed = capped
    if changed is None:
        return None
    return Event(event.name, attributes=changed, timestamp=event.timestamp)


def _fits(attributes: Mapping[str, Any], limit: int) -> bool:
    """Whether every string in ``attributes`` is at most ``limit`` long (the hot path: plain loops, no calls)."""
    for value in attributes.values():
        if type(value) is str:
            if len(value) > limit:
                return False
        elif type(value) is tuple or type(value) is list:
            for item in value:
                if type(item) is str and len(item) > limit:
                    return False
    return True


def _has_events(span: ReadableSpan) -> bool:
    """Whether the span has events, without the copy ``ReadableSpan.events`` makes."""
    raw = getattr(span, "_events", None)
    try:
        return len(raw) > 0 if raw is not None else bool(span.events)
    except TypeError:
        return bool(span.events)


def bare(span: ReadableSpan) -> bool:
    """Whether the span has neither events nor a status description: then only its attributes can need cleaning."""
    return not _has_events(span) and not span.status.description


def _has_literal_statement(attributes: Mapping[str, Any]) -> bool:
    """Whether a statement attribute may hold a literal or a comment (a quote, a digit, a comment start): most
    SQLAlchemy statements are parameterized and need no copy."""
    for key in _STATEMENT_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and mask_statement(value) != value:
            return True
    return False


def attributes_fit(attributes: Mapping[str, Any], limit: int, mask: bool = True) -> bool:
    """Whether a span's attributes can leave as they are: no string longer than ``limit``, no db statement with a
    literal to mask (``mask``)."""
    mask = mask and (A.DB_SYSTEM_NAME in attributes or A.DB_SYSTEM in attributes)
    return not (mask and _has_literal_statement(attributes)) and _fits(attributes, limit)


def outgoing(
    span: ReadableSpan, attributes: Mapping[str, Any], limit: int, mask: bool = True, *, fit: bool | None = None
) -> ReadableSpan:
    """``span`` fit to leave the process (see the module docstring); ``attributes`` are its own; ``mask``: mask the
    literals of db statements; ``fit``: :func:`attributes_fit` of these attributes when the caller knows it."""
    is_db = A.DB_SYSTEM_NAME in attributes or A.DB_SYSTEM in attributes
    mask = mask and is_db
    if (
        (fit if fit is not None else attributes_fit(attributes, limit, mask))
        and not _has_events(span)
        and not (span.status.description and (is_db or looks_like_db_error(span.status.description)))
        and not (span.status.description and len(span.status.description) > limit)
    ):
        return span  # the common case, decided without a copy
    new_attributes: dict[str, AttributeValue] | None = None
    if mask:
        for key in _STATEMENT_KEYS:
            value = attributes.get(key)
            if isinstance(value, str):
                masked = mask_statement(value)
                if masked != value:
                    new_attributes = dict(attributes) if new_attributes is None else new_attributes
                    new_attributes[key] = masked
    current = new_attributes if new_attributes is not None else attributes
    if not _fits(current, limit):
        new_attributes = cap_attributes(current, limit)

    status: Status | None = None
    description = span.status.description
    if description:
        clean = _scrub(description, is_db, limit)
        if clean != description:
            status = Status(span.status.status_code, clean)

    events = span.events
    new_events: list[Event] | None = None
    for index, event in enumerate(events):
        clean_event = _event(event, is_db, limit)
        if clean_event is not None:
            new_events = list(events) if new_events is None else new_events
            new_events[index] = clean_event

    if new_attributes is None and status is None and new_events is None:
        return span
    return EnrichedSpan(
        span,
        attributes=new_attributes if new_attributes is not None else attributes,
        events=new_events if new_events is not None else events,
        status=status,
    )
