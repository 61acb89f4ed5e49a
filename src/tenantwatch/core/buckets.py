"""Bounded metric label values: tenant buckets and the caps of every other label whose values come from outside.

A tenant id is unbounded cardinality, so it is never a metric label as such: :class:`TenantBuckets` gives the first
``cap`` distinct tenants a process sees their own label value and folds every later one into ``__other__``; work
with no tenant is ``__none__``. Every other label whose values come from outside the code is bounded the same way:
tables (``table_label_cap``), client addresses (``http.client_label_cap``), ``db.system.name`` and
``db.operation.name`` (:data:`SYSTEM_LABEL_CAP` / :data:`OPERATION_LABEL_CAP`, for spans of other
instrumentations). The span processor (``tenantwatch.processors.metrics``) and the ASGI middleware's request
metrics (``tenantwatch.core.request_metrics``) both label through these.
"""

from __future__ import annotations

import threading
from typing import Final

from tenantwatch import attributes as A
from tenantwatch.core.tenant_values import canonical

__all__ = ["OPERATION_LABEL_CAP", "SYSTEM_LABEL_CAP", "TenantBuckets"]

SYSTEM_LABEL_CAP: Final = 16
"""Distinct ``db.system.name`` label values (a process talks to a handful of database kinds)."""

OPERATION_LABEL_CAP: Final = 32
"""Distinct ``db.operation.name`` label values (tenantwatch's own analysis yields a dozen)."""


class TenantBuckets:
    """Maps a tenant id (or any other unbounded value: a table name, a client address) to a bounded metric label
    value. Thread-safe.

    The first ``cap`` distinct tenants get their own value (first come, first served, for the life of the
    process), every later tenant gets ``__other__``, no tenant gets ``__none__``. ``cap=0`` folds every tenant
    into ``__other__``. With ``canonical=True`` (tenant ids) a value is labelled by its canonical text
    (:func:`~tenantwatch.core.tenant_values.canonical`), so one tenant bound as a hex or dashed UUID is one series.
    """

    __slots__ = ("_canonical", "_cap", "_lock", "_seen")

    def __init__(self, cap: int, *, canonical: bool = False) -> None:
        self._cap = max(0, cap)
        self._canonical = canonical
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, tenant: str | None) -> str:
        if tenant is None:
            return A.NO_TENANT
        if self._canonical:
            tenant = canonical(tenant)
        if tenant in self._seen:  # set membership is atomic: no lock on the hot path
            return tenant
        with self._lock:
            if tenant in self._seen:
                return tenant
            if len(self._seen) < self._cap:
                self._seen.add(tenant)
                return tenant
        return A.OTHER_TENANTS

    @property
    def tracked(self) -> frozenset[str]:
        """The tenants that have a label value of their own."""
        with self._lock:
            return frozenset(self._seen)
