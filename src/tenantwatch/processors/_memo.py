"""Verdicts remembered: a db span that repeats one judged before is not read back and judged again.

A service runs the same few hundred statements over and over, from the same call sites, for the same tenant and user
within a request, mostly returning the same number of rows: their db spans carry exactly the same attributes. The
facts read back from a span are a function of its attributes (and of the declared tenant hierarchy), the processor
adds the request tenant, and every statement rule except the measured ones (:attr:`RuleMeta.measured
<tenantwatch.core.rule.RuleMeta.measured>`: the duration, which no attribute carries) is a pure function of (facts,
settings). So for a span whose attributes and request tenant equal those of a span judged before, the processor
takes the remembered facts with this span's duration (:func:`~tenantwatch.facts.with_duration`) and the findings
those rules gave then (:class:`~tenantwatch.core.findings.Finding` is immutable), and runs only the measured rules;
whether the attributes are fit to export as they are (:func:`~tenantwatch.processors._outgoing.attributes_fit`) is
remembered with them. Everything else runs as for any span: metrics, windowed detectors, suppressions, finding
counts, logs (through the cooldown), listeners, the enriched copy, events and status made fit to export.

The key is the span's attribute items in their order (the instrumentation sets them in one order per call site),
without the fetch duration the instrumentation sets last (it changes every time and is no fact) and with the request
tenant. A span with any other differing value is judged in full; one with an unhashable value is never remembered.
Bounded: at most ``size`` entries, all forgotten when full (no eviction order to keep on the hot path).

Where nothing repeats (every span another tenant, user or call site), building and storing keys is pure cost (about
15k instructions per span): after every :data:`PROBE` lookups the memo checks its hit share, and below
:data:`MIN_HIT_SHARE` it forgets everything and steps aside for the next :data:`PAUSE` spans (no key, no lookup), then
tries again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.context import tenant_hierarchy
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts

__all__ = ["DEFAULT_SIZE", "Remembered", "VerdictMemo"]

Remembered = tuple[SpanFacts, bool, tuple[Finding, ...]]
"""The facts of a span, whether its attributes are fit to export, and the findings of its unmeasured rules."""

DEFAULT_SIZE = 2048
"""Remembered spans per processor: about 2 KiB each (the key and facts keep the span's attribute values alive), so at
most about 4 MiB."""

PROBE = 1024
"""Lookups between two checks of the memo's usefulness."""
MIN_HIT_SHARE = 0.125
"""The share of lookups that must hit for the memo to stay on."""
PAUSE = 16_384
"""Spans judged without the memo after a check it failed."""

_VOLATILE_LAST = A.DB_FETCH_DURATION
"""The attribute the instrumentation sets last on every row-returning statement, different each time, read by no
rule and not a fact: left out of the key when it is the last item."""


class VerdictMemo:
    """Facts and unmeasured findings of db spans by their attributes and request tenant (see the module docstring).
    Thread-safe: dict operations only, under the GIL; a lost race costs one more full judgement."""

    __slots__ = ("_entries", "_hierarchy", "_paused", "_probe_hits", "_probed", "hits", "misses", "pauses", "size")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._entries: dict[Any, Remembered] = {}
        self._hierarchy = tenant_hierarchy()
        self.hits = 0
        """Spans whose remembered facts were used (for benchmarks and tests)."""
        self.misses = 0
        """Spans judged in full that could have been remembered (key built, not found)."""
        self.pauses = 0
        """Times the memo stepped aside because too few lookups hit."""
        self._paused = 0
        """Spans still to judge without the memo."""
        self._probed = 0
        self._probe_hits = 0

    def key(self, attributes: Mapping[str, Any], request_tenant: str | None) -> Any:
        """The key of a span: its attribute items, without a trailing fetch duration, and the request tenant;
        ``None`` while the memo steps aside."""
        if self._paused:
            self._paused -= 1
            return None
        items = tuple(attributes.items())
        if items and items[-1][0] == _VOLATILE_LAST:
            items = items[:-1]
        return (request_tenant, items)

    def get(self, key: Any) -> Remembered | None:
        """What was remembered for ``key`` (the facts' ``duration_ms`` is the first span's), or ``None``."""
        if key is None:
            return None
        if tenant_hierarchy() != self._hierarchy:  # set_tenant_hierarchy() changed how facts are read back
            self._forget()
            return None
        try:
            found = self._entries.get(key)
        except TypeError:  # an unhashable attribute value (not from the SDK): never remembered
            return None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
            self._probe_hits += 1
        self._probed += 1
        if self._probed >= PROBE:
            if self._probe_hits < MIN_HIT_SHARE * self._probed:
                self._paused = PAUSE
                self.pauses += 1
                self._entries.clear()
            self._probed = self._probe_hits = 0
        return found

    def put(self, key: Any, facts: SpanFacts, fit: bool, findings: tuple[Finding, ...] = ()) -> None:
        """Remember a span judged in full: its facts, whether its attributes are fit to export, and the findings of
        its unmeasured rules. ``facts`` must not change afterwards (the processor hands them on as they are)."""
        if key is None or self._paused:
            return
        if tenant_hierarchy() != self._hierarchy:
            self._forget()
            return
        entries = self._entries
        if len(entries) >= self.size:
            entries.clear()
        with contextlib.suppress(TypeError):  # unhashable: get() never finds it either
            entries[key] = (facts, fit, findings)

    def _forget(self) -> None:
        self._entries.clear()
        self._hierarchy = tenant_hierarchy()

    def __len__(self) -> int:
        return len(self._entries)
