"""What every reader of stored traces shares: the problems it reports, its counters, and the span it rebuilds.

A reader turns stored OTLP data into :class:`~opentelemetry.sdk.trace.ReadableSpan` objects carrying what the
processor reads: name, kind, trace and span ids, parent, start and end times, status, attributes and the resource
(``service.name``). The live run's own judgement is left out: the ``tenantwatch.findings`` / ``tenantwatch.severity``
attributes are dropped (the processor sets them again) and ``tenantwatch.finding`` events are only counted
(:attr:`ReadStats.stored_findings`), never rebuilt, so a finding is counted once, by the rules of this scan.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tenantwatch import attributes as A

__all__ = ["MAX_PROBLEMS", "BadRecordError", "Problem", "ReadStats", "build_span", "scalar_or_text"]

MAX_PROBLEMS: Final = 10
"""Problems kept with their location per scan (the first ones); every further one is only counted."""

_DROPPED: Final = frozenset({A.FINDINGS, A.SEVERITY})
"""The live run's verdict on the span: this scan judges again and sets them on its own copy."""

_KINDS: Final = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
"""OTLP's ``Span.SpanKind`` numbers (0 unspecified, 1 internal, ...) to the SDK's enum."""
_KIND_NAMES: Final = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_STATUS: Final = {0: StatusCode.UNSET, 1: StatusCode.OK, 2: StatusCode.ERROR}
_STATUS_NAMES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


class BadRecordError(ValueError):
    """One stored record (a span, a line, a frame) that cannot be read; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read, and where it is (``file.json line 12``, ``jaeger page 3``)."""

    source: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.source} {self.where}: {self.message}"


@dataclass(slots=True)
class ReadStats:
    """Counters every reader updates as it goes (read by the progress line and the summary)."""

    spans: int = 0
    """Spans rebuilt and handed on."""
    records: int = 0
    """Lines, frames or pages read."""
    bytes_read: int = 0
    bytes_total: int | None = 0
    """Sum of the sizes of the inputs, ``None`` once one has no known size (stdin, Jaeger)."""
    stored_findings: int = 0
    """``tenantwatch.finding`` events on the stored spans (the live run's findings; not counted again)."""
    problem_count: int = 0
    problems: list[Problem] = field(default_factory=list)
    """The first :data:`MAX_PROBLEMS` problems."""
    empty_sources: list[str] = field(default_factory=list)
    """Sources that yielded no span at all."""
    failed: int = 0
    """Spans the processor could not judge (an internal error, logged at debug level)."""
    filtered_spans: int = 0
    """Spans read but left out: their trace matches no ``--attribute`` filter (Jaeger)."""
    outside_window: int = 0
    """Spans read but left out: their end time is outside ``--since``/``--until`` (files)."""

    def problem(self, source: str, where: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(source, where, message))


def scalar_or_text(value: Any) -> Any:
    """A decoded attribute value as the SDK accepts it: primitives and homogeneous tuples as they are, anything else
    (maps, mixed arrays) as its JSON text."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        items = tuple(value)
        kinds = {type(item) for item in items}
        if all(isinstance(item, str | bool | int | float) for item in items) and len(kinds) <= 1:
            return items
    return json.dumps(value, default=str, sort_keys=True)


def _hex_id(value: Any, digits: int, name: str, *, optional: bool = False) -> int | None:
    if value is None or value in {"", b""}:
        if optional:
            return None
        raise BadRecordError(f"{name} is missing")
    if isinstance(value, bytes):  # protobuf
        if len(value) * 2 != digits:
            raise BadRecordError(f"{name} has {len(value)} bytes, not {digits // 2}")
        number = int.from_bytes(value, "big")
    elif isinstance(value, str):
        if len(value) != digits:
            raise BadRecordError(f"{name} {value[:40]!r} is not {digits} hex digits")
        try:
            number = int(value, 16)
        except ValueError:
            raise BadRecordError(f"{name} {value[:40]!r} is not hexadecimal") from None
    else:
        raise BadRecordError(f"{name} must be a hex string, not {type(value).__name__}")
    if number == 0:
        if optional:
            return None
        raise BadRecordError(f"{name} is all zeros (invalid)")
    return number


def _nanos(value: Any, name: str) -> int:
    """int64 nanoseconds: OTLP/JSON writes them as strings, protobuf as ints."""
    if isinstance(value, bool):
        raise BadRecordError(f"{name} must be an integer, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    else:
        raise BadRecordError(f"{name} {str(value)[:40]!r} is not an integer of nanoseconds")
    if number <= 0 or number >= 1 << 63:
        raise BadRecordError(f"{name} {number} is out of range")
    return number


def _enum(value: Any, names: Mapping[str, int], name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        if value in names:
            return names[value]
        if value.isdigit():
            return int(value)
        raise BadRecordError(f"{name} {value[:40]!r} is not known")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise BadRecordError(f"{name} must be a number or a name, not {type(value).__name__}")


def build_span(
    *,
    name: Any,
    trace_id: Any,
    span_id: Any,
    parent_span_id: Any,
    kind: Any,
    start: Any,
    end: Any,
    attributes: Mapping[str, Any],
    status_code: Any,
    status_message: Any,
    resource: Resource,
    scope: InstrumentationScope | None,
    event_names: Sequence[str],
    stats: ReadStats,
) -> ReadableSpan:
    """One stored span as the processor reads it; :class:`BadRecordError` naming the first field that is wrong."""
    if not isinstance(name, str):
        raise BadRecordError(f"span name must be a string, not {type(name).__name__}")
    trace = _hex_id(trace_id, 32, "traceId")
    span = _hex_id(span_id, 16, "spanId")
    parent = _hex_id(parent_span_id, 16, "parentSpanId", optional=True)
    kind_number = _enum(kind, _KIND_NAMES, "kind")
    if kind_number not in _KINDS:
        raise BadRecordError(f"kind {kind_number} is not an OTLP span kind")
    start_ns, end_ns = _nanos(start, "startTimeUnixNano"), _nanos(end, "endTimeUnixNano")
    if end_ns < start_ns:
        raise BadRecordError(f"endTimeUnixNano {end_ns} is before startTimeUnixNano {start_ns}")
    code = _STATUS.get(_enum(status_code, _STATUS_NAMES, "status.code"), StatusCode.UNSET)
    message = status_message if isinstance(status_message, str) and status_message else None
    assert trace is not None and span is not None  # not optional: _hex_id raised otherwise
    context = SpanContext(trace, span, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    parent_context = SpanContext(trace, parent, is_remote=False) if parent is not None else None
    kept = {key: value for key, value in attributes.items() if key not in _DROPPED and value is not None}
    stats.stored_findings += sum(1 for event in event_names if event == A.FINDING_EVENT)
    return ReadableSpan(
        name=name,
        context=context,
        parent=parent_context,
        resource=resource,
        attributes=kept,
        kind=_KINDS[kind_number],
        status=Status(code, message if code is StatusCode.ERROR else None),
        start_time=start_ns,
        end_time=end_ns,
        instrumentation_scope=scope,
    )
