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
export the same data points.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Mapping
from time import time_ns
from typing import Any

from opentelemetry.context import get_current

__all__ = ["DirectRecorder"]

logger = logging.getLogger(__name__)

try:  # SDK internals: when they move, every record takes the public path
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.aggregation import (
        _ExplicitBucketHistogramAggregation,
        _SumAggregation,
    )
except ImportError:  # pragma: no cover - depends on the installed SDK
    _ExplicitBucketHistogramAggregation = None  # type: ignore[assignment,misc]
    _SumAggregation = None  # type: ignore[assignment,misc]
    _hash_attributes = None  # type: ignore[assignment]

_INF = float("inf")

_PUBLIC = ()
"""Cached for a label set that must take the public path."""


class DirectRecorder:
    """Records ``value`` with ``labels`` into ``instrument`` (an SDK ``Histogram`` or ``Counter``), directly into
    its aggregations once the label set has been seen (see the module docstring). ``record`` never raises."""

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
        )
        self._storages: object = None
        self._targets: dict[tuple[tuple[str, Any], ...], tuple[Any, ...]] = {}

    @property
    def direct(self) -> bool:
        """Whether this recorder can record directly at all (an SDK instrument of a known shape)."""
        return self._enabled

    def record(self, value: float, labels: Mapping[str, Any]) -> None:
        if not self._enabled:
            self._public(value, labels)
            return
        key = tuple(labels.items())
        storages = self._consumer._reader_storages  # type: ignore[union-attr]
        if storages is not self._storages:  # a reader was added or removed: find the aggregations again
            self._targets = {}
            self._storages = storages
        targets = self._targets.get(key)
        if targets is None:
            self._public(value, labels)  # the SDK creates the aggregations of this label set
            self._targets[key] = self._find(labels, storages)
            return
        if targets is _PUBLIC or not 0 <= value < _INF or not self._instrument._is_enabled():
            # (a negative, infinite or NaN value: the SDK warns and drops it, as it always did)
            self._public(value, labels)
            return
        context = get_current()
        exemplar_filter = self._consumer._sdk_config.exemplar_filter  # type: ignore[union-attr]
        now = time_ns()
        sample = exemplar_filter.should_sample(value, now, labels, context)
        for aggregation, bounds in targets:
            with aggregation._lock:
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
            if sample:
                aggregation._reservoir.offer(value, now, labels, context)

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
