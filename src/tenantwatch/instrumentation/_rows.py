"""Exact row counts: count the rows the application receives and end the db span when its result closes.

opentelemetry-instrumentation-sqlalchemy ends the db span in ``after_cursor_execute``, before a single row is
fetched, and DB-API ``rowcount`` is -1 for sqlite3 SELECTs and meaningless for server-side cursors. So
tenantwatch takes the span over (OTel's listener then finds no span to end), counts the rows SQLAlchemy hands out
of the :class:`~sqlalchemy.engine.CursorResult`, and ends the span when the result closes, with ``end_time`` set to
the moment execution finished: the span's duration is the execute time, as with OTel alone, while
``db.response.returned_rows`` is exact. A statement without result rows (DML, DDL) has its result closed by
SQLAlchemy as it is built, right after the rows-affected count is read: its span ends then, with that count. See
docs/row-counts.md for the trade-off.

The result "closes" when, whichever comes first:

* it is exhausted (SQLAlchemy soft-closes it), or closed explicitly (``close()``, ``first()``, ``one()``, ...);
* its connection goes back to the pool (``checkin``), e.g. ``with engine.connect()`` ends with rows unread;
* it is garbage-collected (the count so far is recorded; the span ends on the next statement, check-in or at
  exit, never inside the garbage collector, where an exporter lock could be held by the interrupted code);
* the instrumentation is uninstrumented, or the tracer provider of its span shuts down (at exit, the SDK's own
  exit hook): every span still waiting ends first, so it is exported, with the rows counted so far.

Rows are counted at the four ``CursorResult`` fetch entry points, which every consumer goes through (verified on
SQLAlchemy 2.0.58): ``_fetchone_impl`` (``fetchone()``, ``first()``, ``one()``, ``scalar()``, ``next()``),
``_fetchmany_impl`` (``fetchmany()``, ``partitions()``, ORM ``yield_per``), ``_fetchall_impl`` (``all()``,
``fetchall()``, ORM loading) and ``_fetchiter_impl`` (iteration, ``scalars()`` iteration), for buffered and
server-side (``stream_results``) strategies alike.
"""

from __future__ import annotations

import atexit
import collections
import functools
import logging
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from tenantwatch import attributes as A
from tenantwatch.core.guard import DeliberateError, guard, log_internal_error
from tenantwatch.instrumentation._attributes import set_span_attributes
from tenantwatch.instrumentation._row_tenants import RowTenants

__all__ = [
    "OPEN_RESULTS_KEY",
    "STATE_ATTR",
    "Patched",
    "PendingResult",
    "drain_orphans",
    "finish_all",
    "finish_open_results",
    "orphaned",
    "unhook_shutdowns",
    "unwrap_cursor_result",
    "wrap_cursor_result",
]

logger = logging.getLogger(__name__)

STATE_ATTR = "_tenantwatch_rows"
"""Attribute on the SQLAlchemy execution context holding the :class:`PendingResult` of its statement."""

OPEN_RESULTS_KEY = "tenantwatch.open_results"
"""Key in the pool connection record's ``info`` dict: results still open on that connection."""

_RowsKeys = tuple[str, ...]
_Orphan = tuple[Span, dict[str, Any], int | None, int, _RowsKeys]
orphaned: collections.deque[_Orphan] = collections.deque()
"""Spans of results that were garbage-collected while open; ended by :func:`drain_orphans`."""

_live: dict[int, weakref.ref[PendingResult]] = {}
"""Every result whose span has not ended yet (by ``id``), so that :func:`finish_all` can end them."""

_DEFAULT_ROWS_KEYS: _RowsKeys = (A.DB_RETURNED_ROWS,)


class PendingResult:
    """A db span whose end waits for its result to close: its attributes, and the rows counted so far.

    The attributes are written once, when the span ends, together with the row count.
    """

    __slots__ = (
        "__weakref__",
        "attributes",
        "busy",
        "closed",
        "end_ns",
        "known",
        "open_results",
        "rows",
        "rows_keys",
        "span",
        "tenants",
    )

    def __init__(
        self,
        span: Span,
        attributes: dict[str, Any],
        end_ns: int,
        open_results: dict[int, Any] | None,
        rows_keys: _RowsKeys = _DEFAULT_ROWS_KEYS,
    ) -> None:
        self.span: Span | None = span
        self.attributes = attributes
        self.end_ns = end_ns
        self.rows = 0
        self.known = True
        """False when the row count cannot be known (the span then carries none)."""
        self.busy = False
        self.closed = False
        self.rows_keys = rows_keys
        """The attribute keys the row count goes under (see :mod:`._semconv`)."""
        self.open_results = open_results
        self.tenants: RowTenants | None = None
        """Row tenant inspection (:mod:`._row_tenants`), for reads without a direct tenant filter."""
        ref = weakref.ref(self)
        _live[id(self)] = ref
        if open_results is not None:
            open_results[id(self)] = ref
        processor = getattr(span, "_span_processor", None)
        if processor is not None and processor is not _last_hooked[0]:
            _hook_shutdown(processor)

    def finish(self) -> None:
        """Record the attributes, row count (if known) and fetch time; end the span at the execute end time.
        Idempotent."""
        span = self.span
        if span is None:
            return
        self.span = None
        _live.pop(id(self), None)
        if self.open_results is not None:
            self.open_results.pop(id(self), None)
            self.open_results = None
        if self.tenants is not None:
            self.tenants.record(self.attributes)
        _end(span, self.attributes, self.rows if self.known else None, self.end_ns, self.rows_keys)

    def fail(self, message: str) -> None:
        """The result failed while fetching: mark the span as an error and end it."""
        span = self.span
        if span is not None:
            span.set_status(Status(StatusCode.ERROR, message))
        self.finish()

    def __del__(self) -> None:
        span = self.span
        if span is None:
            return
        try:
            self.span = None
            _live.pop(id(self), None)
            if self.open_results is not None:
                self.open_results.pop(id(self), None)
            if self.tenants is not None:
                self.tenants.record(self.attributes)
            orphaned.append((span, self.attributes, self.rows if self.known else None, self.end_ns, self.rows_keys))
        except Exception:  # nothing may escape a finalizer
            pass


def _end(span: Span, attributes: dict[str, Any], rows: int | None, end_ns: int, rows_keys: _RowsKeys) -> None:
    # try/except rather than a guard object, which would cost more than the rest of this per-statement function
    # (the same semantics: a DeliberateError passes, any other Exception is logged, rate-limited).
    try:
        if rows is not None:
            for key in rows_keys:
                attributes[key] = rows
        attributes[A.DB_FETCH_DURATION] = (time.time_ns() - end_ns) / 1e6
        set_span_attributes(span, attributes)
        span.end(end_time=end_ns)
    except DeliberateError:
        raise
    except Exception:
        log_internal_error("ending a db span")


def drain_orphans() -> None:
    """End the spans of results that were garbage-collected while open."""
    while orphaned:
        try:
            orphan = orphaned.popleft()
        except IndexError:
            return
        _end(*orphan)


def finish_all(processor: Any = None) -> None:
    """End the span of every result still open (only those of ``processor``'s spans if given), then the orphans'."""
    for ref in list(_live.values()):
        pending = ref()
        if pending is None:
            continue
        span = pending.span
        if span is not None and (processor is None or getattr(span, "_span_processor", None) is processor):
            pending.finish()
    drain_orphans()


# --- ending what is open before the SDK shuts down --------------------------------------------------------------------
#
# The SDK's TracerProvider registers its shutdown with atexit when it is created; a hook of tenantwatch's registered
# at import would run after it whenever the provider is created later (atexit is last-in first-out), and the spans
# it ends would reach a shut-down exporter. So the span processor of every provider whose spans tenantwatch holds
# (the provider's multi-span processor, found on the span) gets its shutdown wrapped: open spans end first.

_HOOK_MARK = "_tenantwatch_finishes_open_results"
_last_hooked: list[Any] = [None]
"""The processor hooked last: the one almost every span has (a cheap check per statement)."""
_hooked: list[weakref.ref[Any]] = []


def _hook_shutdown(processor: Any) -> None:
    _last_hooked[0] = processor
    with guard("hooking the span processor's shutdown"):
        if getattr(processor.__dict__.get("shutdown"), _HOOK_MARK, False):
            return
        original = processor.shutdown

        def shutdown(*args: Any, **kwargs: Any) -> Any:
            with guard("ending open db spans at shutdown"):
                finish_all(processor)
            return original(*args, **kwargs)

        setattr(shutdown, _HOOK_MARK, True)
        processor.shutdown = shutdown
        _hooked.append(weakref.ref(processor))


def unhook_shutdowns() -> None:
    """Undo :func:`_hook_shutdown` on every processor still hooked (by uninstrument)."""
    _last_hooked[0] = None
    while _hooked:
        processor = _hooked.pop()()
        if processor is not None and getattr(processor.__dict__.get("shutdown"), _HOOK_MARK, False):
            del processor.__dict__["shutdown"]


# For providers whose spans have no SDK span processor to hook: atexit runs this before the exit hook of every
# provider created before tenantwatch was imported.
atexit.register(finish_all)


def finish_open_results(info: dict[Any, Any]) -> None:
    """End the spans of every result still open on a pool connection (its ``connection_record.info``)."""
    open_results = info.pop(OPEN_RESULTS_KEY, None)
    if open_results:
        for ref in list(open_results.values()):
            pending = ref()
            if pending is not None:
                pending.finish()
    if orphaned:
        drain_orphans()


# --- CursorResult patches --------------------------------------------------------------------------------------------
#
# Plain functions with the patched methods' own signatures, installed on the class: they run for every fetch of every
# result, and a generic wrapper (wrapt: a bound wrapper object plus args/kwargs packing per call) costs several times
# the work done here. The execution context always has a __dict__ (OTel keeps its span there too): a dict lookup is
# cheaper than getattr() with a default on the common miss.

_Method = Callable[..., Any]


def _patch_fetchone(original: _Method) -> _Method:
    @functools.wraps(original)
    def _fetchone_impl(self: Any, hard_close: bool = False) -> Any:
        row = original(self, hard_close)
        if row is not None:
            pending = self.context.__dict__.get(STATE_ATTR)
            if pending is not None:
                pending.rows += 1
                tenants = pending.tenants
                if tenants is not None:
                    tenants.row(row)
        return row

    return _fetchone_impl


def _count_list(original: _Method, result: Any, args: tuple[Any, ...]) -> Any:
    pending = result.context.__dict__.get(STATE_ATTR)
    if pending is None or pending.span is None:
        return original(result, *args)
    # fetchall() (and fetchmany() on a fully buffered result) soft-closes the result *inside* the call that returns
    # the last rows: hold the span end until they are counted.
    pending.busy = True
    try:
        rows = original(result, *args)
        pending.rows += len(rows)
        tenants = pending.tenants
        if tenants is not None:
            tenants.rows(rows)
    finally:
        pending.busy = False
        if pending.closed:
            pending.finish()
    return rows


def _patch_fetchmany(original: _Method) -> _Method:
    @functools.wraps(original)
    def _fetchmany_impl(self: Any, size: int | None = None) -> Any:
        return _count_list(original, self, (size,))

    return _fetchmany_impl


def _patch_fetchall(original: _Method) -> _Method:
    @functools.wraps(original)
    def _fetchall_impl(self: Any) -> Any:
        return _count_list(original, self, ())

    return _fetchall_impl


def _counting(rows: Iterator[Any], pending: PendingResult) -> Iterator[Any]:
    tenants = pending.tenants
    for row in rows:
        pending.rows += 1
        if tenants is not None:
            tenants.row(row)
        yield row


def _patch_fetchiter(original: _Method) -> _Method:
    @functools.wraps(original)
    def _fetchiter_impl(self: Any) -> Any:
        rows = original(self)
        pending = self.context.__dict__.get(STATE_ATTR)
        if pending is None or pending.span is None:
            return rows
        return _counting(rows, pending)

    return _fetchiter_impl


def _patch_soft_close(original: _Method) -> _Method:
    @functools.wraps(original)
    def _soft_close(self: Any, hard: bool = False) -> None:
        original(self, hard)
        context = self.context
        pending = context.__dict__.get(STATE_ATTR)
        if pending is not None and pending.span is not None:
            if not self._metadata.returns_rows:
                # DML, DDL: SQLAlchemy soft-closes the result as it builds it, right after reading the DB-API
                # rowcount (the rows affected) into the context.
                rowcount = getattr(context, "_rowcount", None)
                if type(rowcount) is int and rowcount >= 0:
                    pending.rows = rowcount
                else:
                    pending.known = False
            pending.closed = True
            if not pending.busy:
                pending.finish()

    return _soft_close


_PATCHES: dict[str, Callable[[_Method], _Method]] = {
    "_fetchone_impl": _patch_fetchone,
    "_fetchmany_impl": _patch_fetchmany,
    "_fetchall_impl": _patch_fetchall,
    "_fetchiter_impl": _patch_fetchiter,
    "_soft_close": _patch_soft_close,
}

Patched = dict[str, tuple[_Method, _Method]]
"""Method name -> (original, patched), to undo :func:`wrap_cursor_result`."""


def wrap_cursor_result() -> Patched:
    """Patch the fetch and close entry points of ``CursorResult`` (class level); returns what to undo."""
    from sqlalchemy.engine.cursor import CursorResult

    patched: Patched = {}
    for name, make in _PATCHES.items():
        original = CursorResult.__dict__[name]
        replacement = make(original)
        setattr(CursorResult, name, replacement)
        patched[name] = (original, replacement)
    return patched


def unwrap_cursor_result(patched: Patched) -> None:
    """Undo :func:`wrap_cursor_result` (a method patched again by someone else since is left to them)."""
    from sqlalchemy.engine.cursor import CursorResult

    for name, (original, replacement) in patched.items():
        if CursorResult.__dict__.get(name) is replacement:
            setattr(CursorResult, name, original)
        else:
            logger.debug("CursorResult.%s was patched again after tenantwatch; left in place", name)
