"""Metrics the processor records: statement duration and rows for every db span, findings, the bounded tenant label."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from processor_support import CLEAN, UNFILTERED, Pipeline

from tenantwatch import attributes as A
from tenantwatch.core.buckets import TenantBuckets


def test_every_db_span_records_duration_in_seconds_and_rows(pipeline: Pipeline) -> None:
    pipeline.db_span(CLEAN, system="postgresql", duration_ms=250.0)
    pipeline.db_span(replace(CLEAN, returned_rows=7), system="postgresql", duration_ms=50.0)
    expected = {
        A.DB_SYSTEM_NAME: "postgresql",
        A.DB_OPERATION_NAME: "SELECT",
        A.DB_COLLECTION_NAME: "objectives",
        A.TENANT_BUCKET: "acme",
    }
    ((labels, duration),) = pipeline.points(A.METRIC_OPERATION_DURATION)
    assert labels == expected
    assert duration.count == 2
    assert abs(duration.sum - 0.3) < 1e-6
    ((labels, rows),) = pipeline.points(A.METRIC_RETURNED_ROWS)
    assert labels == expected
    assert (rows.count, rows.sum, rows.max) == (2, 10, 7)


def test_unknown_row_count_records_no_rows(pipeline: Pipeline) -> None:
    pipeline.db_span(replace(CLEAN, returned_rows=None))
    assert len(pipeline.points(A.METRIC_OPERATION_DURATION)) == 1
    assert pipeline.points(A.METRIC_RETURNED_ROWS) == []


def test_findings_counter_labels(pipeline: Pipeline) -> None:
    pipeline.db_span(UNFILTERED)
    pipeline.db_span(UNFILTERED)
    pipeline.db_span(replace(CLEAN, tenant_id=None, tenant_values=(), returned_rows=5000))
    points = {tuple(sorted(labels.items())): point.value for labels, point in pipeline.points(A.METRIC_FINDINGS)}
    assert points == {
        tuple(
            sorted(
                {
                    A.RULE: "missing_tenant_filter",
                    A.SEVERITY: "critical",
                    A.DB_COLLECTION_NAME: "objectives",
                    A.TENANT_BUCKET: "acme",
                }.items()
            )
        ): 2,
        tuple(
            sorted(
                {
                    A.RULE: "no_tenant_context",
                    A.SEVERITY: "high",
                    A.DB_COLLECTION_NAME: "objectives",
                    A.TENANT_BUCKET: A.NO_TENANT,
                }.items()
            )
        ): 1,
        tuple(
            sorted(
                {
                    A.RULE: "large_result",
                    A.SEVERITY: "warning",
                    A.DB_COLLECTION_NAME: "objectives",
                    A.TENANT_BUCKET: A.NO_TENANT,
                }.items()
            )
        ): 1,
    }


def test_tenant_label_is_bounded(make_pipeline: Callable[..., Pipeline]) -> None:
    pipeline = make_pipeline(tenant_label_cap=3)
    tenants = [f"org-{i}" for i in range(7)]
    for tenant in tenants + tenants:
        pipeline.db_span(replace(UNFILTERED, tenant_id=tenant, tenant_values=(tenant,)))
    pipeline.db_span(replace(CLEAN, tenant_id=None, tenant_values=()))
    duration_buckets = {labels[A.TENANT_BUCKET]: p.count for labels, p in pipeline.points(A.METRIC_OPERATION_DURATION)}
    assert duration_buckets == {"org-0": 2, "org-1": 2, "org-2": 2, A.OTHER_TENANTS: 8, A.NO_TENANT: 1}
    finding_buckets = {
        labels[A.TENANT_BUCKET]: p.value
        for labels, p in pipeline.points(A.METRIC_FINDINGS)
        if labels[A.RULE] == "missing_tenant_filter"
    }
    assert finding_buckets == {"org-0": 2, "org-1": 2, "org-2": 2, A.OTHER_TENANTS: 8}
    assert pipeline.processor.tenant_buckets == {"org-0", "org-1", "org-2"}
    # the tenant itself still travels on the span and the log record, only the metric label is bounded
    logged = {
        r.log_record.attributes[A.TENANT_ID]
        for r in pipeline.log_records()
        if r.log_record.attributes[A.RULE] == "missing_tenant_filter"
    }
    assert logged == set(tenants)


def test_tenant_buckets_are_thread_safe() -> None:
    buckets = TenantBuckets(10)
    seen: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def work(offset: int) -> None:
        barrier.wait()
        mine = [buckets(f"t-{offset}-{i}") for i in range(200)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    own = [label for label in seen if label != A.OTHER_TENANTS]
    assert len(own) == 10
    assert set(own) == buckets.tracked
    assert seen.count(A.OTHER_TENANTS) == 1600 - 10


def test_cap_zero_folds_every_tenant() -> None:
    buckets = TenantBuckets(0)
    assert buckets("acme") == A.OTHER_TENANTS
    assert buckets(None) == A.NO_TENANT


def test_one_uuid_tenant_in_two_forms_is_one_metric_series(pipeline: Pipeline) -> None:
    dashed = "2f1c6a8e-5b7d-4c1e-9a3f-0d2b4c6e8a10"
    pipeline.db_span(replace(CLEAN, tenant_id=dashed))
    pipeline.db_span(replace(CLEAN, tenant_id=dashed.replace("-", "").upper()))
    ((labels, duration),) = pipeline.points(A.METRIC_OPERATION_DURATION)
    assert labels[A.TENANT_BUCKET] == dashed
    assert duration.count == 2
