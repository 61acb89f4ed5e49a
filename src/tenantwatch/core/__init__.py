"""The core both layers stand on: what the instrumentation and the span processor share.

Findings and severities, the rule protocol and :func:`~tenantwatch.core.rule.evaluate`, suppressions and bounded
window state live here, and so do the one never-raise guard (``guard``), tenant buckets and label caps
(``buckets``), test-data pattern sets (``patterns``), the request being served (``request``, ``request_metrics``)
and the hand-over of findings to the ASGI middleware (``handover``). ``instrumentation/`` and ``processors/``
import the core (and ``rules/``), never each other; only :func:`tenantwatch.configure` wires them together.
Import core modules by their full path (``from tenantwatch.core.findings import Finding``): this package
re-exports nothing. ``tests/test_layering.py`` holds the layering.
"""
