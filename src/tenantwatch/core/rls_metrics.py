"""The RLS coverage gauges, recorded the same way by ``tenantwatch audit --export`` and by the instrumentation.

``tenantwatch.rls.coverage`` (unit ``1``): the share of a database's tenant tables with row level security enabled
and forced; ``tenantwatch.rls.tables`` (unit ``{table}``): those tables counted per ``tenantwatch.rls.state``. Both
are labelled by ``db.system.name`` and ``db.namespace`` (the database), a bounded label set. A database without
tenant tables records nothing (a coverage of "nothing" would read as 0 % or 100 %, both wrong).
"""

from __future__ import annotations

from opentelemetry.metrics import MeterProvider, get_meter_provider

from tenantwatch import attributes as A
from tenantwatch.sql.rls_coverage import RLS_STATES, RlsCoverage
from tenantwatch.version import __version__

__all__ = ["RlsCoverageGauges"]


class RlsCoverageGauges:
    """The two synchronous gauges on ``meter_provider`` (default: the global one)."""

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        meter = (meter_provider or get_meter_provider()).get_meter(A.SCOPE_NAME, __version__)
        self.coverage = meter.create_gauge(
            A.METRIC_RLS_COVERAGE,
            unit="1",
            description="Share of tenant tables with row level security enabled and forced",
        )
        self.tables = meter.create_gauge(
            A.METRIC_RLS_TABLES, unit="{table}", description="Tenant tables by row level security state"
        )

    def record(self, coverage: RlsCoverage, *, system: str = "postgresql") -> bool:
        """Record ``coverage``; returns False (recording nothing) when the database has no tenant table."""
        ratio = coverage.ratio
        if ratio is None:
            return False
        labels = {A.DB_SYSTEM_NAME: system, A.DB_NAMESPACE: coverage.database}
        self.coverage.set(ratio, labels)
        for state in RLS_STATES:
            self.tables.set(coverage.counts()[state], {**labels, A.RLS_STATE: state})
        return True
