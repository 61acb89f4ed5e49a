"""The core both layers stand on: what the instrumentation and the span processor share.

Findings and severities, the rule protocol and :func:`~tenantwatch.core.rule.evaluate`, suppressions and bounded
window state live here. ``instrumentation/`` and ``processors/`` import the core (and ``rules/``), never each other;
only :func:`tenantwatch.configure` wires them together. Import core modules by their full path
(``from tenantwatch.core.findings import Finding``): this package re-exports nothing.
"""
