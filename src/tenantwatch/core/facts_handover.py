"""The facts of a db span, handed from the instrumentation that wrote them to the processor that judges the span.

The SQLAlchemy instrumentation builds a statement's attributes from parts it caches (per statement analysis, per
tenant context); reading them all back with :meth:`SpanFacts.from_attributes` at ``on_end`` cost the processor more
than any other step of a clean db span. So when tenantwatch writes a span's attributes last (the write right before
it ends the span), it leaves a :class:`Handover` here, keyed by the span's id: those cached parts already read, how
many keys others had set before, and a snapshot of what the span holds after the write. The processor
:func:`take` s it at ``on_end`` and builds the facts with :meth:`SpanFacts.from_parts`, reading only the keys that
change per statement and the keys others set.

A hand-over is used only when it is still valid: the ended span's attribute store is the very dict it was taken from
and holds the same values (anything another instrumentation, a span processor's ``on_start`` or the application set
after tenantwatch's write shows as a difference); otherwise, and for every span without one (other
instrumentations, other processes, spans replayed by ``tenantwatch scan``), the processor reads the attributes as
before. Bounded: at most :data:`MAX_HANDOVERS` wait (spans that never reach a tenantwatch processor are dropped
when the map is full, and their facts read from their attributes if they ever do); nothing is handed over while no
tenantwatch processor exists in the process. Thread-safe (single dict operations; a lost hand-over only means a
fallback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantwatch.facts import FactParts, SpanFacts

__all__ = ["MAX_HANDOVERS", "Handover", "expect", "hand_over", "pending", "take", "verify"]

MAX_HANDOVERS = 4096
"""Hand-overs kept at most (spans ended but judged by no tenantwatch processor, spans that never end)."""

_handed: dict[int, Handover] = {}
_expected = [False]
"""Whether a tenantwatch span processor exists (set by :func:`expect`): before, nothing is handed over."""

verify = [False]
"""Tests set ``verify[0] = True``: :func:`take` then also reads the attributes and keeps the facts read that way
when they differ (recorded in :data:`mismatches`), so any difference between the two paths fails a test."""

mismatches: list[tuple[SpanFacts, SpanFacts]] = []
"""(handed over, read from the attributes) of every difference seen while :data:`verify` is on."""


class Handover:
    """What :meth:`SpanFacts.from_parts` needs for one span, and what says the span has not changed since."""

    __slots__ = ("foreign", "own", "parts", "prefix", "snapshot", "store")

    def __init__(  # noqa: PLR0917 - the fields, in from_parts's order
        self,
        store: dict[str, Any],
        own: Mapping[str, Any],
        parts: tuple[FactParts, ...],
        prefix: int,
        foreign: int,
        snapshot: tuple[Any, ...],
    ) -> None:
        self.store = store
        self.own = own
        self.parts = parts
        self.prefix = prefix
        self.foreign = foreign
        self.snapshot = snapshot


def expect() -> None:
    """A tenantwatch span processor exists: from now on the instrumentation hands facts over."""
    _expected[0] = True


def wanted() -> bool:
    """Whether handing over is worth doing (a tenantwatch span processor exists)."""
    return _expected[0]


def hand_over(span_id: int, handover: Handover) -> None:
    """Leave ``handover`` for the span ``span_id`` (call right after tenantwatch's last write to the span)."""
    handed = _handed
    if len(handed) >= MAX_HANDOVERS:
        handed.clear()  # those spans' facts are read from their attributes, if a processor ever sees them
    handed[span_id] = handover


def pending() -> int:
    """Hand-overs waiting for their span's ``on_end``."""
    return len(_handed)


def take(span_id: int, store: Mapping[str, Any], duration_ms: float | None) -> SpanFacts | None:
    """The facts handed over for span ``span_id`` whose ended attributes are ``store``, if still valid; ``None``:
    read them from the attributes."""
    handover = _handed.pop(span_id, None)
    if handover is None or handover.store is not store or len(store) != len(handover.snapshot):
        return None
    if handover.snapshot != tuple(store.values()):
        return None  # changed after tenantwatch's write: what the span holds now is what counts
    facts = SpanFacts.from_parts(
        store, handover.own, handover.parts, handover.prefix, handover.foreign, duration_ms=duration_ms
    )
    if verify[0]:
        read = SpanFacts.from_attributes(store, duration_ms=duration_ms)
        if read != facts:
            mismatches.append((facts, read))
            return read
    return facts
