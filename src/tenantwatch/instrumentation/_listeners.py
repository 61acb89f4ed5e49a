"""tenantwatch's SQLAlchemy event listeners: facts on the db span, enforce mode, row counts, table discovery.

Registered at class level on :class:`sqlalchemy.engine.Engine` (so they apply to every engine, sync or async via its
``sync_engine``) and on :class:`sqlalchemy.pool.Pool`. Class-level listeners run before the instance-level ones
opentelemetry-instrumentation-sqlalchemy registers per engine, which is what this module relies on:

* ``before_cursor_execute`` (enforce mode only) runs before OTel starts the db span: tenantwatch analyzes the
  statement and, if a rule listed in ``settings.enforce.rules`` fires on a certain verdict, records a blocked span
  and raises :class:`TenantIsolationError`, so the statement never reaches the database.
  A ``SELECT`` whose only blocking findings are ``missing_tenant_filter`` on tables it looks up by key
  (``tenantwatch.db.keyed`` covers every unfiltered scope), with a tenant in context and those tables' tenant
  columns in the compiled result, runs instead under *observed enforcement* (:class:`_Watch`): its rows are
  compared as they are fetched and the first row of another tenant raises :class:`TenantIsolationError` from the
  fetch, before the application receives it.
* ``after_cursor_execute`` runs before OTel ends the span: tenantwatch sets the facts on it and, for statements that
  return rows, takes the span over so it ends when the result closes (see :mod:`._rows`).
* ``handle_error`` runs before OTel ends the failed span: tenantwatch sets the facts on it and ends it itself, with
  the driver's error message scrubbed of the values it quotes (PostgreSQL's ``DETAIL: Failing row contains (…)``,
  quoted input values; test data masked), since OTel would record the raw message as the status description.

The statement OTel put on a db span stays as it is on the span; tenantwatch's processor masks its literals in what it
exports (``Settings.mask_statements``).
* ``begin`` (only with the RLS assist, :mod:`._rls`): sets the tenant setting for the transaction.
* ``engine_connect``: an engine OTel does not trace yet (created before SQLAlchemy was instrumented, or through a
  ``create_engine`` imported before) gets OTel's tracer (:mod:`._otel`); the first connection of each engine also
  teaches the analyzer the tenant-scoped tables from the catalog (``settings.discover``). The catalog is read again
  on the next connection of every engine after DDL on any engine (migrations often run on an engine of their own),
  and when a statement names a table not seen before (at most once per :data:`REDISCOVER_SECONDS`). On
  PostgreSQL the same pass records the ``tenantwatch.rls.coverage`` gauge (:mod:`tenantwatch.core.rls_metrics`: one
  catalog query, rolled back; skipped with a debug log on other databases and when no tenant table is known).
* ``mapper_configured`` (``settings.discover``): every ORM mapped class teaches the analyzer its tables, as do the
  classes mapped before :meth:`Listeners.register`; so a database whose tables do not exist yet when the engine
  first connects is still watched. When statements run and still no tenant-scoped table is known, one WARNING
  says so (everything would read ``not_applicable``).

Semantic-convention keys follow ``OTEL_SEMCONV_STABILITY_OPT_IN`` (:mod:`._semconv`), and an attribute OTel set is
never replaced.

Test data in the values an INSERT/UPDATE writes is found by :mod:`._test_data` in the hooks above.

Every listener body runs in a guard: an internal error is logged (rate-limited) and the application's statement
carries on. The listeners that run for every statement (``after_cursor_execute``, ``checkin``) use a ``try``/``except``
with :func:`~tenantwatch.core.guard.log_internal_error` instead, the same semantics without a guard object per
statement (which cost more than the rest of the fast path).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.context import current_context
from tenantwatch.core.guard import DeliberateError, guard, log_internal_error
from tenantwatch.core.identity import apply_identity
from tenantwatch.core.request import current_request
from tenantwatch.core.rls_metrics import RlsCoverageGauges
from tenantwatch.core.row_tenants import expected_row_tenant
from tenantwatch.core.tenant_values import canonical
from tenantwatch.facts import SpanFacts, facts_for_statement
from tenantwatch.instrumentation._attributes import AttributeBuilder, set_span_attributes
from tenantwatch.instrumentation._code_location import find_caller, set_skip_prefixes
from tenantwatch.instrumentation._errors import TenantIsolationError
from tenantwatch.instrumentation._identity import IdentityFact, OrmIdentity
from tenantwatch.instrumentation._otel import adopted
from tenantwatch.instrumentation._rls import RlsAssist
from tenantwatch.instrumentation._row_tenants import RowTenants, key_columns, tenant_columns, unfiltered_tables
from tenantwatch.instrumentation._rows import (
    OPEN_RESULTS_KEY,
    STATE_ATTR,
    PendingResult,
    drain_orphans,
    finish_all,
    finish_open_results,
    orphaned,
    unhook_shutdowns,
)
from tenantwatch.instrumentation._semconv import db_semconv
from tenantwatch.instrumentation._test_data import WRITES, TestDataScanner
from tenantwatch.redaction import mask_statement, scrub_db_error
from tenantwatch.sql.rls_coverage import read_rls_coverage

if TYPE_CHECKING:
    from tenantwatch.sql.analyzer import Analyzer

__all__ = ["Listeners", "tenantwatch_tracer"]

logger = logging.getLogger(__name__)

_FACTS_ATTR = "_tenantwatch_facts"
"""Attribute on the execution context: facts computed by enforce mode's before hook, reused by the after hook."""

_WATCH_ATTR = "_tenantwatch_watch"
"""Attribute on the execution context: the :class:`_Watch` of a lookup by key enforce mode lets run."""

REDISCOVER_SECONDS = 30.0
"""At most one catalog re-read per this many seconds because a statement named a table not seen before."""

_MAX_SEEN_TABLES = 10_000

_CONNECTED_ATTR = "_tenantwatch_connected"
"""Attribute on an engine: (the :class:`Listeners` mark, ``sqlalchemy.create_engine`` then) once its connections
need no more work from :meth:`Listeners.engine_connect` (see there)."""

_OTEL_SPAN_ATTR = "_otel_span"
"""Where opentelemetry-instrumentation-sqlalchemy keeps the db span on the execution context."""


class Listeners:
    """The listener functions, bound to one configuration. :meth:`register` / :meth:`remove` (un)install them."""

    def __init__(
        self,
        settings: Settings,
        analyzer: Analyzer,
        tracer: Tracer,
        *,
        adopt: Callable[[Any], None] | None = None,
        meter_provider: Any = None,
    ) -> None:
        self.settings = settings
        self.analyzer = analyzer
        self.tracer = tracer
        set_skip_prefixes(settings.code_location.skip_prefixes)
        self.adopt = adopt
        """Called with each engine that connects, to have OTel trace it if it does not yet (see :mod:`._otel`)."""
        self.semconv = db_semconv()
        self._rows_keys = self.semconv.returned_rows_keys
        self._frames = _execution_frames()
        """The attribute keys of the row count (this configuration's semantic-convention mode)."""
        self.attributes = AttributeBuilder(self.semconv)
        self._registered: list[tuple[type, str, Any]] = []
        self._discovered: weakref.WeakSet[Any] = weakref.WeakSet()
        self._connected = (object(), 0)
        """This instance's mark on an engine whose connections need no work (adopted, catalog read): a token and
        the number of times ``_discovered`` was cleared; :meth:`engine_connect` compares it first."""
        self._seen_tables: set[str] = set()
        self._last_tables: object = None
        """The tables of the last statement :meth:`_watch_tables` looked at (all in ``_seen_tables``)."""
        self._rediscovered_at = float("-inf")
        self._tenant_tables_checked = False
        """Set by the first statement that names a table: it logs the WARNING if no tenant-scoped table is known."""
        self.test_data = TestDataScanner(settings) if settings.enabled("test_data") else None
        """Scans INSERT/UPDATE written values for test data (``None``: the rule is off, nothing is scanned)."""
        self.rls = RlsAssist(settings, analyzer, tracer) if settings.rls.enabled else None
        """RLS assist (opt-in): sets the tenant setting per transaction, tracks it per connection."""
        self.identity = OrmIdentity(analyzer.tables)
        """ORM identity: the tenant of the instances a flush, refresh or lazy load acts on (:mod:`._identity`)."""
        observed = settings.enabled("cross_tenant_read") or settings.enabled("missing_tenant_filter")
        self._max_inspected_rows = settings.rules.cross_tenant_read.max_rows if observed else 0
        """Rows whose tenant values are compared per unfiltered read (0: no inspection, see :mod:`._row_tenants`)."""
        self._expected: tuple[Any, Any, frozenset[str], tuple[str | None, ...]] = (None, None, frozenset(), ())
        """The last context, plan, keys left out and the expected canonical values (a request keeps one context)."""
        self._key_order: tuple[str, ...] = (settings.root_key, *settings.finer_keys) if settings.finer_keys else ()
        """A tenant hierarchy's keys, root first (empty with one tenant key: no per-key work at all)."""
        self._finer_filters = tuple((key, A.db_key_values_attribute(key)) for key in settings.finer_keys)
        """Per finer key, the attribute holding its filter values (a filter only on a finer key, see
        :meth:`_unpinned_keys`)."""
        self._columns_of: Callable[[str], Any] = lambda table: key_columns(analyzer.tables, table)
        self.coverage = RlsCoverageGauges(meter_provider)
        """``tenantwatch.rls.coverage``, recorded on the first connection of each PostgreSQL engine (and again after
        DDL, with the catalog)."""

    # --- registration ---------------------------------------------------------------------------------------

    def register(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        wanted: list[tuple[type, str, Any]] = []
        if self.settings.mode == "enforce":
            wanted.append((Engine, "before_cursor_execute", self.before_cursor_execute))
        wanted += [
            (Engine, "after_cursor_execute", self.after_cursor_execute),
            (Engine, "handle_error", self.handle_error),
            (Pool, "checkin", self.checkin),
        ]
        wanted.append((Engine, "engine_connect", self.engine_connect))  # discovery, RLS coverage, adoption
        if self.rls is not None:
            wanted.append((Engine, "begin", self.rls.begin))
        if self.settings.discover:
            from sqlalchemy.orm import Mapper

            wanted.append((Mapper, "mapper_configured", self.mapper_configured))
        for target, name, fn in wanted:
            event.listen(target, name, fn)
            self._registered.append((target, name, fn))
        self.identity.register()
        if self.settings.discover:
            self._learn_mapped_classes()

    def remove(self) -> None:
        from sqlalchemy import event

        while self._registered:
            target, name, fn = self._registered.pop()
            if event.contains(target, name, fn):
                event.remove(target, name, fn)
        self.identity.remove()
        finish_all()  # results left open end now, with the rows counted so far
        unhook_shutdowns()

    # --- facts ----------------------------------------------------------------------------------------------

    def facts(self, conn: Any, statement: str, parameters: Any, executemany: bool, context: Any = None) -> SpanFacts:
        """Analyze the statement (cached) and combine it with its parameters, the tenant context, the caller and
        what the ORM session knows of the instances it acts on."""
        analysis = self.analyzer.analyze(statement)
        where = find_caller(2)
        facts = facts_for_statement(
            analysis,
            parameters,
            current_context(),
            executemany=executemany,
            statement=statement,
            system=conn.dialect.name,
            code_function=where.function if where else None,
            code_filepath=where.filepath if where else None,
            code_lineno=where.lineno if where else None,
        )
        if context is not None and (facts.unfiltered or facts.unscoped_writes):  # identity only decides those
            fact = self.identity.fact_for(conn, context)
            if fact is not None:
                facts = _with_identity(facts, fact, self.settings)
        if self.test_data is not None or self.rls is not None:
            facts = self._extra_facts(facts, conn, statement, parameters, executemany)
        request = current_request()
        if request is not None and request.values is not None:
            # injection_signal: request values that appear verbatim in the SQL text (string-built SQL)
            sources = request.values.find_in(statement)  # type: ignore[attr-defined]
            if sources:
                facts = replace(facts, request_values_in_sql=sources)
        return facts

    def _extra_facts(self, facts: SpanFacts, conn: Any, statement: str, parameters: Any, many: bool) -> SpanFacts:
        """``facts`` with the test data found (values masked) and the RLS setting in force."""
        if self.test_data is not None and facts.operation in WRITES:
            found = self.test_data.scan(statement, parameters, many)
            if found is not None:
                facts = replace(
                    facts,
                    test_data=found.entries,
                    statement=found.statement or facts.statement,
                    tenant_values=found.scrub_values(facts.tenant_values),
                    written_tenant_values=found.scrub_values(facts.written_tenant_values),
                )
        if self.rls is not None:
            facts = replace(facts, rls_tenant=self.rls.in_force(conn))
        return facts

    def _extra_attributes(  # noqa: PLR0917 - one call site, the hook's own arguments
        self, conn: Any, span: Span, attributes: dict[str, Any], statement: str, parameters: Any, many: bool
    ) -> None:
        """Test data (masked) and the RLS setting in force, into the attributes about to be set on ``span``."""
        if self.test_data is not None and attributes.get(A.DB_OPERATION) in WRITES:  # SELECTs: no work
            found = self.test_data.scan(statement, parameters, many)
            if found is not None:
                found.apply(span, attributes)
        rls = self.rls
        if rls is not None:
            value = rls.in_force(conn)
            if value is not None:
                attributes[A.DB_RLS_TENANT] = value
            rls.observe(conn, statement)

    # --- enforce mode ---------------------------------------------------------------------------------------

    def before_cursor_execute(  # noqa: PLR0917 - the signature of SQLAlchemy's event
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is None:
            return
        with guard("enforce mode") as attempt:
            if not is_instrumentation_enabled():
                return
            facts = self.facts(conn, statement, parameters, executemany, context)
            setattr(context, _FACTS_ATTR, facts)
            blocking = self._blocking_findings(facts)
        if attempt.failed:
            return
        if blocking:
            with guard("observed enforcement") as watching:
                watch = self._watch_for(conn, statement, context, facts, blocking)
            if watch is not None and not watching.failed:
                setattr(context, _WATCH_ATTR, watch)
                return  # runs; its rows are compared as they are fetched
            self._record_blocked(conn, statement, facts, blocking)
            _close_quietly(cursor)
            raise TenantIsolationError(blocking, facts)

    def _watch_for(
        self, conn: Any, statement: str, context: Any, facts: SpanFacts, blocking: tuple[Any, ...]
    ) -> _Watch | None:
        """Observed enforcement for a lookup by key: a :class:`_Watch` when the only blocking findings are
        ``missing_tenant_filter`` on tables every unfiltered scope of which is pinned by a key, and the row
        inspection can compare the tenant column of each of them (in the compiled result, a tenant in context);
        ``None``: block before execution."""
        if not facts.unfiltered or any(finding.rule != "missing_tenant_filter" for finding in blocking):
            return None
        if not set(facts.unfiltered) <= set(facts.keyed):
            return None  # a list read (no key predicate) still blocks before it runs
        # No cursor yet: only a compiled statement's result columns can say where the tenant columns are.
        tenants = self._row_tenants(self.semconv.rename(dict(facts.to_attributes())), context, None)
        if tenants is None:
            return None
        compared = {tenants.tables[index] for _, index in tenants.columns}
        if not {finding.table for finding in blocking} <= compared:
            return None  # a blocked table whose tenant column is not in the result: its rows cannot be compared
        watch = _Watch(blocking, facts, tenants)
        tenants.enforce = lambda _: self._stop_rows(conn, statement, context, watch)
        return watch

    def _stop_rows(self, conn: Any, statement: str, context: Any, watch: _Watch) -> None:
        """A watched lookup by key is about to hand out a row of another tenant (or one that could not be
        compared): record the block like a blocked statement (``tenantwatch.enforced``), close the cursor so no
        further row comes out, and raise :class:`TenantIsolationError` from the fetch."""
        from tenantwatch.rules.cross_tenant_read import RULE as CROSS_TENANT_READ

        findings: tuple[Any, ...] = watch.blocking
        facts = watch.facts
        with guard("stopping the rows of a lookup by key"):
            counted = dict(facts.to_attributes())
            watch.tenants.record(counted)
            facts = SpanFacts.from_attributes(counted)
            findings = CROSS_TENANT_READ(facts, self.settings) or watch.blocking
        if not watch.stopped:
            watch.stopped = True
            pending: PendingResult | None = context.__dict__.get(STATE_ATTR)
            span = pending.span if pending is not None and pending.tenants is watch.tenants else None
            if span is not None and span.is_recording():
                with guard("recording a stopped lookup by key"):
                    assert pending is not None
                    pending.attributes[A.DB_ENFORCED] = True
                    rules = ", ".join(f.rule for f in findings)
                    span.set_status(Status(StatusCode.ERROR, f"blocked by tenantwatch: {rules}"))
                    pending.finish()
            else:
                self._record_blocked(conn, statement, facts, findings)
                if pending is not None:
                    pending.finish()
            _close_quietly(context.cursor)
        raise TenantIsolationError(findings, facts)

    def _blocking_findings(self, facts: SpanFacts) -> tuple[Any, ...]:
        from tenantwatch.core.rule import evaluate
        from tenantwatch.core.suppressions import is_suppressed

        settings = self.settings
        if facts.tenant_filter == "unknown" or facts.analysis_error is not None:
            return ()  # only a certain verdict blocks: what could not be analyzed is reported, never stopped
        enforced = settings.enforce.rules
        # A table that only inherits its tenant is a finding in the strict profile, never a block: the statement
        # is scoped through its provenance (a foreign key, a narrowing subquery), so stopping it is not certain.
        unfiltered = {item.rpartition(":")[2] for item in facts.unfiltered}
        return tuple(
            finding
            for finding in evaluate(facts, settings)
            if finding.rule in enforced
            and not (finding.rule == "missing_tenant_filter" and finding.table not in unfiltered)
            and not is_suppressed(finding, facts, settings)
        )

    def _record_blocked(self, conn: Any, statement: str, facts: SpanFacts, findings: tuple[Any, ...]) -> None:
        """A CLIENT span for the statement that never ran, so the processor reports the finding as usual."""
        with guard("recording a blocked statement"):
            database = conn.engine.url.database
            name = " ".join(part for part in (facts.operation or "", database or "") if part) or conn.dialect.name
            semconv = self.semconv
            attributes: dict[str, Any] = semconv.rename(dict(facts.to_attributes()))
            for key in semconv.system_keys:
                attributes[key] = conn.dialect.name
            masked = mask_statement(facts.statement or statement)
            for key in semconv.statement_keys:
                attributes[key] = masked
            for key in semconv.operation_keys:
                attributes[key] = facts.operation or "OTHER"
            attributes[A.DB_ENFORCED] = True
            span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            rules = ", ".join(f.rule for f in findings)
            span.set_status(Status(StatusCode.ERROR, f"blocked by tenantwatch: {rules}"))
            span.end()

    # --- facts on the db span, row counts -------------------------------------------------------------------

    def after_cursor_execute(  # noqa: PLR0917 - the signature of SQLAlchemy's event
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if context is None:
            return
        watch: _Watch | None = context.__dict__.pop(_WATCH_ATTR, None)
        self._after_cursor_execute(conn, cursor, statement, parameters, context, executemany, watch)
        if watch is not None:
            self._keep_watching(conn, statement, cursor, context, watch)

    def _keep_watching(self, conn: Any, statement: str, cursor: Any, context: Any, watch: _Watch) -> None:
        """Make sure the rows of a watched lookup by key pass the inspection: also when its span is not recorded
        (sampled out, not traced); when that cannot be arranged, no row is handed out."""
        pending: PendingResult | None = context.__dict__.get(STATE_ATTR)
        if pending is not None and pending.tenants is watch.tenants:
            return
        with guard("observed enforcement") as attempt:
            span = context.__dict__.get(_OTEL_SPAN_ATTR)
            if span is not None and span.is_recording():
                raise RuntimeError("the db span of a watched lookup by key was not taken over")
            self._defer_end(INVALID_SPAN, {}, context, watch.tenants)
        if attempt.failed:
            self._record_blocked(conn, statement, watch.facts, watch.blocking)
            _close_quietly(cursor)
            raise TenantIsolationError(watch.blocking, watch.facts)

    def _after_cursor_execute(  # noqa: PLR0917 - the hook's own arguments
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool, watch: Any
    ) -> None:
        # try/except, not a guard: this runs for every statement, and a guard object costs more than the rest
        # of the fast path (the same semantics: DeliberateError passes, any other Exception is logged).
        try:
            if orphaned:
                drain_orphans()
            # OTel sets the span only when instrumentation is enabled: no need to ask again.
            span: Span | None = context.__dict__.get(_OTEL_SPAN_ATTR)
            if span is None or not span.is_recording():
                return
            facts: SpanFacts | None = context.__dict__.pop(_FACTS_ATTR, None)
            if facts is not None:
                attributes = self.semconv.rename(dict(facts.to_attributes()))
                operation = facts.operation
            else:
                analysis = self.analyzer.analyze(statement)
                attributes = self.attributes.build(analysis, parameters, executemany, beyond=self._frames)
                operation = analysis.operation
                fact = (
                    self.identity.fact_for(conn, context)
                    # identity only decides those (present in the attributes when the analysis has any; asking the
                    # analysis would build their scope:table strings again)
                    if A.DB_UNFILTERED in attributes or A.DB_UNSCOPED_WRITES in attributes
                    else None
                )
                if fact is not None:
                    _identity_attributes(attributes, fact, self.settings)
            if self.rls is not None or (self.test_data is not None and operation in WRITES):
                self._extra_attributes(conn, span, attributes, statement, parameters, executemany)
            # injection_signal: request values inside the SQL text (in enforce mode facts() has already looked)
            request = current_request() if facts is None else None
            if request is not None and request.values is not None:
                sources = request.values.find_in(statement)  # type: ignore[attr-defined]
                if sources:
                    attributes[A.DB_REQUEST_VALUES_IN_SQL] = sources
            if self.settings.discover and (
                operation == "OTHER" or attributes.get(A.DB_TABLES) is not self._last_tables  # else: nothing new
            ):
                self._watch_tables(attributes, operation, statement)
            if executemany:
                # executemany batches (insertmanyvalues included): the DB-API rowcount is the rows affected.
                rowcount = cursor.rowcount
                if isinstance(rowcount, int) and rowcount >= 0:
                    for key in self._rows_keys:
                        attributes[key] = rowcount
                set_span_attributes(span, attributes)
                return
            # Everything else ends when its result closes: statements without rows the moment SQLAlchemy builds the
            # result (with the rows affected), the others when the application is done reading. Asking the cursor
            # here (cursor.description) would cost more than the rest of this hook on psycopg.
            tenants = watch.tenants if watch is not None else self._row_tenants(attributes, context, cursor)
            self._defer_end(span, attributes, context, tenants)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("after_cursor_execute")

    def _watch_tables(self, attributes: dict[str, Any], operation: str | None, statement: str) -> None:
        """Re-read the catalogs after DDL or when a statement names an unseen table; warn once if none is known."""
        if operation == "OTHER" and _changes_schema(statement):
            self._forget_discovered()  # on any engine: learn the tables again on each engine's next connection
            return
        tables = attributes.get(A.DB_TABLES)
        if not tables or tables is self._last_tables:  # a cached analysis's tuple: seen by the statement before
            return
        if not self._tenant_tables_checked:
            self._tenant_tables_checked = True
            if len(self.analyzer.tables) == 0:
                logger.warning(
                    "tenantwatch: statements run but no tenant-scoped table is known (no table with a column of "
                    "tenant_columns %s in the catalog or the ORM mappings, none in tenant_tables), so none is checked "
                    "for tenant isolation; if the tables are created later, tenantwatch looks again",
                    list(self.settings.tenant_columns),
                )
        seen = self._seen_tables
        new = [table for table in tables if table not in seen]
        self._last_tables = tables
        if not new:
            return
        if len(seen) + len(new) > _MAX_SEEN_TABLES:
            seen.clear()
        seen.update(new)
        now = time.monotonic()
        if now - self._rediscovered_at >= REDISCOVER_SECONDS:
            self._rediscovered_at = now
            self._forget_discovered()

    def mapper_configured(self, mapper: Any, class_: Any) -> None:
        """An ORM class was mapped: its tables (with their columns) may be tenant-scoped."""
        with guard("tenant tables from the ORM"):
            self._learn_mapper(mapper)

    def _learn_mapped_classes(self) -> None:
        """The classes mapped before tenantwatch was instrumented."""
        import sys

        with guard("tenant tables from the ORM"):
            mapperlib = sys.modules.get("sqlalchemy.orm.mapper")
            registries = getattr(mapperlib, "_all_registries", None)
            if not callable(registries):
                return
            for registry in registries():
                for mapper in registry.mappers:
                    self._learn_mapper(mapper)

    def _learn_mapper(self, mapper: Any) -> None:
        """The mapped tables' tenant columns and their foreign keys (what inherited verdicts need when the catalog
        was read before the migrations ran)."""
        tables = SimpleNamespace(tables={table.fullname: table for table in mapper.tables})
        learned = self.analyzer.tables.learn_from_metadata(tables)
        if learned:
            logger.debug("learned %s tenant-scoped tables from the ORM mapping of %s", learned, mapper.class_)

    def _row_tenants(self, attributes: dict[str, Any], context: Any, cursor: Any) -> RowTenants | None:
        """Row tenant inspection for a read without a direct tenant filter whose tenant column is in the result,
        with a tenant in context (see :mod:`._row_tenants`); ``None`` for everything else (the common case).

        With a tenant hierarchy also a read whose tables are filtered only on a finer key whose value is not the
        context's (another team, or a team when the context holds none): its rows are compared on the other keys
        (``teams WHERE teams.id = <another organization's team>``: the row is another organization's)."""
        if self._max_inspected_rows == 0:
            return None
        skip: frozenset[str] = frozenset()
        if A.DB_UNFILTERED not in attributes and A.DB_INHERITED not in attributes:
            if not self._finer_filters or A.DB_TENANT_TABLES not in attributes:
                return None
            skip = self._unpinned_keys(attributes)
            if not skip:
                return None
        if attributes.get(A.DB_OPERATION) != "SELECT" or attributes.get(A.TENANT_ID) is None:
            return None
        if A.UNSCOPED_REASON in attributes and A.UNSCOPED_RULES not in attributes:
            return None  # every rule that reads these counts is silent inside unscoped(reason)
        with guard("row tenant inspection"):
            tables = self.analyzer.tables
            wanted = frozenset(attributes[A.DB_TENANT_TABLES]) if skip else unfiltered_tables(attributes)
            plan = tenant_columns(
                context,
                cursor,
                wanted,
                columns_of=self._columns_of,
                version=tables.version,
                statement_tables=attributes.get(A.DB_TABLES) or (),
            )
            if plan is None:
                return None
            tenant = current_context()
            cached = self._expected
            shape = (plan.names, plan.keys)
            if cached[0] is tenant and cached[1] == shape and cached[2] == skip:
                expected = cached[3]
            else:
                expected = tuple(
                    None if key in skip else expected_row_tenant(tenant, column, self.settings, key=key)
                    for column, key in zip(plan.names, plan.keys, strict=True)
                )
                self._expected = (tenant, shape, skip, expected)
            if not any(expected):
                return None  # no key the context holds a value for
            return RowTenants(plan, expected, self._max_inspected_rows, self._key_order)
        return None  # an internal error (logged by the guard): no inspection

    def _unpinned_keys(self, attributes: dict[str, Any]) -> frozenset[str]:
        """With a tenant hierarchy: the finer keys whose filter values in the statement are not the context's value
        of that key (``cross_tenant`` reports those); empty when every finer-key filter names the context's."""
        tenant = current_context()
        found: list[str] = []
        for key, name in self._finer_filters:
            values = attributes.get(name)
            if not values:
                continue
            own = tenant.value_of(key)
            mine = canonical(own) if own is not None else None
            if mine is None or any(value != own and canonical(value) != mine for value in values):
                found.append(key)
        return frozenset(found)

    def _defer_end(
        self, span: Span, attributes: dict[str, Any], context: Any, tenants: RowTenants | None = None
    ) -> None:
        """Take the span over from OTel: it ends when the result closes, with the rows the application received."""
        end_ns = time.time_ns()
        state = context.__dict__
        previous: PendingResult | None = state.get(STATE_ATTR)
        if previous is not None and previous.span is not None:
            # A statement run on the same context before the main one (a sequence or default pre-executed by the
            # dialect): SQLAlchemy read its row straight from the cursor, so its count is unknown.
            previous.known = False
            previous.finish()
        open_results: dict[int, Any] | None = None
        record = getattr(state.get("_dbapi_connection"), "_connection_record", None)
        if record is not None:
            info = record.info
            open_results = info.get(OPEN_RESULTS_KEY)
            if open_results is None:
                open_results = info[OPEN_RESULTS_KEY] = {}
        pending = PendingResult(span, attributes, end_ns, open_results, self._rows_keys)
        pending.tenants = tenants
        if "statement" not in state:
            # A context of its own for a default or sequence (Connection.scalar(Sequence(...))): SQLAlchemy reads the
            # value straight from the cursor and builds no result.
            pending.known = False
        state[STATE_ATTR] = pending
        state[_OTEL_SPAN_ATTR] = None  # OTel's after_cursor_execute now leaves the span alone

    def handle_error(self, exception_context: Any) -> None:
        span: Span | None = None
        context: Any = None
        message = ""
        with guard("handle_error"):
            context = exception_context.execution_context
            if context is None:
                return
            message = str(exception_context.original_exception)
            pending: PendingResult | None = context.__dict__.get(STATE_ATTR)
            if pending is not None and pending.span is not None:
                pending.fail(scrub_db_error(message))  # the error happened while fetching: OTel no longer holds it
                return
            span = getattr(context, _OTEL_SPAN_ATTR, None)
            if span is None or not span.is_recording() or not is_instrumentation_enabled():
                span = None
                return
            facts: SpanFacts | None = context.__dict__.pop(_FACTS_ATTR, None)
            statement = exception_context.statement
            if facts is None and statement is not None:
                facts = self.facts(
                    exception_context.connection or context.root_connection,
                    statement,
                    exception_context.parameters,
                    bool(getattr(context, "executemany", False)),
                    context,
                )
            attributes: dict[str, Any] = self.semconv.rename(dict(facts.to_attributes())) if facts is not None else {}
            if facts is not None and facts.test_data and statement is not None and self.test_data is not None:
                found = self.test_data.scan(
                    statement, exception_context.parameters, bool(getattr(context, "executemany", False))
                )
                if found is not None:
                    found.apply(span, attributes)
                    message = found.scrub(message)
            set_span_attributes(span, attributes)
        self.identity.failed(getattr(exception_context, "connection", None))  # the flush it belonged to is over
        if span is not None:  # every early return above leaves span None: OTel ends those spans itself
            _end_failed(span, context, message)

    # --- pool events ----------------------------------------------------------------------------------------

    def checkin(self, dbapi_connection: Any, connection_record: Any) -> None:
        """The connection went back to the pool: results still open on it are done."""
        try:
            if connection_record is not None:
                finish_open_results(connection_record.info)
        except DeliberateError:
            raise
        except Exception:
            log_internal_error("checkin")

    def _forget_discovered(self) -> None:
        """Every engine reads its catalog again on its next connection."""
        self._discovered.clear()
        token, cleared = self._connected
        self._connected = (token, cleared + 1)

    def engine_connect(self, conn: Any) -> None:
        """Have OTel trace the engine if it does not yet; on its first connection, learn the tenant-scoped tables
        from the database catalog."""
        try:
            # Once both are done the engine carries this instance's mark: every later connection (one per ORM
            # session) costs a dict look-up, not a WeakSet probe and two guards.
            engine = conn.engine
            mark = engine.__dict__.get(_CONNECTED_ATTR)
            if mark is not None and mark[0] == self._connected and mark[1] is _create_engine():
                return
        except Exception:  # only a shortcut: the guarded path below decides
            pass
        connected = self._connected
        if self.adopt is not None:
            with guard("tracing an engine created before instrument()"):
                self.adopt(conn.engine)
        self._discover(conn)  # tables (when discovery is on) and the RLS coverage gauge, once per engine
        with guard("marking an engine connected"):
            engine = conn.engine
            if self.adopt is None or adopted(engine):  # not while adopting is left to do (instrumentation off)
                engine.__dict__[_CONNECTED_ATTR] = (connected, _create_engine())

    def _discover(self, conn: Any) -> None:
        with guard("tenant table discovery") as attempt:
            engine = conn.engine
            if engine in self._discovered:
                return
            self._discovered.add(engine)
            dbapi_connection = conn.connection.dbapi_connection
            dialect_name = conn.dialect.name
        if attempt.failed:
            return
        if self.settings.discover:
            with guard("tenant table discovery"):
                # Reads the catalog and rolls back the transaction it opens (the connection is idle at check-out).
                learned = self.analyzer.tables.learn_from_connection(dbapi_connection, dialect_name)
                logger.debug("learned %s tenant-scoped tables from the %s catalog", learned, dialect_name)
        self._record_coverage(dbapi_connection, dialect_name)

    def _record_coverage(self, dbapi_connection: Any, dialect_name: str) -> None:
        """The RLS coverage gauge of a PostgreSQL database (one catalog query, rolled back); skipped elsewhere."""
        if dialect_name != "postgresql":
            logger.debug("tenantwatch: no RLS coverage for %s (PostgreSQL only)", dialect_name)
            return
        with guard("RLS coverage"):
            coverage = read_rls_coverage(dbapi_connection, self.analyzer.tables)
            if not self.coverage.record(coverage):
                logger.debug("tenantwatch: no tenant table in %s yet: no RLS coverage recorded", coverage.database)


class _Watch:
    """Enforce mode's observed enforcement of one lookup by key: the findings that would have blocked it, its facts,
    and the row inspection that stops a row of another tenant at the fetch (``RowTenants.enforce``)."""

    __slots__ = ("blocking", "facts", "stopped", "tenants")

    def __init__(self, blocking: tuple[Any, ...], facts: SpanFacts, tenants: RowTenants) -> None:
        self.blocking = blocking
        self.facts = facts
        self.tenants = tenants
        self.stopped = False


def _with_identity(facts: SpanFacts, fact: IdentityFact, settings: Settings) -> SpanFacts:
    """``facts`` with the ORM identity fact recorded and judged (:func:`tenantwatch.core.identity.apply_identity`)."""
    recorded = replace(
        facts,
        identity_kind=fact.kind,
        identity_column=fact.column,
        identity_tenant_values=fact.values,
        identity_tenant_rows=fact.rows,
        identity_unknown_rows=fact.unknown or None,
        identity_key_columns=fact.key_columns if fact.values else (),
        identity_key_values=fact.key_values if fact.values else (),
    )
    return apply_identity(recorded, settings)


_IDENTITY_VERDICT_KEYS = (A.DB_UNFILTERED, A.DB_UNSCOPED_WRITES, A.DB_TENANT_FILTER, A.DB_IDENTITY)


def _identity_attributes(attributes: dict[str, Any], fact: IdentityFact, settings: Settings) -> None:
    """The identity fact and its verdict into the attributes about to be set on the statement's span."""
    attributes.update(fact.attributes())
    judged = apply_identity(SpanFacts.from_attributes(attributes), settings)
    if not judged.identity:
        return
    verdict = judged.to_attributes()
    for key in _IDENTITY_VERDICT_KEYS:
        value = verdict.get(key)
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value


def _end_failed(span: Span, context: Any, message: str) -> None:
    """End a failed db span here, its status scrubbed of the values the driver's message quotes, and leave OTel
    (whose ``handle_error`` runs next and would record the raw message) no span to end."""
    with guard("ending a failed db span"):
        span.set_status(Status(StatusCode.ERROR, scrub_db_error(message)))
        span.end()
    with guard("ending a failed db span"):
        setattr(context, _OTEL_SPAN_ATTR, None)


_SCHEMA_CHANGES = ("CREATE", "ALTER", "DROP")


def _changes_schema(statement: str) -> bool:
    """Whether a statement is DDL that may add tenant-scoped tables (or tenant columns)."""
    return statement.lstrip()[:6].upper().startswith(_SCHEMA_CHANGES)


def _close_quietly(cursor: Any) -> None:
    with guard("closing the cursor of a blocked statement"):
        cursor.close()


def _execution_frames() -> tuple[int, frozenset[int]] | None:
    """How ``after_cursor_execute`` is called, for the code location search (``find_caller(beyond=...)``): the frame
    3 above the listener's (SQLAlchemy's event dispatch, then ``_exec_single_context`` or
    ``_exec_insertmany_context``) runs ``Connection._execute_context``, and everything up to it is SQLAlchemy's.
    ``None`` if this SQLAlchemy has no such method (the search then looks at every frame)."""
    try:
        from sqlalchemy.engine.base import Connection

        code = Connection._execute_context.__code__
    except (ImportError, AttributeError):
        return None
    return (3, frozenset({id(code)}))


def _create_engine() -> Any:
    """What ``sqlalchemy.create_engine`` is now (OTel wraps it while instrumented): an engine adopted under one
    wrapper is checked again under another."""
    import sys

    return getattr(sys.modules.get("sqlalchemy"), "create_engine", None)


def tenantwatch_tracer(tracer_provider: Any) -> Tracer:
    """The tracer for spans tenantwatch starts itself (blocked statements)."""
    from tenantwatch.version import __version__

    return trace.get_tracer(A.SCOPE_NAME, __version__, tracer_provider)
