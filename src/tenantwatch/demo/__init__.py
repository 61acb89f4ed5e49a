"""``tenantwatch demo``: a small multi-tenant application on embedded SQLite, watched by tenantwatch.

Two tenants (``acme`` and ``globex``) share one schema (``plans``, ``organizations``, ``users``, ``projects``,
``objectives``, ``invoices``) seeded with a few thousand rows. A scripted mix of correct queries and six classic bugs
runs through SQLAlchemy, instrumented for real by :func:`tenantwatch.configure`:

==========================  =======================  ==========================================================
step                        rule                     bug
==========================  =======================  ==========================================================
search_objectives           missing_tenant_filter    a search forgets ``organization_id``
invoices_for_orgs           cross_tenant             an ``IN`` list carries another tenant's id
void_drafts                 unscoped_write           an ``UPDATE`` with no tenant filter
export_objectives           large_result             1500 rows in one result
rename_project              superuser_write          a superuser session writes
revenue_report              slow_query               a report runs for over 500 ms
==========================  =======================  ==========================================================

The correct steps (Core, ``text()``, a join, a CTE, INSERT/UPDATE with the tenant, a global table, an ``unscoped``
roll-up) raise nothing. Findings are read back from the spans the processor exports and shown live; with an OTLP
endpoint (``--otlp-endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``) traces, metrics and logs are exported too.

Usage::

    tenantwatch demo            # live table on a terminal, plain lines otherwise
    tenantwatch demo --json     # findings, steps and a summary as one JSON document

or from Python: ``tenantwatch.demo.run_demo()`` returns a :class:`~tenantwatch.demo.results.DemoResult`.
"""

from __future__ import annotations

from tenantwatch.demo.results import DemoFinding, DemoResult, StepResult
from tenantwatch.demo.runner import DemoError, run_demo
from tenantwatch.demo.scenario import BUGGY_RULES, STEPS, Step

__all__ = [
    "BUGGY_RULES",
    "STEPS",
    "DemoError",
    "DemoFinding",
    "DemoResult",
    "Step",
    "StepResult",
    "run_demo",
]
