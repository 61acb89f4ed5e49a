"""The span attributes of one statement, built fast: this runs for every statement the application executes.

The attributes are exactly those of :meth:`tenantwatch.facts.SpanFacts.to_attributes` for
:func:`tenantwatch.facts.facts_for_statement` (the contract the processor reads back), assembled from three parts
that change at different rates:

* what the statement's analysis says (tables, verdict, fingerprint, ...): computed once per analysis, which the
  analyzer caches by statement text;
* the tenant context (tenant, user, role, unscoped reason): computed once per context object, which stays the same
  for a whole request;
* the tenant values resolved from this execution's parameters, and the caller's code location: per statement.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.context import TenantContext, current_context
from tenantwatch.facts import facts_for_statement, resolve_keyed
from tenantwatch.instrumentation._code_location import find_caller
from tenantwatch.instrumentation._semconv import DbSemconv, db_semconv
from tenantwatch.sql.model import StatementAnalysis, ValueSource, resolve_values

__all__ = ["AttributeBuilder", "set_span_attributes"]

_CONTEXT_KEYS = (A.TENANT_ID, A.ENDUSER_ID, A.ENDUSER_ROLE, A.UNSCOPED_REASON, A.UNSCOPED_RULES)
_PER_EXECUTION_KEYS = (
    *_CONTEXT_KEYS,
    A.DB_TENANT_VALUES,
    A.DB_WRITTEN_TENANT_VALUES,
    A.DB_RETURNED_ROWS,
    A.CODE_FUNCTION,
    A.CODE_FILEPATH,
    A.CODE_LINENO,
)
_MAX_CACHED = 4096
"""Statement analyses whose attributes are kept; the analyzer's own cache is bounded the same way."""

_AttributeMap = dict[str, Any]

_OWN_PREFIX = "tenantwatch."
_REPLACEABLE = frozenset({A.DB_STATEMENT, A.DB_QUERY_TEXT})
"""Keys outside ``tenantwatch.*`` that tenantwatch replaces on purpose: the statement text, when it masks test data
in it. Every other key already on a span (set by OTel or another instrumentation) is left as it is."""


class AttributeBuilder:
    """Builds the attributes of a statement; caches the parts that do not depend on the execution. Thread-safe.

    Semantic-convention keys follow ``semconv`` (default: ``OTEL_SEMCONV_STABILITY_OPT_IN`` as read now).
    """

    def __init__(self, semconv: DbSemconv | None = None) -> None:
        self.semconv = semconv if semconv is not None else db_semconv()
        self._static: dict[int, tuple[StatementAnalysis, _AttributeMap]] = {}
        self._context: tuple[TenantContext | None, _AttributeMap] = (None, {})
        self._lock = threading.Lock()

    def build(
        self,
        analysis: StatementAnalysis,
        parameters: Any,
        executemany: bool,
        skip: int = 1,
        *,
        beyond: tuple[int, frozenset[int]] | None = None,
    ) -> _AttributeMap:
        """The attributes for one execution of an analyzed statement, called from a SQLAlchemy hook.

        ``skip`` is how many frames above the caller belong to the hook (the code location search starts above);
        ``beyond`` what the hook knows of the frames above it (see :func:`._code_location.find_caller`).
        """
        entry = self._static.get(id(analysis))
        if entry is None or entry[0] is not analysis:
            entry = self._remember(analysis)
        attributes = entry[1].copy()
        context = current_context()
        cached = self._context
        if cached[0] is not context:
            cached = (context, _context_attributes(context))
            self._context = cached
        if cached[1]:
            attributes.update(cached[1])
        sources = analysis.filter_values
        if sources:
            values = _single_value(sources, parameters) if not executemany else None
            if values is None:
                values = resolve_values(sources, parameters, executemany=executemany)
            if values:
                attributes[A.DB_TENANT_VALUES] = values
        sources = analysis.written_values
        if sources:
            values = _single_value(sources, parameters) if not executemany else None
            if values is None:
                values = resolve_values(sources, parameters, executemany=executemany)
            if values:
                attributes[A.DB_WRITTEN_TENANT_VALUES] = values
        if analysis.key_filter_values:  # a tenant hierarchy's finer keys
            for key, found in resolve_keyed(analysis.key_filter_values, parameters, executemany=executemany):
                attributes[A.db_key_values_attribute(key)] = found
        if analysis.key_written_values:
            for key, found in resolve_keyed(analysis.key_written_values, parameters, executemany=executemany):
                attributes[A.db_written_key_values_attribute(key)] = found
        where = find_caller(skip + 1, beyond=beyond)
        if where is not None:
            attributes[A.CODE_FUNCTION] = where.function
            attributes[A.CODE_FILEPATH] = where.filepath
            attributes[A.CODE_LINENO] = where.lineno
        return attributes

    def _remember(self, analysis: StatementAnalysis) -> tuple[StatementAnalysis, _AttributeMap]:
        static: _AttributeMap = facts_for_statement(analysis, None, TenantContext()).to_attributes()
        for key in _PER_EXECUTION_KEYS:
            static.pop(key, None)
        for key, _sources in analysis.key_filter_values:
            static.pop(A.db_key_values_attribute(key), None)
        for key, _sources in analysis.key_written_values:
            static.pop(A.db_written_key_values_attribute(key), None)
        self.semconv.rename(static)
        entry = (analysis, static)
        with self._lock:
            if len(self._static) >= _MAX_CACHED:
                self._static.clear()
            self._static[id(analysis)] = entry
        return entry


def _single_value(sources: tuple[ValueSource, ...], parameters: Any) -> tuple[str, ...] | None:
    """The common case of :func:`resolve_values`, without its generality: one parameter holding a str or an int.

    Returns ``None`` when the case is not that simple (the caller then uses ``resolve_values``).
    """
    if len(sources) != 1:
        return None
    source = sources[0]
    if source.kind != "param":
        return None
    key = source.key
    kind = type(parameters)
    if kind is dict:
        if key not in parameters:
            return None
        value = parameters[key]
    elif (kind is tuple or kind is list) and type(key) is int and 0 <= key < len(parameters):
        value = parameters[key]
    else:
        return None
    kind = type(value)
    if kind is str:
        return (value,)
    if kind is int:
        return (str(value),)
    return None


def _context_attributes(context: TenantContext) -> _AttributeMap:
    attributes = facts_for_statement(StatementAnalysis("UNKNOWN"), None, context).to_attributes()
    kept = {key: value for key, value in attributes.items() if key in _CONTEXT_KEYS}
    for name, value in context.keys:
        kept[A.tenant_key_attribute(name)] = value
    return kept


def _sdk_span_type() -> type | None:
    """The class of SDK spans, if they keep their attributes the way :func:`set_span_attributes` expects."""
    try:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider(resource=Resource.get_empty(), shutdown_on_exit=False)
        span: Any = provider.get_tracer(__name__).start_span("probe")
        bounded = span._attributes
        ok = (
            type(bounded) is BoundedAttributes
            and type(bounded._dict) is dict
            and hasattr(bounded._lock, "__enter__")
            and hasattr(span._lock, "__enter__")
            and span._end_time is None
            and bounded._immutable is False
            and hasattr(bounded, "maxlen")
            and hasattr(bounded, "max_value_len")
        )
        span.end()
        return type(span) if ok else None
    except Exception:
        return None


_SDK_SPAN = _sdk_span_type()


def set_span_attributes(span: Any, attributes: _AttributeMap) -> None:
    """``span.set_attributes(attributes)``, without the SDK re-validating values that are valid by construction.

    Every value tenantwatch builds is a ``str``, ``int``, ``float``, ``bool`` or a tuple of ``str``: exactly what the
    SDK would store after cleaning them. On an SDK span with no value-length limit and room under its attribute
    count limit, the attributes go straight into its attribute dict under the span's locks (what the SDK does after
    validation); this halves the cost of tenantwatch's per-statement work. Anything else takes the public API.

    An attribute another instrumentation already set on the span is never replaced (only ``tenantwatch.*`` keys and
    the statement text masked for test data are).
    """
    if type(span) is _SDK_SPAN:
        sdk_span: Any = span  # the SDK's private attribute store, checked by _sdk_span_type() at import
        bounded = sdk_span._attributes
        if bounded.max_value_len is None:
            # acquire/try/finally: what ``with`` does, at half its cost (every statement)
            span_lock, store_lock = sdk_span._lock, bounded._lock
            span_lock.acquire()
            try:
                if sdk_span._end_time is None and not bounded._immutable:
                    store_lock.acquire()
                    try:
                        store = bounded._dict
                        if not store.keys().isdisjoint(attributes):
                            attributes = _not_replacing(store, attributes)
                        if bounded.maxlen is None or len(store) + len(attributes) <= bounded.maxlen:
                            store.update(attributes)
                            return
                    finally:
                        store_lock.release()
            finally:
                span_lock.release()
    present = getattr(span, "attributes", None)
    if present and isinstance(present, Mapping) and not present.keys().isdisjoint(attributes):
        attributes = _not_replacing(present, attributes)
    span.set_attributes(attributes)


def _not_replacing(present: Mapping[str, Any], attributes: _AttributeMap) -> _AttributeMap:
    return {
        key: value
        for key, value in attributes.items()
        if key not in present or key.startswith(_OWN_PREFIX) or key in _REPLACEABLE
    }
