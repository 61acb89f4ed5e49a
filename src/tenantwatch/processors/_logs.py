"""One OpenTelemetry log record per finding, correlated with the db span it was found on.

Severity ``WARN`` for ``info``/``warning`` findings, ``ERROR`` for ``high``/``critical``; the body is the finding's
message; the attributes carry the rule, severity, fingerprint, table, tenant key and suggestion (if any), who ran
the statement (``tenant.id``, the finer tenant keys ``tenant.<key>.id``, ``enduser.*``), the statement
(``db.query.text``, normalized: every literal is ``?``) and where it came from (``code.*``, ``http.route``). The
record's trace and span ids are the db span's, so a log backend links straight to the trace. The body and every
string attribute are capped at ``max_length`` characters.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, SeverityNumber, get_logger_provider
from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch import attributes as A
from tenantwatch.core.findings import Finding, severity_rank
from tenantwatch.facts import SpanFacts
from tenantwatch.redaction import cap, mask_statement
from tenantwatch.version import __version__

__all__ = ["FindingLogs"]

_ERROR_FROM = severity_rank("high")


class FindingLogs:
    """Emits findings as log records through an OpenTelemetry logger (the global provider's by default)."""

    def __init__(self, logger_provider: LoggerProvider | None, *, max_length: int = 4096) -> None:
        self._logger = (logger_provider or get_logger_provider()).get_logger(A.SCOPE_NAME, __version__)
        self._max_length = max_length

    def emit(self, span: ReadableSpan, finding: Finding, facts: SpanFacts, *, repeats: int = 0) -> None:
        """One log record for ``finding``; ``repeats`` (> 0) says how many identical ones the cooldown held back."""
        span_context = span.context
        context = trace.set_span_in_context(trace.NonRecordingSpan(span_context)) if span_context is not None else None
        error = severity_rank(finding.severity) >= _ERROR_FROM
        self._logger.emit(
            timestamp=span.end_time,
            context=context,
            severity_number=SeverityNumber.ERROR if error else SeverityNumber.WARN,
            severity_text="ERROR" if error else "WARN",
            body=cap(finding.message, self._max_length),
            attributes=_attributes(finding, facts, repeats, self._max_length),
            event_name=A.FINDING_EVENT,
        )


def _attributes(finding: Finding, facts: SpanFacts, repeats: int = 0, max_length: int = 4096) -> dict[str, str | int]:
    pairs: tuple[tuple[str, str | int | None], ...] = (
        (A.RULE, finding.rule),
        (A.SEVERITY, finding.severity),
        (A.FINGERPRINT, finding.fingerprint),
        (A.FINDING_TABLE, finding.table),
        (A.FINDING_SUGGESTION, finding.suggestion),
        (A.FINDING_TENANT_KEY, finding.tenant_key),
        (A.TENANT_ID, facts.tenant_id),
        (A.ENDUSER_ID, facts.user_id),
        (A.ENDUSER_ROLE, facts.role),
        (A.UNSCOPED_REASON, facts.unscoped_reason),
        (A.DB_SYSTEM_NAME, facts.system),
        (A.DB_OPERATION_NAME, facts.operation),
        (A.DB_COLLECTION_NAME, facts.main_table),
        (A.DB_QUERY_TEXT, None if facts.statement is None else mask_statement(facts.statement)),
        (A.DB_FINGERPRINT, facts.statement_fingerprint),
        (A.DB_RESPONSE_RETURNED_ROWS, facts.returned_rows),
        (A.CODE_FUNCTION, facts.code_function),
        (A.CODE_FILEPATH, facts.code_filepath),
        (A.CODE_LINENO, facts.code_lineno),
        (A.HTTP_ROUTE, facts.route),
        (A.FINDING_REPEATS, repeats or None),
        *((A.tenant_key_attribute(key), value) for key, value in facts.tenant_keys),
    )
    return {
        key: cap(value, max_length) if isinstance(value, str) else value for key, value in pairs if value is not None
    }
