"""The processor's metrics, and the bounded tenant label they carry.

Instruments (meter ``tenantwatch``):

* ``db.client.operation.duration`` (histogram, seconds; semconv): every db span, labelled ``db.system.name``,
  ``db.operation.name``, ``db.collection.name`` and ``tenant.bucket``.
* ``tenantwatch.db.returned_rows`` (histogram, rows): every db span with a known row count, same labels.
* ``tenantwatch.findings`` (counter): every finding that was not suppressed, labelled ``tenantwatch.rule``,
  ``tenantwatch.severity``, ``db.collection.name`` (the finding's table) and ``tenant.bucket``, and, for a finding
  about a finer key of a tenant hierarchy, ``tenantwatch.tenant_key`` (the key's name, never its value).
* ``tenantwatch.findings.suppressed`` (counter): findings a suppression kept quiet, labelled ``tenantwatch.rule``,
  ``tenantwatch.severity`` and ``db.collection.name``.

A tenant id is unbounded cardinality, so it is never a label as such: :class:`~tenantwatch.core.buckets.TenantBuckets`
gives the first ``tenant_label_cap`` distinct tenants this process sees their own label value and folds every later
one into ``__other__``; work with no tenant is ``__none__``. Every other label whose values come from outside the
code is bounded the same way (:mod:`tenantwatch.core.buckets`): ``db.collection.name`` (first ``table_label_cap``
tables), ``db.system.name`` and ``db.operation.name`` (first ``SYSTEM_LABEL_CAP`` / ``OPERATION_LABEL_CAP`` values,
for spans of other instrumentations). So each instrument has at most (tenant cap + 2) x (table cap + 1) x ...
series, whatever the traffic.

A tenant hierarchy adds no value label: ``tenant.bucket`` stays the root tenant's (a team's id would multiply every
series by the teams of each organization); only the findings counter says which key a finding is about, by name.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.metrics import MeterProvider, NoOpMeterProvider, get_meter_provider

from tenantwatch import attributes as A
from tenantwatch.core.buckets import OPERATION_LABEL_CAP, SYSTEM_LABEL_CAP, TenantBuckets
from tenantwatch.core.direct_metrics import DirectRecorder
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.version import __version__

__all__ = ["DURATION_BUCKETS", "ROWS_BUCKETS", "ProcessorMetrics"]

_REMEMBERED = 4096
"""Label sets (and tenant buckets) remembered per kind; cleared when full (bounded memory)."""

DURATION_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
"""Bucket boundaries (seconds) advised for ``db.client.operation.duration``, as semantic conventions recommend."""

ROWS_BUCKETS: tuple[float, ...] = (0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10_000, 50_000, 100_000)
"""Bucket boundaries (rows) advised for ``tenantwatch.db.returned_rows``; 1000 is the default large_result limit."""


class ProcessorMetrics:
    """Instruments the span processor records into, created once per processor."""

    def __init__(
        self, meter_provider: MeterProvider | None, *, tenant_label_cap: int, table_label_cap: int = 200
    ) -> None:
        provider = meter_provider or get_meter_provider()
        self.enabled = not isinstance(provider, NoOpMeterProvider)
        """False for an explicit no-op meter provider: the processor then skips building labels at all."""
        meter = provider.get_meter(A.SCOPE_NAME, __version__)
        self._duration = meter.create_histogram(
            A.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self._rows = meter.create_histogram(
            A.METRIC_RETURNED_ROWS,
            unit="{row}",
            description="Rows a statement returned to the application (or changed, for writes).",
            explicit_bucket_boundaries_advisory=list(ROWS_BUCKETS),
        )
        self._findings = meter.create_counter(
            A.METRIC_FINDINGS,
            unit="{finding}",
            description="Tenant-isolation findings raised by tenantwatch rules (suppressed ones excluded).",
        )
        self._suppressed = meter.create_counter(
            A.METRIC_SUPPRESSED_FINDINGS,
            unit="{finding}",
            description="Findings a suppression in the rules file kept off spans, logs and tenantwatch.findings.",
        )
        self._duration_recorder = DirectRecorder(self._duration)
        self._rows_recorder = DirectRecorder(self._rows)
        self._findings_recorder = DirectRecorder(self._findings)
        """Per-statement records, straight into the SDK's aggregations once a label set is known
        (:mod:`tenantwatch.core.direct_metrics`): each label set below keeps its bound recorders."""
        self.tenant_bucket = TenantBuckets(tenant_label_cap, canonical=True)
        self.table_bucket = TenantBuckets(table_label_cap)
        """``db.collection.name`` label values: the first ``table_label_cap`` tables, then ``__other__``."""
        self._system_bucket = TenantBuckets(SYSTEM_LABEL_CAP)
        self._operation_bucket = TenantBuckets(OPERATION_LABEL_CAP)
        self._buckets: dict[str | None, str] = {}
        self._statement_label_sets: dict[
            tuple[str, str | None, str | None, str | None], tuple[Callable[[float], None], Callable[[float], None]]
        ] = {}
        """Per statement label set: its duration and row-count recorders (the label dict built once, shared)."""
        self._finding_label_sets: dict[tuple[str, str, str | None, str | None, str], Callable[[float], None]] = {}
        """Per finding label set: its ``tenantwatch.findings`` recorder."""

    def record_statement(self, facts: SpanFacts, bucket: str, duration_ms: float | None) -> None:
        """Duration (the span's, which remembered facts do not carry) and row count of one db span."""
        key = (bucket, facts.system, facts.operation, facts.main_table)
        recorders = self._statement_label_sets.get(key)
        if recorders is None:  # label values never change once given (see bucket_of), so each set is built once
            if len(self._statement_label_sets) >= _REMEMBERED:
                self._statement_label_sets.clear()
            labels = self._statement_labels(facts, bucket)
            recorders = self._statement_label_sets[key] = (
                self._duration_recorder.bind(labels),
                self._rows_recorder.bind(labels),
            )
        if duration_ms is not None and duration_ms >= 0:
            recorders[0](duration_ms / 1000.0)
        rows = facts.returned_rows
        if rows is not None and rows >= 0:
            recorders[1](rows)

    def _statement_labels(self, facts: SpanFacts, bucket: str) -> dict[str, str]:
        labels: dict[str, str] = {A.TENANT_BUCKET: bucket}
        if facts.system is not None:
            labels[A.DB_SYSTEM_NAME] = self._system_bucket(facts.system)
        if facts.operation is not None:
            labels[A.DB_OPERATION_NAME] = self._operation_bucket(facts.operation)
        if facts.main_table is not None:
            labels[A.DB_COLLECTION_NAME] = self.table_bucket(facts.main_table)
        return labels

    def bucket_of(self, tenant: str | None) -> str:
        """``tenant_bucket(tenant)``, remembered: a tenant's label value never changes once given (first come, first
        served for the life of the process), and the canonical form costs two regular expressions."""
        found = self._buckets.get(tenant)
        if found is None:
            if len(self._buckets) >= _REMEMBERED:
                self._buckets.clear()
            found = self._buckets[tenant] = self.tenant_bucket(tenant)
        return found

    def record_finding(self, finding: Finding, bucket: str) -> None:
        key = (finding.rule, finding.severity, finding.tenant_key, finding.table, bucket)
        add = self._finding_label_sets.get(key)
        if add is None:  # label values never change once given (see bucket_of), so each set is built once
            if len(self._finding_label_sets) >= _REMEMBERED:
                self._finding_label_sets.clear()
            add = self._finding_label_sets[key] = self._findings_recorder.bind(self._finding_labels(finding, bucket))
        add(1)

    def record_suppressed(self, finding: Finding) -> None:
        self._suppressed.add(1, self._finding_labels(finding, None))

    def _finding_labels(self, finding: Finding, bucket: str | None) -> dict[str, str]:
        labels = {A.RULE: finding.rule, A.SEVERITY: finding.severity}
        if finding.tenant_key is not None:
            labels[A.FINDING_TENANT_KEY] = finding.tenant_key
        if finding.table is not None:
            labels[A.DB_COLLECTION_NAME] = self.table_bucket(finding.table)
        if bucket is not None:
            labels[A.TENANT_BUCKET] = bucket
        return labels
