"""Recording into the OpenTelemetry SDK's aggregations directly, for the per-statement and per-request instruments.

A synchronous ``Histogram.record`` / ``Counter.add`` of SDK 1.45 costs 10-15 µs: it builds a ``Measurement``,
cleans and copies its attributes, and hashes them (sorted) once per view to find the aggregation, for every call.
The processor records two histograms per db span (the ASGI middleware a counter and a histogram per request) with
the same few label values over and over, so
:class:`DirectRecorder` does that lookup once per label set: the first measurement of a label set goes through the
public API (which creates the SDK's aggregations, in every reader and view, exactly as it always did); then the
recorder finds those aggregations and updates them itself, the way their own ``aggregate`` does (bucket count, sum,
min, max under the aggregation's lock; exemplars offered through the same exemplar filter and reservoir). Nothing
about the exported metric changes: same name, unit, description, attributes, bucket boundaries, temporality,
exemplars; the SDK still collects, resets and exports it.

This reads SDK internals, so it is strictly opportunistic: a label set is recorded directly only when every
aggregation it feeds is one this module knows (an explicit-bucket histogram or a sum, under a view that keeps every
attribute), the instrument is enabled and no reader was added or removed since (then the lookup is redone).
Anything else (another SDK version, a view that drops attributes or changes the aggregation, a no-op provider) goes
through the public API, call by call, as before. ``tests/processors/test_hot_path.py`` holds that both paths
export the same data points and exemplars.

A caller that keeps its label sets binds each one once (:meth:`DirectRecorder.bind`): a record is then one call,
with the aggregations, their bucket bounds, the exemplar filter and the way to read the current context resolved
when the label set was first seen. Exemplar work is skipped when the filter cannot sample: ``always_off``, or the
trace-based default with no span in the current context (what ``get_current_span`` would turn into
``INVALID_SPAN``); any other filter is asked on every record, as the SDK asks it.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import get_current
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

__all__ = ["DirectRecorder"]

logger = logging.getLogger(__name__)

try:  # SDK internals: when they move, every record takes the public path
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _ExplicitBucketHistogramAggregation,
        _SumAggregation,
    )
    from opentelemetry.sdk.metrics._internal.exemplar.exemplar_filter import (
        AlwaysOffExemplarFilter,
        TraceBasedExemplarFilter,
    )
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - depends on the installed SDK
    _ExplicitBucketHistogramAggregation = None  # type: ignore[assignment,misc]
    _SumAggregation = None  # type: ignore[assignment,misc]
    _hash_attributes = None  # type: ignore[assignment]
    AlwaysOffExemplarFilter = None  # type: ignore[assignment,misc]
    TraceBasedExemplarFilter = None  # type: ignore[assignment,misc]
    _SPAN_KEY = None  # type: ignore[assignment]

_INF = float("inf")

_PUBLIC = ()
"""The targets of a label set that must take the public path."""

_SAMPLE_ASK, _SAMPLE_NEVER, _SAMPLE_TRACE = object(), object(), object()
"""How a record decides on exemplars: ask the filter; never (``always_off``); trace-based (no current span: no)."""

_UNSEEN = object()
"""The reader storages a fresh label set was resolved against: none yet, so its first record takes the public path."""

_REMEMBERED = 4096
"""Label sets :meth:`DirectRecorder.record` keeps a bound recorder for; cleared when full (bounded memory)."""


class DirectRecorder:
    """Records ``value`` with ``labels`` into ``instrument`` (an SDK ``Histogram`` or ``Counter``), directly into
    its aggregations once the label set has been seen (see the module docstring). Recording never raises.

    :meth:`bind` gives the recorder of one label set (what a caller that keeps its label sets uses: a record is
    then one call, no label tuple and no lookup); :meth:`record` finds that bound recorder by the labels' items."""

    def __init__(self, instrument: Any) -> None:
        self._instrument = instrument
        self._public = instrument.record if hasattr(instrument, "record") else instrument.add
        consumer = getattr(instrument, "_measurement_consumer", None)
        self._consumer = consumer
        self._enabled = (
            _ExplicitBucketHistogramAggregation is not None
            and consumer is not None
            and hasattr(consumer, "_reader_storages")
            and hasattr(consumer, "_sdk_config")
            and hasattr(instrument, "_meter_config")
        )
        self._bound: dict[tuple[tuple[str, Any], ...], Callable[[float], None]] = {}

    @property
    def direct(self) -> bool:
        """Whether this recorder can record directly at all (an SDK instrument of a known shape)."""
        return self._enabled

    def bind(self, labels: Mapping[str, Any]) -> Callable[[float], None]:
        """The recorder of ``labels`` (which the caller must not change afterwards): its first record goes through
        the public API, later ones into the aggregations found then; through the public API every time when this
        instrument or one of its aggregations is not one this module knows."""
        if not self._enabled:
            public = self._public

            def record_public(value: float) -> None:
                public(value, labels)

            return record_public
        return _Bound(self, labels).record

    def record(self, value: float, labels: Mapping[str, Any]) -> None:
        """``bind(labels)(value)``, with the bound recorder of each label set remembered."""
        key = tuple(labels.items())
        bound = self._bound.get(key)
        if bound is None:
            if len(self._bound) >= _REMEMBERED:
                self._bound.clear()
            bound = self._bound[key] = self.bind(dict(labels))
        bound(value)

    add = record
    """``Counter.add`` spelling of :meth:`record`."""

    def _find(self, labels: Mapping[str, Any], storages: Any) -> tuple[Any, ...]:
        """The SDK aggregations ``labels`` feeds, each with its bucket bounds (``None`` for a sum); ``_PUBLIC`` when
        any of them is not one this module updates the way the SDK does."""
        try:
            key = _hash_attributes(dict(labels))
            found: list[tuple[Any, tuple[float, ...] | None]] = []
            for storage in storages.values():
                matches = storage._instrument_view_instrument_matches.get(self._instrument)
                if not matches:
                    return _PUBLIC
                for match in matches:
                    if match._view._attribute_keys is not None:
                        return _PUBLIC
                    aggregation = match._attributes_aggregation.get(key)
                    if type(aggregation) is _ExplicitBucketHistogramAggregation:
                        found.append((aggregation, tuple(aggregation._boundaries)))
                    elif type(aggregation) is _SumAggregation:
                        found.append((aggregation, None))
                    else:
                        return _PUBLIC
            return tuple(found) if found else _PUBLIC
        except Exception:  # unknown SDK shape: record through the public API
            logger.debug("tenantwatch: recording %s through the public API", self._instrument.name, exc_info=True)
            return _PUBLIC


class _Bound:
    """The recorder of one label set of one instrument: what it resolved once (aggregations, bucket bounds, the
    exemplar filter and how to read the current context), checked against the reader storages on every record."""

    __slots__ = (
        "_context",
        "_filter",
        "_instrument",
        "_labels",
        "_owner",
        "_resolved",
        "_sampling",
        "_storages",
        "_targets",
    )

    def __init__(self, owner: DirectRecorder, labels: Mapping[str, Any]) -> None:
        self._owner = owner
        self._instrument = owner._instrument
        self._labels = labels
        self._storages: object = _UNSEEN
        """The reader storages ``_targets`` is good for; ``_UNSEEN`` while the record must take the public path."""
        self._resolved: object = _UNSEEN
        """The reader storages last resolved against (``_targets`` may be ``_PUBLIC`` for them)."""
        self._targets: tuple[Any, ...] = _PUBLIC
        self._filter: Any = None
        self._sampling = _SAMPLE_ASK
        self._context: Callable[[], Any] = get_current

    def record(self, value: float) -> None:
        if self._owner._consumer._reader_storages is not self._storages or not 0 <= value < _INF:  # type: ignore[union-attr]
            self._slow(value)
            return
        config = self._instrument._meter_config
        if config is not None and not config.is_enabled:
            self._owner._public(value, self._labels)
            return
        sampling = self._sampling
        if sampling is _SAMPLE_NEVER:
            sample = False
        else:
            context = self._context()
            if sampling is _SAMPLE_TRACE and _SPAN_KEY not in context:
                sample = False  # no current span: get_current_span() gives INVALID_SPAN, the filter says no
            else:
                now = time_ns()
                sample = self._filter.should_sample(value, now, self._labels, context)
        for aggregation, bounds in self._targets:
            lock = aggregation._lock
            lock.acquire()  # acquire/try/finally: what ``with`` does, at half its cost (two records per statement)
            try:
                if bounds is None:  # a sum
                    current = aggregation._value
                    aggregation._value = value if current is None else current + value
                else:
                    counts = aggregation._value
                    if counts is None:
                        counts = aggregation._value = [0] * (len(bounds) + 1)
                    aggregation._sum += value
                    if aggregation._record_min_max:
                        if value < aggregation._min:  # noqa: PLR1730 - hot path: cheaper than a min() call
                            aggregation._min = value
                        if value > aggregation._max:  # noqa: PLR1730 - hot path: cheaper than a max() call
                            aggregation._max = value
                    counts[bisect_left(bounds, value)] += 1
            finally:
                lock.release()
            if sample:
                aggregation._reservoir.offer(value, now, self._labels, context)

    def _slow(self, value: float) -> None:
        """The public path, and the lookup of this label set's aggregations after its first record (or after a
        reader was added or removed)."""
        owner = self._owner
        owner._public(value, self._labels)  # (a negative, infinite or NaN value: the SDK warns and drops it)
        storages = owner._consumer._reader_storages  # type: ignore[union-attr]
        if storages is self._resolved:
            return
        self._resolved = storages
        self._targets = targets = owner._find(self._labels, storages)
        self._storages = storages if targets is not _PUBLIC else _UNSEEN
        self._filter, self._sampling, self._context = _sampling_of(owner._consumer)


def _sampling_of(consumer: Any) -> tuple[Any, object, Callable[[], Any]]:
    """The provider's exemplar filter, what can be decided without asking it, and the cheapest way to read the
    current context (the runtime context's context variable itself when it is the default one)."""
    exemplar_filter = consumer._sdk_config.exemplar_filter
    kind = type(exemplar_filter)
    sampling = (
        _SAMPLE_NEVER
        if kind is AlwaysOffExemplarFilter
        else _SAMPLE_TRACE
        if kind is TraceBasedExemplarFilter
        else _SAMPLE_ASK
    )
    context: Callable[[], Any] = get_current
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is ContextVarsRuntimeContext:
        context = runtime._current_context.get  # what get_current() returns, two calls fewer
    return exemplar_filter, sampling, context
