"""The rule catalogue: one module per rule id, ``tenantwatch/rules/<id>.py``.

Each module holds the rule's logic, its typed settings model (``rules.<id>`` of the rules file) and its metadata
(:class:`~tenantwatch.core.rule.RuleMeta`: title, default severity, categories, remediation), and exports the rule
object as ``RULE``. Its page is docs/rules/<id>.md. :data:`CATALOGUE` is every rule in evaluation order; importing
this package registers them with :mod:`tenantwatch.core.rule` (:func:`~tenantwatch.core.rule.evaluate` and the
processor's request and window stages read the registry).
"""

from __future__ import annotations

from tenantwatch.core.rule import Rule, register
from tenantwatch.rules import (
    brute_force,
    bulk_write,
    cross_tenant,
    cross_tenant_read,
    injection_signal,
    large_result,
    missing_tenant_filter,
    no_tenant_context,
    off_hours_write,
    query_rate_spike,
    rapid_write,
    repeated_violations,
    slow_query,
    stale_tenant_context,
    superuser_write,
    test_data,
    unscoped_write,
)

__all__ = ["CATALOGUE", "RULE_IDS"]

CATALOGUE: tuple[Rule, ...] = (
    missing_tenant_filter.RULE,
    cross_tenant.RULE,
    cross_tenant_read.RULE,
    unscoped_write.RULE,
    no_tenant_context.RULE,
    superuser_write.RULE,
    large_result.RULE,
    slow_query.RULE,
    injection_signal.RULE,
    test_data.RULE,
    stale_tenant_context.RULE,
    brute_force.RULE,
    bulk_write.RULE,
    rapid_write.RULE,
    off_hours_write.RULE,
    query_rate_spike.RULE,
    repeated_violations.RULE,
)
"""Every rule, in evaluation order: the statement rules first, then the request rules and the windowed ones."""

RULE_IDS: tuple[str, ...] = tuple(rule.id for rule in CATALOGUE)

register(*CATALOGUE)
