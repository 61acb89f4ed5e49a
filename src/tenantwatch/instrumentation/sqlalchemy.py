"""Tenant-isolation facts on SQLAlchemy's db spans, exact row counts, and an ``enforce`` mode.

Builds on opentelemetry-instrumentation-sqlalchemy (which it instruments for you if nobody has yet): OTel still
creates one CLIENT span per statement; before that span ends, tenantwatch adds what the statement means for tenant
isolation. Works for sync and async engines, Core, ORM and ``text()``, with any driver (tested: psycopg 3, psycopg2,
asyncpg, sqlite3, aiosqlite).

Usage
-----

With :func:`tenantwatch.configure` nothing else is needed. By hand::

    from tenantwatch.instrumentation import TenantwatchSQLAlchemyInstrumentor

    TenantwatchSQLAlchemyInstrumentor().instrument()          # before engines are created
    engine = sqlalchemy.create_engine(url)

    TenantwatchSQLAlchemyInstrumentor().instrument(engine=engine)  # an engine that already exists

With no code change::

    opentelemetry-instrument python app.py      # the entry point ``tenantwatch_sqlalchemy`` loads this instrumentor

Every db span then carries, before it ends:

* ``tenant.id``, ``enduser.id``, ``enduser.role`` (and ``tenantwatch.unscoped.reason``) from the tenant context;
* ``tenantwatch.db.tables``, ``tenantwatch.db.tenant_tables``, ``tenantwatch.db.tenant_filter`` (``present``,
  ``missing``, ``partial``, ``not_applicable``, ``unknown``), ``tenantwatch.db.unfiltered``,
  ``tenantwatch.db.unscoped_writes``, ``tenantwatch.db.tenant_values`` and ``tenantwatch.db.written_tenant_values``
  (resolved from the bound parameters, expanding ``IN`` included), ``tenantwatch.db.fingerprint``;
* ``code.function``, ``code.filepath``, ``code.lineno``: the first frame outside SQLAlchemy, OpenTelemetry and
  tenantwatch (for async engines, the coroutine that awaited the statement);
* ``tenantwatch.db.operation`` (``SELECT``, ``INSERT``, ...) and the main table (``db.sql.table`` or
  ``db.collection.name``, as ``OTEL_SEMCONV_STABILITY_OPT_IN`` selects the old or new database conventions);
* ``tenantwatch.db.returned_rows`` (and ``db.response.returned_rows`` under the new conventions): rows affected
  (DML) or the rows the application actually received (statements returning rows, including
  ``stream_results``/``yield_per`` server-side cursors and results closed half-read), plus
  ``tenantwatch.db.fetch_duration_ms``. For row-returning statements the span ends when the result closes (at the
  latest at ``uninstrument()`` or when its tracer provider shuts down), with its end time set to the end of
  execution; see docs/row-counts.md;
* ``tenantwatch.db.test_data`` (INSERT/UPDATE only): written values that match ``rules.test_data.patterns``, masked
  (``users.email=***@example.***``); a matching inline literal is masked in ``db.statement`` too, so the raw value
  is exported nowhere;
* ``tenantwatch.db.identity.*`` for statements the ORM emits on instances (flush ``UPDATE``/``DELETE`` by primary
  key, refresh and re-read, lazy loads): the tenant values of those instances as the session loaded them; when all
  are known, the scopes they pin are ``present`` with reason ``identity`` (``tenantwatch.db.identity``), and
  ``cross_tenant`` reports instances of another tenant (see docs/analysis.md, "ORM identity");
* ``tenantwatch.db.rls_tenant`` with the RLS assist (``rls.enabled``, PostgreSQL): the tenant setting in force for
  the statement; the assist sets it per transaction with ``SET LOCAL`` semantics (see docs/rls.md).

An attribute OTel (or another instrumentation) set on the span is never replaced: ``db.operation`` /
``db.operation.name`` stay OTel's (``SELECT mydb``), hence tenantwatch's own ``tenantwatch.db.operation``.

The span processor (:mod:`tenantwatch.processors`) judges these facts and reports findings.

Configuration
-------------

``instrument()`` accepts:

``settings``
    :class:`tenantwatch.config.Settings`; default :func:`tenantwatch.config.load_settings` (``TENANTWATCH_*``
    environment variables and the rules file named by ``TENANTWATCH_RULES_FILE``). A bad rules file raises
    :class:`~tenantwatch.config.ConfigError` naming the field.
``mode``
    Overrides ``settings.mode``: ``monitor`` (default: record facts, never interfere), ``enforce`` (a statement
    that a rule of ``settings.enforce.rules`` flags, and no suppression covers, is not sent to the database: a db
    span marked ``tenantwatch.enforced=true`` with ERROR status is recorded and :class:`TenantIsolationError` is
    raised), ``off`` (tenantwatch adds nothing; OTel's own db spans are still produced).
``analyzer``
    A shared :class:`tenantwatch.sql.analyzer.Analyzer`; default one built from ``settings``. With
    ``settings.discover`` (default on), each engine's first connection teaches it the tenant-scoped tables from the
    database catalog.
``tracer_provider``, ``meter_provider``, ``enable_commenter``, ``commenter_options``, ``enable_attribute_commenter``
    Passed to opentelemetry-instrumentation-sqlalchemy as they are; default the global providers and OTel's
    defaults.
``engine``, ``engines``
    Engines (sync or async) created *before* ``instrument()``, traced from the start (their first connection
    included). Import order does not matter otherwise: an engine OTel does not trace (created before
    ``instrument()``, through a ``create_engine`` imported before it, at import time of another module) is traced
    from its first connection on, as OTel's instrumentation in place traces new engines; one OTel traces already is
    never traced twice. tenantwatch's own listeners are class-level and apply to every engine OTel traces.
``install_processor``
    Put a :class:`tenantwatch.processors.TenantwatchSpanProcessor` in front of the processors already registered on
    the SDK tracer provider in use (``tracer_provider`` or the global one). Default ``True`` (idempotent: nothing
    happens if one is there already); :func:`tenantwatch.configure` passes ``False`` as it sets up its own.

``uninstrument()`` ends the spans of results still open (with the rows counted so far), removes every listener and
wrapper and the OTel engine tracers it attached, and uninstruments opentelemetry-instrumentation-sqlalchemy if the
instrumentation in place is the one this instrumentor made (not if the user uninstrumented and instrumented OTel
again since). A processor installed on a tracer provider stays.

Zero-code mode
--------------

``opentelemetry-instrument`` loads this entry point after the distro configured the SDK: settings come from the
environment and the rules file, and the processor is put in front of the exporters the distro set up. The entry
point of opentelemetry-instrumentation-sqlalchemy loads too; whichever comes second finds SQLAlchemy already traced
(if it is OTel's, it logs "Attempting to instrument while already instrumented", which is harmless). A bad rules
file is reported when the instrumentor loads, naming the field (``rules.large_result.threshold: ...``); as with any
OTel instrumentor that fails, ``opentelemetry-instrument`` logs it and runs the application without tenantwatch.
The distro comes with ``pip install 'tenantwatch[auto]'``; without one nothing configures the SDK, and the
instrumentor logs a WARNING saying what to install instead of running silently to no effect.

Enforce mode
------------

Enforce mode evaluates the rules in ``before_cursor_execute``, before OTel starts the span and before the driver
sees the statement; it fails open: if tenantwatch itself fails (an internal error, logged), the statement runs.
Only the rules of ``settings.enforce.rules`` block (default ``missing_tenant_filter``, ``cross_tenant``,
``unscoped_write``), and only on a certain verdict: a statement that could not be analyzed runs. Every other finding,
``test_data`` included, is reported as in monitor mode. ``unscoped(reason, rules=[...])`` allows the rules it
names. The
:class:`TenantIsolationError` carries ``findings`` and ``facts``; the blocked statement's span carries the facts,
so the processor reports the findings like any other.

API
---
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, get_args

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from tenantwatch.config import ConfigError, Mode, Settings, load_settings
from tenantwatch.context import DEFAULT_KEY, set_baggage_trust, set_tenant_hierarchy
from tenantwatch.instrumentation._errors import TenantIsolationError
from tenantwatch.instrumentation._listeners import Listeners, tenantwatch_tracer
from tenantwatch.instrumentation._otel import OTelEngines
from tenantwatch.instrumentation._rows import Patched, unwrap_cursor_result, wrap_cursor_result
from tenantwatch.instrumentation.package import _instruments

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["TenantIsolationError", "TenantwatchSQLAlchemyInstrumentor"]

logger = logging.getLogger(__name__)


class TenantwatchSQLAlchemyInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Adds tenant-isolation facts and exact row counts to SQLAlchemy db spans; optionally enforces the rules.

    A singleton, like every ``BaseInstrumentor``. See the module documentation for the keyword arguments of
    :meth:`instrument`.
    """

    _listeners: Listeners | None = None
    _patched: Patched | None = None
    _otel: OTelEngines | None = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> Any:
        settings = _resolve_settings(kwargs.get("settings"), kwargs.get("mode"))
        analyzer: Analyzer | None = kwargs.get("analyzer")
        if analyzer is None:
            from tenantwatch.sql.analyzer import Analyzer

            analyzer = Analyzer(settings)
        tracer_provider = kwargs.get("tracer_provider")
        otel = self._otel = OTelEngines(kwargs)
        traced = otel.start(_sync_engines(kwargs.get("engine"), kwargs.get("engines")))
        if settings.mode == "off":
            return traced
        set_baggage_trust(settings.trust_baggage)
        set_tenant_hierarchy(settings.root_key, settings.finer_keys)
        install_processor = kwargs.get("install_processor")
        if install_processor is None or install_processor:
            _install_processor(tracer_provider, settings, analyzer, kwargs.get("meter_provider"))
        listeners = Listeners(
            settings,
            analyzer,
            tenantwatch_tracer(tracer_provider),
            adopt=otel.adopt,
            meter_provider=kwargs.get("meter_provider"),
        )
        self._patched = wrap_cursor_result()
        listeners.register()
        self._listeners = listeners
        return traced

    def _uninstrument(self, **kwargs: Any) -> None:
        listeners, self._listeners = self._listeners, None
        if listeners is not None:
            listeners.remove()  # ends the spans of results still open
            set_baggage_trust(False)
            set_tenant_hierarchy(DEFAULT_KEY)
        patched, self._patched = self._patched, None
        if patched:
            unwrap_cursor_result(patched)
        otel, self._otel = self._otel, None
        if otel is not None:
            otel.stop()


def _resolve_settings(settings: Settings | None, mode: str | None) -> Settings:
    if mode is not None and mode not in get_args(Mode):
        raise ValueError(f"mode: expected one of {', '.join(get_args(Mode))}, got {mode!r}")
    if settings is None:
        try:
            return load_settings(mode=mode)
        except ConfigError as error:
            # zero-code: opentelemetry-instrument logs the failure and runs the app on, unwatched; say that plainly
            logger.error(UNWATCHED_ERROR, error)
            raise
    if mode is None or mode == settings.mode:
        return settings
    return settings.model_copy(update={"mode": mode})


def _sync_engines(engine: Any, engines: Iterable[Any] | None) -> list[Any]:
    """The sync engines to trace (an ``AsyncEngine`` is traced through its ``sync_engine``)."""
    found = [engine] if engine is not None else []
    found += list(engines or ())
    return [getattr(e, "sync_engine", e) for e in found]


def _install_processor(tracer_provider: Any, settings: Settings, analyzer: Analyzer, meter_provider: Any) -> None:
    """Wrap the processors of the SDK tracer provider in use with tenantwatch's (zero-code mode's path)."""
    from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider

    from tenantwatch._configure import install_processor

    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if not isinstance(provider, SDKTracerProvider):
        logger.warning(NO_SDK_WARNING)
        return
    install_processor(provider, settings=settings, analyzer=analyzer, meter_provider=meter_provider)


UNWATCHED_ERROR = (
    "tenantwatch is NOT watching this process: its settings could not be loaded, so no statement is judged (and "
    "enforce mode blocks nothing). Fix the rules file or the TENANTWATCH_* variable named below "
    "(tenantwatch check-config FILE shows every problem):\n%s"
)
"""Logged at ERROR when the instrumentor loads its own settings (zero-code) and they are bad."""

NO_SDK_WARNING = (
    "tenantwatch: no OpenTelemetry SDK tracer provider is configured, so db spans go nowhere and no tenant-isolation "
    "findings are reported. With opentelemetry-instrument, install the distro that configures the SDK: "
    "pip install 'tenantwatch[auto]' (opentelemetry-distro and the OTLP exporters at versions matching "
    "tenantwatch's); in code, call tenantwatch.configure() instead."
)
"""Logged when the instrumentor runs (zero-code mode) and nothing set up the SDK."""
