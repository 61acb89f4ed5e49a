"""OTLP protobuf trace records (the file exporter's ``format: proto``) to spans.

Each record is one ``TracesData`` message (wire-identical to ``ExportTraceServiceRequest``), decoded with the
OpenTelemetry protobuf bindings the OTLP exporters already depend on. A span that cannot be read is reported and
the other spans of the record are still read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tenantwatch.tools.scan._records import BadRecordError, ReadStats, build_span, scalar_or_text

__all__ = ["parse_record", "spans_from_record"]

_MAX_DEPTH: Final = 16


def parse_record(data: bytes) -> TracesData:
    """One protobuf record; :class:`BadRecordError` when it does not decode as ``TracesData``."""
    message = TracesData()
    try:
        message.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise BadRecordError(f"not an OTLP protobuf trace record ({exc})") from None
    return message


def _value(value: AnyValue, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise BadRecordError("attribute value nested too deep")
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: _value(item.value, depth + 1) for item in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attributes(items: Any) -> dict[str, Any]:
    pairs: list[KeyValue] = list(items)
    return {item.key: scalar_or_text(_value(item.value)) for item in pairs}


def spans_from_record(message: TracesData, stats: ReadStats, report: Callable[[str], None]) -> Iterator[ReadableSpan]:
    """Every readable span of one record; ``report(message)`` for each span that is not readable."""
    for r_index, resource_spans in enumerate(message.resource_spans):
        resource = Resource(_attributes(resource_spans.resource.attributes))
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            scope = None
            if scope_spans.scope.name:
                scope = InstrumentationScope(scope_spans.scope.name, scope_spans.scope.version or None)
            for index, span in enumerate(scope_spans.spans):
                try:
                    yield build_span(
                        name=span.name,
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                        parent_span_id=span.parent_span_id,
                        kind=span.kind,
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        status_code=span.status.code,
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope,
                        event_names=[event.name for event in span.events],
                        stats=stats,
                    )
                except BadRecordError as exc:
                    report(f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{index}]: {exc}")
