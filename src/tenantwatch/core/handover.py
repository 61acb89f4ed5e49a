"""How a listener of findings (the ASGI middleware's response actions) reaches the span processor that judges its
requests' spans, without asking the SDK which processors a tracer provider holds (it has no public way to say).

Two ways, both public:

* explicitly: ``TenantwatchMiddleware(app, processor=...)``; :func:`tenantwatch.configure` (``app=`` or
  ``handle.add_middleware``) passes its own processor this way, and the subscription is bound at once;
* through the spans themselves: for every request the middleware *offers* its :class:`FindingSubscription` in the
  request's context (:func:`offered`), and a finding source that sees the request's server span start *claims* it
  (:func:`claim`, from ``SpanProcessor.on_start``). So the processor bound is the one registered (directly or inside
  any fan-out processor) on the tracer provider the middleware's server spans come from: the same one a walk of the
  SDK's processors would have found, found through what the SDK promises instead of its private attributes. Until
  the first request is traced, nothing is bound.

And one for tools that must hear every source of the process, however it was created (the pytest gate, while the
application under test calls :func:`tenantwatch.configure` itself): every source :func:`announce` s itself when it
is created, and :func:`watch` calls a watcher for each source announced before and after. Nothing is kept alive by
it (weak references) and it costs nothing per statement.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.core.guard import guard
from tenantwatch.facts import SpanFacts

__all__ = ["FindingListener", "FindingSource", "FindingSubscription", "announce", "claim", "offered", "watch"]

FindingListener = Callable[[Any, SpanFacts, ReadableSpan], None]
"""Called as ``listener(finding, facts, span)`` for every finding a source keeps (the finding is a ``Finding``)."""


class FindingSource(Protocol):
    """What judges spans and tells listeners its findings (``TenantwatchSpanProcessor``)."""

    def add_finding_listener(self, listener: FindingListener) -> None: ...


class FindingSubscription:
    """One listener, waiting for (or bound to) the finding source it hears from. Binds at most once; thread-safe."""

    __slots__ = ("_listener", "_lock", "_source")

    def __init__(self, listener: FindingListener, source: FindingSource | None = None) -> None:
        self._listener = listener
        self._lock = threading.Lock()
        self._source: FindingSource | None = None
        if source is not None:
            self.bind(source)

    @property
    def source(self) -> FindingSource | None:
        """The finding source the listener is registered with, once bound."""
        return self._source

    def bind(self, source: FindingSource) -> bool:
        """Register the listener with ``source`` unless already bound (to any source); True if this call bound it."""
        if self._source is not None:
            return False
        with self._lock:
            if self._source is not None:
                return False
            source.add_finding_listener(self._listener)
            self._source = source
            return True


_OFFERED: contextvars.ContextVar[FindingSubscription | None] = contextvars.ContextVar(
    "tenantwatch_finding_subscription", default=None
)


@contextmanager
def offered(subscription: FindingSubscription) -> Iterator[None]:
    """Offer ``subscription`` to the finding sources that see spans start in this context (while it is unbound)."""
    if subscription.source is not None:
        yield
        return
    token = _OFFERED.set(subscription)
    try:
        yield
    finally:
        _OFFERED.reset(token)


def claim(source: FindingSource) -> None:
    """Bind the subscription offered in this context, if any, to ``source``. Call from ``on_start`` of a server span;
    costs one context-variable lookup when nothing is offered."""
    subscription = _OFFERED.get()
    if subscription is not None and subscription.source is None:
        subscription.bind(source)


SourceWatcher = Callable[[FindingSource], None]
"""Called with each finding source of the process (see :func:`watch`)."""

_SOURCES: weakref.WeakSet[Any] = weakref.WeakSet()
_WATCHERS: list[SourceWatcher] = []
_REGISTRY_LOCK = threading.Lock()


def announce(source: FindingSource) -> None:
    """A finding source was created (call from its ``__init__``): the watchers hear of it at once."""
    with _REGISTRY_LOCK:
        _SOURCES.add(source)
        watchers = list(_WATCHERS)
    for watcher in watchers:
        with guard("a finding-source watcher"):  # a tool's bug never breaks the processor being created
            watcher(source)


def watch(watcher: SourceWatcher) -> Callable[[], None]:
    """Call ``watcher(source)`` for every finding source announced so far and from now on; returns the function that
    stops it (later sources are no longer passed; listeners the watcher added stay with their sources)."""
    with _REGISTRY_LOCK:
        _WATCHERS.append(watcher)
        existing = list(_SOURCES)
    for source in existing:
        with guard("a finding-source watcher"):
            watcher(source)

    def unwatch() -> None:
        with _REGISTRY_LOCK:
            if watcher in _WATCHERS:
                _WATCHERS.remove(watcher)

    return unwatch
