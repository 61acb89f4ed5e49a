"""The SDK's ``ConsoleSpanExporter`` output (``OTEL_TRACES_EXPORTER=console``) to spans.

The console exporter prints each span as its own pretty JSON object (``ReadableSpan.to_json``): ``name``,
``context`` (``trace_id`` / ``span_id`` as ``0x``-prefixed hex), ``kind`` (``SpanKind.CLIENT``), ``parent_id``,
``start_time`` / ``end_time`` (ISO 8601 UTC with microseconds), ``status`` (``status_code``), ``attributes`` and
``resource.attributes`` as plain JSON values, ``events`` with their names. That is everything the processor reads, so
scan reads it (times are microseconds: the last three digits of the nanoseconds are zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.tools.scan._records import BadRecordError, ReadStats, build_span, scalar_or_text

__all__ = ["is_console_span", "span_from_console"]

_KINDS: Final = {
    "SpanKind.INTERNAL": 1,
    "SpanKind.SERVER": 2,
    "SpanKind.CLIENT": 3,
    "SpanKind.PRODUCER": 4,
    "SpanKind.CONSUMER": 5,
}
_STATUS: Final = {"UNSET": 0, "OK": 1, "ERROR": 2}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def is_console_span(document: Mapping[str, Any]) -> bool:
    """Whether ``document`` has the shape of one ``ReadableSpan.to_json`` object."""
    return "context" in document and "name" in document and "kind" in document and "resourceSpans" not in document


def _hex(value: Any, name: str) -> Any:
    if isinstance(value, str) and value.startswith("0x"):
        return value[2:]
    if value is None:
        return None
    raise BadRecordError(f"{name} {str(value)[:40]!r} is not 0x-prefixed hex")


def _nanos(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise BadRecordError(f"{name} must be an ISO 8601 time, not {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRecordError(f"{name} {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _plain(values: Any, name: str) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise BadRecordError(f"{name} must be an object, not {type(values).__name__}")
    return {str(key): scalar_or_text(value) for key, value in values.items()}


def span_from_console(document: Mapping[str, Any], stats: ReadStats) -> ReadableSpan:
    """One console exporter span; :class:`BadRecordError` naming the first field that is wrong."""
    context = document.get("context")
    if not isinstance(context, dict):
        raise BadRecordError("context must be an object with trace_id and span_id")
    kind = document.get("kind")
    if kind not in _KINDS:
        raise BadRecordError(f"kind {str(kind)[:40]!r} is not a SpanKind")
    status = document.get("status") or {}
    if not isinstance(status, dict):
        raise BadRecordError("status must be an object")
    code = status.get("status_code", "UNSET")
    if code not in _STATUS:
        raise BadRecordError(f"status_code {str(code)[:40]!r} is not UNSET, OK or ERROR")
    resource = document.get("resource") or {}
    if not isinstance(resource, dict):
        raise BadRecordError("resource must be an object")
    events = document.get("events") or []
    names = [e.get("name") for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    return build_span(
        name=document.get("name"),
        trace_id=_hex(context.get("trace_id"), "context.trace_id"),
        span_id=_hex(context.get("span_id"), "context.span_id"),
        parent_span_id=_hex(document.get("parent_id"), "parent_id"),
        kind=_KINDS[kind],
        start=_nanos(document.get("start_time"), "start_time"),
        end=_nanos(document.get("end_time"), "end_time"),
        attributes=_plain(document.get("attributes"), "attributes"),
        status_code=_STATUS[code],
        status_message=status.get("description"),
        resource=Resource(_plain(resource.get("attributes"), "resource.attributes")),
        scope=None,
        event_names=[name for name in names if isinstance(name, str)],
        stats=stats,
    )
