"""Which database semantic conventions tenantwatch writes: the ones ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for.

OpenTelemetry's SQLAlchemy instrumentation writes the old database conventions by default (``db.system``,
``db.statement``, ``db.operation``), the new ones with ``database`` (``db.system.name``, ``db.query.text``,
``db.operation.name``) and both with ``database/dup``. tenantwatch follows the same choice for the semantic-convention
keys it adds itself:

* the statement's main table: ``db.sql.table`` (old) / ``db.collection.name`` (new);
* the rows returned or affected: ``db.response.returned_rows`` (new only: the old conventions have no such key);
* on the spans tenantwatch starts itself (blocked statements): system, statement text and operation.

What the processor reads does not depend on the choice: ``tenantwatch.db.operation`` and
``tenantwatch.db.returned_rows`` are always written. tenantwatch never writes ``db.operation`` /
``db.operation.name`` on OTel's spans: OTel sets the one its conventions call for.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantwatch import attributes as A

__all__ = ["DbSemconv", "db_semconv"]


@dataclass(frozen=True)
class DbSemconv:
    """The keys of one opt-in mode."""

    old: bool
    new: bool

    @property
    def collection_keys(self) -> tuple[str, ...]:
        return self._pick(A.DB_SQL_TABLE, A.DB_COLLECTION_NAME)

    @property
    def returned_rows_keys(self) -> tuple[str, ...]:
        """Where a row count goes: tenantwatch's own key, and the semconv key when the new conventions are on."""
        return (A.DB_RETURNED_ROWS, A.DB_RESPONSE_RETURNED_ROWS) if self.new else (A.DB_RETURNED_ROWS,)

    @property
    def system_keys(self) -> tuple[str, ...]:
        return self._pick(A.DB_SYSTEM, A.DB_SYSTEM_NAME)

    @property
    def statement_keys(self) -> tuple[str, ...]:
        return self._pick(A.DB_STATEMENT, A.DB_QUERY_TEXT)

    @property
    def operation_keys(self) -> tuple[str, ...]:
        return self._pick(A.DB_OPERATION_LEGACY, A.DB_OPERATION_NAME)

    def _pick(self, old: str, new: str) -> tuple[str, ...]:
        return (old,) * self.old + (new,) * self.new

    def rename(self, attributes: dict[str, object]) -> dict[str, object]:
        """``attributes`` (as :meth:`tenantwatch.facts.SpanFacts.to_attributes` builds them) with the main table
        and row count under this mode's keys; the other keys are tenantwatch's and stay."""
        table = attributes.pop(A.DB_COLLECTION_NAME, None)
        if table is not None:
            for key in self.collection_keys:
                attributes[key] = table
        if self.new and A.DB_RETURNED_ROWS in attributes:
            attributes[A.DB_RESPONSE_RETURNED_ROWS] = attributes[A.DB_RETURNED_ROWS]
        return attributes


_OLD = DbSemconv(old=True, new=False)


def db_semconv() -> DbSemconv:
    """The database conventions in force, as OTel's instrumentation reads them (``OTEL_SEMCONV_STABILITY_OPT_IN``)."""
    try:
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetrySemanticConventionStability,
            _OpenTelemetryStabilitySignalType,
            _report_new,
            _report_old,
        )

        _OpenTelemetrySemanticConventionStability._initialize()  # type: ignore[no-untyped-call]
        mode = _OpenTelemetrySemanticConventionStability._get_opentelemetry_stability_opt_in_mode(
            _OpenTelemetryStabilitySignalType.DATABASE
        )
        return DbSemconv(old=bool(_report_old(mode)), new=bool(_report_new(mode)))
    except Exception:  # a future OTel without this private API: the old conventions, its default
        return _OLD
