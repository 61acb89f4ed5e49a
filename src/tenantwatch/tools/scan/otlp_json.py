"""OTLP/JSON trace documents (the file exporter's ``format: json``, Jaeger's ``/api/v3`` answers) to spans.

A document is an ``ExportTraceServiceRequest`` / ``TracesData`` as OTLP/JSON writes it: ``resourceSpans`` →
``scopeSpans`` → ``spans``, camelCase keys, hex trace and span ids, int64 values as strings, attribute values as
``{"stringValue": ...}`` / ``intValue`` / ``doubleValue`` / ``boolValue`` / ``arrayValue`` / ``kvlistValue`` /
``bytesValue``. Jaeger wraps it as ``{"result": {...}}``; both forms are read. A span that cannot be read is reported
(:class:`~._records.BadRecordError`) and the other spans of the document are still read.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from tenantwatch.tools.scan._records import BadRecordError, ReadStats, build_span, scalar_or_text

__all__ = ["MAX_DEPTH", "Report", "parse_document", "spans_from_document"]

Report = Callable[[str], None]
"""Called with a message for each part of a document that cannot be read."""

MAX_DEPTH: Final = 16
"""Nested attribute values (arrays, key-value lists) deeper than this are reported."""


def parse_document(data: bytes) -> Mapping[str, Any]:
    """One JSON document; :class:`BadRecordError` when it is not JSON or not an object."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadRecordError(f"not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise BadRecordError(f"a trace document must be a JSON object, not {type(document).__name__}")
    return document


def _any_value(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise BadRecordError("attribute value nested too deep")
    if not isinstance(value, dict):
        raise BadRecordError(f"attribute value must be an object, not {type(value).__name__}")
    if not value:
        return None
    (kind, inner), *rest = value.items()
    if rest:
        raise BadRecordError(f"attribute value has several kinds: {', '.join(value)}")
    if kind == "stringValue":
        if not isinstance(inner, str):
            raise BadRecordError("stringValue must be a string")
        return inner
    if kind == "boolValue":
        if not isinstance(inner, bool):
            raise BadRecordError("boolValue must be true or false")
        return inner
    if kind == "intValue":
        if isinstance(inner, bool) or not isinstance(inner, int | str):
            raise BadRecordError("intValue must be an integer (or its text)")
        try:
            return int(inner)
        except ValueError:
            raise BadRecordError(f"intValue {str(inner)[:40]!r} is not an integer") from None
    if kind == "doubleValue":
        if isinstance(inner, bool) or not isinstance(inner, int | float | str):
            raise BadRecordError("doubleValue must be a number")
        try:
            return float(inner)
        except ValueError:
            raise BadRecordError(f"doubleValue {str(inner)[:40]!r} is not a number") from None
    if kind == "arrayValue":
        values = inner.get("values", []) if isinstance(inner, dict) else None
        if not isinstance(values, list):
            raise BadRecordError("arrayValue.values must be a list")
        return [_any_value(item, depth + 1) for item in values]
    if kind == "kvlistValue":
        values = inner.get("values", []) if isinstance(inner, dict) else None
        if not isinstance(values, list):
            raise BadRecordError("kvlistValue.values must be a list")
        return {key: _any_value(item, depth + 1) for key, item in _pairs(values)}
    if kind == "bytesValue":
        if not isinstance(inner, str):
            raise BadRecordError("bytesValue must be base64 text")
        try:
            return base64.b64decode(inner, validate=True).hex()
        except ValueError:
            raise BadRecordError("bytesValue is not base64") from None
    raise BadRecordError(f"unknown attribute value kind {kind!r}")


def _pairs(items: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(items, list):
        raise BadRecordError(f"attributes must be a list, not {type(items).__name__}")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise BadRecordError("an attribute needs a string key")
        yield item["key"], item.get("value", {})


def _attributes(items: Any) -> dict[str, Any]:
    if items is None:
        return {}
    return {key: scalar_or_text(_any_value(value)) for key, value in _pairs(items)}


def _list(container: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRecordError(f"{where}{key} must be a list, not {type(value).__name__}")
    return value


def spans_from_document(
    document: Mapping[str, Any],
    stats: ReadStats,
    report: Report,
) -> Iterator[ReadableSpan]:
    """Every readable span of one OTLP/JSON document; ``report(message)`` for each part that is not readable."""
    if "result" in document and "resourceSpans" not in document:  # Jaeger's /api/v3 answer
        inner = document["result"]
        if not isinstance(inner, dict):
            raise BadRecordError("result must be an object")
        document = inner
    if "resourceSpans" not in document:
        raise BadRecordError("not an OTLP trace document (no resourceSpans)")
    for r_index, resource_spans in enumerate(_list(document, "resourceSpans", "")):
        where = f"resourceSpans[{r_index}]"
        try:
            if not isinstance(resource_spans, dict):
                raise BadRecordError("must be an object")
            resource_doc = resource_spans.get("resource") or {}
            if not isinstance(resource_doc, dict):
                raise BadRecordError("resource must be an object")
            resource = Resource(_attributes(resource_doc.get("attributes")))
            scopes = _list(resource_spans, "scopeSpans", "")
        except BadRecordError as exc:
            report(f"{where}: {exc}")
            continue
        for s_index, scope_spans in enumerate(scopes):
            swhere = f"{where}.scopeSpans[{s_index}]"
            try:
                if not isinstance(scope_spans, dict):
                    raise BadRecordError("must be an object")
                scope_doc = scope_spans.get("scope") or {}
                scope = None
                if isinstance(scope_doc, dict) and isinstance(scope_doc.get("name"), str):
                    version = scope_doc.get("version")
                    scope = InstrumentationScope(scope_doc["name"], version if isinstance(version, str) else None)
                spans = _list(scope_spans, "spans", "")
            except BadRecordError as exc:
                report(f"{swhere}: {exc}")
                continue
            for index, span in enumerate(spans):
                try:
                    yield _span(span, resource, scope, stats)
                except BadRecordError as exc:
                    report(f"{swhere}.spans[{index}]: {exc}")


def _span(span: Any, resource: Resource, scope: InstrumentationScope | None, stats: ReadStats) -> ReadableSpan:
    if not isinstance(span, dict):
        raise BadRecordError(f"a span must be an object, not {type(span).__name__}")
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise BadRecordError("status must be an object")
    events = span.get("events") or []
    names = [e.get("name") for e in events if isinstance(e, dict)] if isinstance(events, list) else []
    return build_span(
        name=span.get("name"),
        trace_id=span.get("traceId"),
        span_id=span.get("spanId"),
        parent_span_id=span.get("parentSpanId"),
        kind=span.get("kind"),
        start=span.get("startTimeUnixNano"),
        end=span.get("endTimeUnixNano"),
        attributes=_attributes(span.get("attributes")),
        status_code=status.get("code"),
        status_message=status.get("message"),
        resource=resource,
        scope=scope,
        event_names=[name for name in names if isinstance(name, str)],
        stats=stats,
    )
