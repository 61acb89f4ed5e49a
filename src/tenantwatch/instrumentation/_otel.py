"""opentelemetry-instrumentation-sqlalchemy as tenantwatch relies on it: every engine traced, whatever the import order.

OTel traces an engine by attaching an ``EngineTracer`` (instance-level event listeners) to it. It does so for the
engines passed to ``instrument(engine=, engines=)`` and, through its patched ``sqlalchemy.create_engine`` /
``create_async_engine``, for engines created *through those names* afterwards. An engine created before, or through a
``create_engine`` imported before (``from sqlalchemy import create_engine`` at the top of a module, the natural
layout), is never traced: no db span, so nothing for tenantwatch to add facts to.

:class:`OTelEngines` closes that gap without patching any name: tenantwatch listens to ``engine_connect`` on the
``Engine`` class, and the first connection of an engine OTel does not trace yet attaches OTel's ``EngineTracer``, built
exactly as OTel's live instrumentation builds its own (same tracer, connection-usage counter and sqlcommenter options,
read from its ``create_engine`` wrapper), and brought up to date with the connections the pool already holds. An
engine OTel already traces is never traced a second time; while OTel is not instrumented (the user uninstrumented
it), nothing is attached.

It also instruments OTel itself when nobody has, forwarding every OTel option (``tracer_provider``,
``meter_provider``, ``enable_commenter``, ``commenter_options``, ``enable_attribute_commenter``), and undoes exactly
its own part: the tracers it attached, and OTel's instrumentation only if the one in place is still the one it made.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from tenantwatch.core.guard import guard

__all__ = ["OTEL_OPTIONS", "OTelEngines", "base_engine", "is_traced"]

logger = logging.getLogger(__name__)

OTEL_OPTIONS = ("enable_commenter", "commenter_options", "enable_attribute_commenter")
"""``instrument()`` options tenantwatch passes on to opentelemetry-instrumentation-sqlalchemy as they are."""

_OTEL_NAME = "opentelemetry.instrumentation.sqlalchemy"

_CHECKED = "_tenantwatch_checked_under"
"""Key in an engine's ``__dict__``: the OTel ``create_engine`` wrapper in place when the engine was last found
traced. ``engine_connect`` runs on every check-out, and asking SQLAlchemy's event registry costs ~10 us; while
the same OTel instrumentation is in place (same wrapper object), the answer stands."""


def _otel_instrumentor() -> Any:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    return SQLAlchemyInstrumentor()


def _create_engine_wrapper() -> Any:
    """What ``sqlalchemy.create_engine`` is now: OTel's wrapper (one object per ``instrument()``) or the function."""
    import sqlalchemy

    return sqlalchemy.create_engine


def base_engine(engine: Any) -> Any:
    """The engine that owns the pool and the events: ``engine.execution_options(...)`` returns an ``OptionEngine``
    that shares (and sees) the listeners of the engine it was made from."""
    while True:
        proxied = getattr(engine, "_proxied", None)
        if proxied is None:
            return engine
        engine = proxied


def adopted(engine: Any) -> bool:
    """Whether :meth:`~OtelTracing.adopt` has checked ``engine`` under the ``create_engine`` in place now (it then
    has nothing left to do for it)."""
    return base_engine(engine).__dict__.get(_CHECKED) is _create_engine_wrapper()


def is_traced(engine: Any) -> bool:
    """Whether an OTel ``EngineTracer`` listens on ``engine`` (every one registers the same module-level
    ``after_cursor_execute`` function)."""
    from opentelemetry.instrumentation.sqlalchemy import engine as otel_engine
    from sqlalchemy import event

    return bool(event.contains(base_engine(engine), "after_cursor_execute", otel_engine._after_cur_exec))


class OTelEngines:
    """OTel's engine tracing for one ``instrument()`` of tenantwatch (see the module documentation)."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self._tracer_provider = kwargs.get("tracer_provider")
        self._meter_provider = kwargs.get("meter_provider")
        self._options = {name: kwargs[name] for name in OTEL_OPTIONS if kwargs.get(name) is not None}
        self._explicit = self._tracer_provider is not None or self._meter_provider is not None or bool(self._options)
        self._own_wrapper: Any = None
        """``sqlalchemy.create_engine`` as tenantwatch's ``instrument()`` of OTel left it (None: not ours)."""
        self._attached: list[tuple[weakref.ref[Any], Any]] = []
        self._lock = threading.Lock()  # two threads connecting a new engine at once attach one tracer

    @property
    def owns_otel(self) -> bool:
        """Whether OTel's instrumentation in place is the one tenantwatch made (not one the user made since)."""
        return (
            self._own_wrapper is not None
            and _otel_instrumentor().is_instrumented_by_opentelemetry
            and _create_engine_wrapper() is self._own_wrapper
        )

    def start(self, engines: Iterable[Any]) -> Any:
        """Instrument OTel if nobody has (for ``engines`` too); else trace those of ``engines`` it does not.

        Returns what OTel's ``instrument()`` returned (the engine tracers), or the tracers attached here.
        """
        engines = list(engines)
        otel = _otel_instrumentor()
        if not otel.is_instrumented_by_opentelemetry:
            options: dict[str, Any] = {
                "tracer_provider": self._tracer_provider,
                "meter_provider": self._meter_provider,
                **self._options,
            }
            if len(engines) == 1:
                options["engine"] = engines[0]
            elif engines:
                options["engines"] = engines
            result = otel.instrument(**options)
            if otel.is_instrumented_by_opentelemetry:
                self._own_wrapper = _create_engine_wrapper()
            return result
        # OTel is someone else's: the engines handed to tenantwatch get tenantwatch's options where it was given any.
        attached = [self._attach(base_engine(e), explicit=True) for e in engines if not is_traced(e)]
        return attached or None

    def adopt(self, engine: Any) -> None:
        """An engine connects: trace it as OTel would if OTel is instrumented and does not trace it yet."""
        engine = base_engine(engine)
        wrapper = _create_engine_wrapper()
        state = engine.__dict__
        if state.get(_CHECKED) is wrapper:
            return
        if not is_instrumentation_enabled() or not _otel_instrumentor().is_instrumented_by_opentelemetry:
            return
        with self._lock:
            if not is_traced(engine):
                tracer = self._attach(engine, explicit=False)
                _count_pooled(tracer, engine)
                logger.debug("tracing engine %s, created before SQLAlchemy was instrumented", engine)
            state[_CHECKED] = wrapper

    def stop(self) -> None:
        """Detach the tracers attached here; uninstrument OTel if the instrumentation in place is tenantwatch's."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        attached, self._attached = self._attached, []
        for ref, tracer in attached:
            engine = ref()
            if engine is not None:
                engine.__dict__.pop(_CHECKED, None)
                with guard("detaching an engine tracer"):
                    _detach(EngineTracer, engine, tracer)
        owned = self.owns_otel
        self._own_wrapper = None
        if owned:
            _otel_instrumentor().uninstrument()

    def _attach(self, engine: Any, *, explicit: bool) -> Any:
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

        live = None if explicit and self._explicit else _live_settings()
        if live is None:
            live = self._settings()
        tracer = EngineTracer(  # type: ignore[no-untyped-call]
            live["tracer"],
            engine,
            live["connections_usage"],
            bool(live.get("enable_commenter", False)),
            live.get("commenter_options") or {},
            bool(live.get("enable_attribute_commenter", False)),
        )
        self._attached = [(ref, t) for ref, t in self._attached if ref() is not None]  # engines since collected
        self._attached.append((weakref.ref(engine), tracer))
        return tracer

    def _settings(self) -> dict[str, Any]:
        """A tracer and connection-usage counter made as OTel's ``instrument()`` makes them, with this
        instrument()'s options."""
        from opentelemetry.instrumentation._semconv import (
            _get_schema_url_for_signal_types,
            _OpenTelemetrySemanticConventionStability,
            _OpenTelemetryStabilitySignalType,
        )
        from opentelemetry.instrumentation.sqlalchemy.version import __version__ as otel_version
        from opentelemetry.metrics import get_meter
        from opentelemetry.semconv.metrics import MetricInstruments

        _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
        schema_url = _get_schema_url_for_signal_types(
            [_OpenTelemetryStabilitySignalType.DATABASE, _OpenTelemetryStabilitySignalType.HTTP]
        )
        tracer = trace.get_tracer(_OTEL_NAME, otel_version, self._tracer_provider, schema_url=schema_url)
        meter = get_meter(_OTEL_NAME, otel_version, self._meter_provider, schema_url=schema_url)
        usage = meter.create_up_down_counter(
            name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE,
            unit="connections",
            description="The number of connections that are currently in state described by the state attribute.",
        )
        return {"tracer": tracer, "connections_usage": usage, **self._options}


def _live_settings() -> dict[str, Any] | None:
    """The tracer, counter and sqlcommenter options OTel's live instrumentation traces new engines with, read from
    the closure of its ``create_engine`` wrapper (None if that is not there or not as expected)."""
    with guard("reading OTel's SQLAlchemy instrumentation settings"):
        wrapper = getattr(_create_engine_wrapper(), "_self_wrapper", None)
        code = getattr(wrapper, "__code__", None)
        cells = getattr(wrapper, "__closure__", None)
        if code is None or not cells:
            return None
        found = {name: cell.cell_contents for name, cell in zip(code.co_freevars, cells, strict=True)}
        if "tracer" not in found or "connections_usage" not in found:
            return None
        return found
    return None


def _count_pooled(tracer: Any, engine: Any) -> None:
    """A tracer attached late missed the pool events of the connections that exist already: count them now, so
    ``db.client.connections.usage`` matches the pool (a QueuePool tells; otherwise: the connection checked out)."""
    pool = getattr(engine, "pool", None)
    checkedout = getattr(pool, "checkedout", None)
    checkedin = getattr(pool, "checkedin", None)
    if callable(checkedout) and callable(checkedin):
        used, idle = int(checkedout()), int(checkedin())
    else:
        used, idle = 1, 0
    if used:
        tracer._add_used_to_connection_usage(used)
    if idle:
        tracer._add_idle_to_connection_usage(idle)


def _detach(engine_tracer_class: Any, engine: Any, tracer: Any) -> None:
    """Remove the listeners of one ``EngineTracer`` (OTel can only remove all of them at once)."""
    from opentelemetry.instrumentation.sqlalchemy import engine as otel_engine
    from sqlalchemy import event

    shared = (otel_engine._after_cur_exec, otel_engine._handle_error)
    params = engine_tracer_class._remove_event_listener_params
    for entry in list(params):
        ref, identifier, fn = entry
        if ref() is not engine or not (getattr(fn, "__self__", None) is tracer or fn in shared):
            continue
        if event.contains(engine, identifier, fn):
            event.remove(engine, identifier, fn)
        with contextlib.suppress(ValueError):  # OTel's finalizer of a collected engine may have removed it
            params.remove(entry)
