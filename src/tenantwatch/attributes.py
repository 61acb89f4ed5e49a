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

UNSCOPED_REASON: Final = "tenantwatch.unscoped.reason"
"""Set when the work runs inside ``tenantwatch.unscoped(reason)``: deliberate cross-tenant work, tagged not flagged."""

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
"""Overall verdict: ``present`` | ``missing`` | ``partial`` | ``not_applicable`` | ``unknown``."""

DB_UNFILTERED: Final = "tenantwatch.db.unfiltered"
"""Read scopes without a tenant filter, each as ``scope:table`` (string array), e.g. ``cte:recent:objectives``."""

DB_UNSCOPED_WRITES: Final = "tenantwatch.db.unscoped_writes"
"""Write targets without a tenant filter (UPDATE/DELETE) or tenant column (INSERT), as table names."""

DB_TENANT_VALUES: Final = "tenantwatch.db.tenant_values"
"""Tenant values the filters compare against, resolved from bound parameters or literals (string array)."""

DB_WRITTEN_TENANT_VALUES: Final = "tenantwatch.db.written_tenant_values"
"""Tenant values written by INSERT/UPDATE, resolved from parameters or literals (string array)."""

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

# --- instrumentation scope -------------------------------------------------------------------------------------

SCOPE_NAME: Final = "tenantwatch"
"""Instrumentation scope name for the tracer, meter and logger tenantwatch creates."""

SEVERITIES: Final = ("info", "warning", "high", "critical")
"""Severity levels, lowest first."""
