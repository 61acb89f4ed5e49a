"""Every span attribute, event, metric and baggage name tenantwatch uses, in one place.

Semantic-convention names are used where one exists (``enduser.id``, ``db.response.returned_rows``,
``db.client.operation.duration``, ``code.*``); everything tenantwatch invents lives under ``tenantwatch.``.
Call sites import these constants; no attribute name is spelled as a string literal anywhere else.
"""

from __future__ import annotations

from typing import Final

# --- tenant context (span attributes and W3C baggage keys) ---------------------------------------------------

TENANT_ID: Final = "tenant.id"
"""The tenant the current request or job acts for (string)."""

ENDUSER_ID: Final = "enduser.id"
"""The end user the current request acts for (semconv)."""

ENDUSER_ROLE: Final = "enduser.role"
"""The end user's role, e.g. ``member``, ``admin``, ``superuser`` (semconv)."""

TENANT_KEY_PREFIX: Final = "tenant."
TENANT_KEY_SUFFIX: Final = ".id"
"""A tenant hierarchy's finer keys (``team`` inside an ``organization``) travel as ``tenant.<key>.id`` (span
attribute and W3C baggage key, see :func:`tenant_key_attribute`); the root key's value is ``tenant.id``."""


def tenant_key_attribute(key: str) -> str:
    """The span attribute and baggage key of a finer tenant key: ``tenant_key_attribute("team")`` is
    ``"tenant.team.id"``."""
    return f"{TENANT_KEY_PREFIX}{key}{TENANT_KEY_SUFFIX}"


UNSCOPED_REASON: Final = "tenantwatch.unscoped.reason"
"""Set when the work runs inside ``tenantwatch.unscoped(reason)``: deliberate cross-tenant work, tagged not flagged."""

UNSCOPED_RULES: Final = "tenantwatch.unscoped.rules"
"""The rule ids ``tenantwatch.unscoped(reason, rules=[...])`` allows (string array); absent: the rules that honour
``unscoped`` (the isolation rules)."""

# --- database facts recorded by the instrumentation ------------------------------------------------------------

DB_SYSTEM: Final = "db.system"
"""Legacy semconv database system name, as written by opentelemetry-instrumentation-sqlalchemy."""

DB_SYSTEM_NAME: Final = "db.system.name"
"""Current semconv database system name."""

DB_STATEMENT: Final = "db.statement"
"""Legacy semconv statement text (written by many instrumentations)."""

DB_QUERY_TEXT: Final = "db.query.text"
"""Current semconv statement text."""

DB_OPERATION_NAME: Final = "db.operation.name"
"""The statement's operation: ``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE`` or ``OTHER`` (semconv)."""

DB_COLLECTION_NAME: Final = "db.collection.name"
"""The statement's main table (semconv): the write target, or the first table read."""

DB_RESPONSE_RETURNED_ROWS: Final = "db.response.returned_rows"
"""Rows the application received (SELECT) or rows affected (DML). Exact; see docs/row-counts.md."""

DB_TABLES: Final = "tenantwatch.db.tables"
"""Every table the statement touches (string array, lower case)."""

DB_TENANT_TABLES: Final = "tenantwatch.db.tenant_tables"
"""The tenant-scoped tables among ``tenantwatch.db.tables`` (string array)."""

DB_TENANT_FILTER: Final = "tenantwatch.db.tenant_filter"
"""Overall verdict: ``present`` | ``inherited`` | ``missing`` | ``partial`` | ``not_applicable`` | ``unknown``
(``inherited``: nothing is missing and some table only inherits its tenant, see ``tenantwatch.db.inherited``)."""

DB_UNFILTERED: Final = "tenantwatch.db.unfiltered"
"""Read scopes without a tenant filter, each as ``scope:table`` (string array), e.g. ``cte:recent:objectives``."""

DB_INHERITED: Final = "tenantwatch.db.inherited"
"""Read scopes whose table has no tenant filter of its own but inherits its tenant, each as ``scope:table:reason``
(string array; reason ``fk_join`` | ``correlated_fk`` | ``narrowing_scope`` | ``exists_key``), e.g.
``join:l:labels:fk_join``."""

DB_UNSCOPED_WRITES: Final = "tenantwatch.db.unscoped_writes"
"""Write targets without a tenant filter (UPDATE/DELETE) or tenant column (INSERT), as table names."""

DB_TENANT_VALUES: Final = "tenantwatch.db.tenant_values"
"""Tenant values the filters compare against, resolved from bound parameters or literals (string array)."""

DB_WRITTEN_TENANT_VALUES: Final = "tenantwatch.db.written_tenant_values"
"""Tenant values written by INSERT/UPDATE, resolved from parameters or literals (string array)."""


def db_key_values_attribute(key: str) -> str:
    """A tenant hierarchy: the values a finer key's columns are compared with, ``tenantwatch.db.tenant_values.<key>``
    (string array; :data:`DB_TENANT_VALUES` holds the root key's)."""
    return f"{DB_TENANT_VALUES}.{key}"


def db_written_key_values_attribute(key: str) -> str:
    """A tenant hierarchy: the values written to a finer key's columns,
    ``tenantwatch.db.written_tenant_values.<key>`` (string array)."""
    return f"{DB_WRITTEN_TENANT_VALUES}.{key}"


DB_FINGERPRINT: Final = "tenantwatch.db.fingerprint"
"""Stable fingerprint of the statement's shape (literals and parameters removed)."""

DB_ANALYSIS_ERROR: Final = "tenantwatch.db.analysis_error"
"""Why the statement could not be analyzed (verdict ``unknown``): too large, too deep, parse error, ..."""

DB_FETCH_DURATION: Final = "tenantwatch.db.fetch_duration_ms"
"""Milliseconds between the statement's execution and the result's close (rows fetched in between)."""

DB_ENFORCED: Final = "tenantwatch.enforced"
"""True on a db span whose statement enforce mode blocked before it reached the database."""

CODE_FUNCTION: Final = "code.function"
"""The calling function: first frame outside SQLAlchemy, OpenTelemetry and tenantwatch (semconv)."""

CODE_FILEPATH: Final = "code.filepath"
"""The calling file (semconv)."""

CODE_LINENO: Final = "code.lineno"
"""The calling line (semconv)."""

HTTP_ROUTE: Final = "http.route"
"""Route template of the request the span belongs to (semconv); suppressions can match it."""

DB_REQUEST_VALUES_IN_SQL: Final = "tenantwatch.db.request_values_in_sql"
"""Where request values that appear verbatim in the statement text came from, e.g. ``query.q`` (string array).
The values themselves are never recorded."""

DB_TEST_DATA: Final = "tenantwatch.db.test_data"
"""Written values that match a test-data pattern, masked (``***@example.com``), as ``column=masked`` (string array)."""

DB_RLS_TENANT: Final = "tenantwatch.db.rls_tenant"
"""RLS assist: the tenant setting the connection had when the statement ran (``""`` when unset)."""

DB_OPERATION: Final = "tenantwatch.db.operation"
"""The statement's operation as tenantwatch's analysis read it: ``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE`` or
``OTHER``. Always written (OTel's ``db.operation`` / ``db.operation.name`` follow ``OTEL_SEMCONV_STABILITY_OPT_IN``
and carry OTel's value, e.g. ``SELECT mydb``)."""

DB_RETURNED_ROWS: Final = "tenantwatch.db.returned_rows"
"""Rows the application received (SELECT) or rows affected (DML), always written; ``db.response.returned_rows``
carries the same count when ``OTEL_SEMCONV_STABILITY_OPT_IN`` selects the new database conventions."""

DB_SQL_TABLE: Final = "db.sql.table"
"""Legacy semconv main table (the old-conventions counterpart of ``db.collection.name``)."""

DB_OPERATION_LEGACY: Final = "db.operation"
"""Legacy semconv operation (the old-conventions counterpart of ``db.operation.name``)."""

DB_IDENTITY: Final = "tenantwatch.db.identity"
"""``scope:table`` of each scope whose verdict is ``present`` by ORM identity: the statement acts on ORM instances (a
flush UPDATE/DELETE by primary key, a refresh, a lazy load from a loaded parent) whose tenant values, as the session
knows them, are all known and the context has a tenant (string array). ``cross_tenant`` compares those values."""

DB_IDENTITY_KIND: Final = "tenantwatch.db.identity.kind"
"""What the ORM instances of ``tenantwatch.db.identity.tenant_values`` are to the statement: ``write`` (the flush
writes them) or ``load`` (it loads them again, or loads through them: a refresh, a lazy load of a parent)."""

DB_IDENTITY_COLUMN: Final = "tenantwatch.db.identity.column"
"""``table.column``: the tenant column the instances' tenant values were read from."""

DB_IDENTITY_TENANT_VALUES: Final = "tenantwatch.db.identity.tenant_values"
"""The distinct tenant values (canonical) of the ORM instances the statement acts on, as loaded from the database
(never a pending change); at most 16 (string array)."""

DB_IDENTITY_TENANT_ROWS: Final = "tenantwatch.db.identity.tenant_rows"
"""How many instances hold each of ``tenantwatch.db.identity.tenant_values`` (int array, same order)."""

DB_IDENTITY_UNKNOWN_ROWS: Final = "tenantwatch.db.identity.unknown_rows"
"""Instances (or executemany parameter sets) of the statement whose tenant the session does not know: tenant
attribute not loaded, no instance matched, beyond the inspection cap (int; absent when 0). Any of them: no
``identity`` verdict."""

DB_IDENTITY_KEY_COLUMNS: Final = "tenantwatch.db.identity.key_columns"
"""With a tenant hierarchy: the further tenant-key columns (``table.column``) of the instances besides
``tenantwatch.db.identity.column`` (``projects.team_id``; ``teams.id`` for the root table of the team key), each
compared with the context value of its own key (string array; absent with one tenant key)."""

DB_IDENTITY_KEY_VALUES: Final = "tenantwatch.db.identity.key_values"
"""The instances' values of ``tenantwatch.db.identity.key_columns`` (canonical, ``""`` when unknown), row-major: for
the i-th entry of ``tenantwatch.db.identity.tenant_values``, one value per key column (string array)."""
DB_KEYED: Final = "tenantwatch.db.keyed"
"""Unfiltered read scopes that a primary or unique key pins to one row (a lookup by key, ``session.get()``), each
as ``scope:table`` (string array)."""

DB_TENANT_ROWS_INSPECTED: Final = "tenantwatch.db.tenant_rows.inspected"
"""Rows returned by a read without a direct tenant filter whose tenant columns were compared with the context
tenant (int; at most ``rules.cross_tenant_read.max_rows``). Counts only: the values are never recorded."""

DB_TENANT_ROWS_OWN: Final = "tenantwatch.db.tenant_rows.own"
"""Inspected rows whose tenant values are all the context tenant's (int)."""

DB_TENANT_ROWS_OTHER: Final = "tenantwatch.db.tenant_rows.other"
"""Inspected rows with a tenant value of another tenant (int): what ``cross_tenant_read`` reports."""

DB_TENANT_ROWS_UNINSPECTED: Final = "tenantwatch.db.tenant_rows.uninspected"
"""Rows returned after the inspection cap was reached (int): counted, not compared."""

DB_TENANT_ROWS_TABLES: Final = "tenantwatch.db.tenant_rows.tables"
"""Tables whose tenant column was in the result and inspected (string array)."""

DB_TENANT_ROWS_OTHER_TABLES: Final = "tenantwatch.db.tenant_rows.other_tables"
"""Tables with a row of another tenant among the inspected rows (string array)."""

DB_TENANT_ROWS_KEYS: Final = "tenantwatch.db.tenant_rows.keys"
"""With a tenant hierarchy: the tenant keys whose columns were compared with the context's value of the same key
(``organization``, ``team``; a key the context holds no value for is not compared) (string array)."""

DB_TENANT_ROWS_OTHER_KEYS: Final = "tenantwatch.db.tenant_rows.other_keys"
"""With a tenant hierarchy: the tenant keys on which an inspected row held another value than the context's
(string array, root key first): the key ``cross_tenant_read`` names."""

# --- HTTP requests (server spans, written by the ASGI middleware) ---------------------------------------------

CLIENT_ADDRESS: Final = "client.address"
"""The client's address as tenantwatch judged it (semconv): the peer, or the forwarded address from a trusted proxy."""

HTTP_REQUEST_METHOD: Final = "http.request.method"
"""HTTP method (semconv)."""

HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
"""HTTP response status (semconv)."""

TENANT_SOURCE: Final = "tenantwatch.tenant.source"
"""Which resolver set the request's tenant: ``header``, ``jwt``, ``subdomain``, ``path``, ``callable``, ``baggage``."""

HTTP_ATTACK_PATTERNS: Final = "tenantwatch.http.attack_patterns"
"""Attack patterns seen in the request, as ``kind:location`` (``sqli:query.q``, ``xss:header.referer``)."""

HTTP_AUTH_FAILURES: Final = "tenantwatch.http.auth_failures"
"""On a 401/403 response: the client's auth failures within the brute-force window, this one included."""

URL_QUERY: Final = "url.query"
"""The request's query string (semconv); tenantwatch redacts the values of sensitive fields on server spans."""

URL_FULL: Final = "url.full"
"""The full request URL (semconv); query string redacted like ``url.query``."""

HTTP_URL: Final = "http.url"
"""The full request URL (old semconv, still OTel's ASGI default); query string redacted like ``url.query``."""

HTTP_TARGET: Final = "http.target"
"""The request target (old semconv); query string redacted like ``url.query``."""

OTHER_METHOD: Final = "_OTHER"
"""The ``http.request.method`` label value of any method outside the HTTP standard ones (semconv)."""

TOKEN_REJECTED: Final = "tenantwatch.auth.token_rejected"
"""Why a bearer token did not set a tenant: ``invalid_signature``, ``expired``, ``unsigned``, ``malformed``, ..."""

HTTP_BLOCKED: Final = "tenantwatch.http.blocked"
"""Set on a request a response action refused: ``client`` or ``tenant`` (what the block is keyed by)."""

CLIENT_BUCKET: Final = "client.bucket"
"""Bounded client-address label on metrics: the address for the first N clients seen, else ``__other__``."""

TENANT_RESOLUTION_FAILED: Final = "tenantwatch.tenant.resolution_failed"
"""Set when the request's tenant could not be resolved, so it ran with no tenant: ``resolver_error`` (the custom
resolver raised) or ``internal_error`` (tenantwatch's own resolution failed). Also the ``reason`` label of
:data:`METRIC_RESOLUTION_FAILURES`."""

RESOLUTION_FAILED_RESOLVER: Final = "resolver_error"
"""Value of :data:`TENANT_RESOLUTION_FAILED`: the custom ``resolver=`` raised."""

RESOLUTION_FAILED_INTERNAL: Final = "internal_error"
"""Value of :data:`TENANT_RESOLUTION_FAILED`: tenantwatch's own resolution raised."""

RESOLUTION_FAILED_KEY_WITHOUT_ROOT: Final = "key_without_root"
"""Value of :data:`TENANT_RESOLUTION_FAILED`: a source named a finer tenant key (``team``) but no root tenant; the
finer key is ignored."""

ERROR_TYPE: Final = "error.type"
"""Why something failed (semconv), as a metric label from a bounded set fixed by the code: the class name of an
exception, or the reason an export dropped items."""

# --- findings (written by the processor on the forwarded copy) -------------------------------------------------

FINDING_EVENT: Final = "tenantwatch.finding"
"""Name of the span event each finding adds."""

RULE: Final = "tenantwatch.rule"
"""Rule id of a finding (event attribute and metric label)."""

SEVERITY: Final = "tenantwatch.severity"
"""Severity of a finding (event attribute, metric label); on the span: the highest severity."""

MESSAGE: Final = "tenantwatch.message"
"""Human-readable explanation of a finding."""

FINGERPRINT: Final = "tenantwatch.fingerprint"
"""Stable finding fingerprint: rule + statement fingerprint + code location. One bug, one fingerprint."""

FINDINGS: Final = "tenantwatch.findings"
"""Span attribute: rule ids of every finding on the span (string array)."""

FINDING_TABLE: Final = "tenantwatch.table"
"""Table a finding is about (event attribute)."""

FINDING_SUGGESTION: Final = "tenantwatch.suggestion"
"""A suggested fix, e.g. the cleanup statement of a ``test_data`` finding (never executed by tenantwatch)."""

FINDING_TENANT_KEY: Final = "tenantwatch.tenant_key"
"""The tenant key a finding is about in a tenant hierarchy (``team``): event and log record attribute, and a label
of ``tenantwatch.findings`` (key names come from the rules file, so the label is bounded). Absent for the root key.
"""

FINDING_REPEATS: Final = "tenantwatch.finding.repeats"
"""On a log record after a cooldown: how many times the same finding fired since the last record."""

TENANT_BUCKET: Final = "tenant.bucket"
"""Bounded tenant label on metrics: the tenant id for the first N tenants seen, else ``__other__``."""

OTHER_TENANTS: Final = "__other__"
"""Bucket for tenants past the label cap."""

NO_TENANT: Final = "__none__"
"""Bucket for work with no tenant in context."""

# --- metrics ---------------------------------------------------------------------------------------------------

METRIC_FINDINGS: Final = "tenantwatch.findings"
"""Counter of findings, labelled by rule, severity, table and tenant bucket."""

METRIC_SUPPRESSED_FINDINGS: Final = "tenantwatch.findings.suppressed"
"""Counter of findings a suppression in the rules file kept quiet, labelled by rule, severity and table."""

METRIC_RETURNED_ROWS: Final = "tenantwatch.db.returned_rows"
"""Histogram of rows returned per statement, labelled by operation, table and tenant bucket."""

METRIC_OPERATION_DURATION: Final = "db.client.operation.duration"
"""Histogram of statement duration in seconds (semconv), labelled by system, operation, table, tenant bucket."""

METRIC_HTTP_REQUESTS: Final = "tenantwatch.http.requests"
"""Counter of requests, labelled by tenant bucket, route, method and status code."""

METRIC_HTTP_DURATION: Final = "tenantwatch.http.request.duration"
"""Histogram of request duration in seconds, labelled by tenant bucket, route and method."""

METRIC_AUTH_FAILURES: Final = "tenantwatch.http.auth_failures"
"""Counter of 401/403 responses, labelled by tenant bucket, route and client bucket."""

METRIC_REJECTED_TOKENS: Final = "tenantwatch.auth.rejected_tokens"
"""Counter of bearer tokens that did not set a tenant, labelled by reason."""

METRIC_IGNORED_HEADERS: Final = "tenantwatch.http.ignored_tenant_headers"
"""Counter of tenant headers ignored because the peer is not a trusted proxy, labelled by client bucket."""

METRIC_BLOCKED: Final = "tenantwatch.http.blocked"
"""Counter of requests refused by a response action, labelled by reason (``client``/``tenant``) and status."""

METRIC_BLOCKS: Final = "tenantwatch.blocks"
"""Counter of blocks started by response actions, labelled by reason."""

METRIC_RESOLUTION_FAILURES: Final = "tenantwatch.http.tenant_resolution_failures"
"""Counter of requests whose tenant could not be resolved (they ran with no tenant), labelled by ``reason``
(``resolver_error`` | ``internal_error``) and ``error.type``."""

METRIC_EXPORT_DROPPED: Final = "tenantwatch.export.dropped"
"""Counter of spans, log records and metric points configure()'s exporters could not deliver, labelled by
``signal`` (``traces``, ``metrics``, ``logs``) and ``error.type`` (``export_failed``: the export was tried and
failed; ``unreachable``: not tried, the endpoint was down moments ago; ``queue_full``; ``shutdown``: still queued
when the shutdown timeout ran out)."""

EXPORT_SIGNAL: Final = "signal"
"""Label of ``tenantwatch.export.dropped``: the OpenTelemetry signal, ``traces``, ``metrics`` or ``logs``."""

METRIC_RLS_COVERAGE: Final = "tenantwatch.rls.coverage"
"""Gauge (unit ``1``): the share of a PostgreSQL database's tenant tables with row level security enabled AND forced,
0 to 1 (``tenantwatch audit --export``, and the instrumentation on the first connect of each engine). Labelled by
``db.namespace`` (the database) and ``db.system.name``; Prometheus names it ``tenantwatch_rls_coverage_ratio``."""

METRIC_RLS_TABLES: Final = "tenantwatch.rls.tables"
"""Gauge (unit ``{table}``): the tenant tables counted by ``tenantwatch.rls.coverage``, labelled by
:data:`RLS_STATE` (``forced``, ``enabled`` but not forced, ``disabled``) besides the coverage's labels."""

RLS_STATE: Final = "tenantwatch.rls.state"
"""Label of ``tenantwatch.rls.tables``: ``forced`` | ``enabled`` | ``disabled``."""

DB_NAMESPACE: Final = "db.namespace"
"""The database name (semconv), on the RLS coverage gauges."""


# --- instrumentation scope -------------------------------------------------------------------------------------

SCOPE_NAME: Final = "tenantwatch"
"""Instrumentation scope name for the tracer, meter and logger tenantwatch creates."""

SEVERITIES: Final = ("info", "warning", "high", "critical")
"""Severity levels, lowest first."""
