"""Statement analysis: which tables a statement touches and whether every scope filters by tenant.

Usage::

    from tenantwatch.sql import Analyzer, TenantTables

    analyzer = Analyzer(settings)                      # tables discovered later, or:
    analyzer.tables.learn_from_metadata(Base.metadata)
    analysis = analyzer.analyze("SELECT * FROM orders WHERE organization_id = %(org)s")
    analysis.tenant_filter                             # "present"
    resolve_values(analysis.filter_values, {"org": 7}) # ("7",)

See ``docs/analysis.md`` for the semantics of a tenant filter in each kind of scope.
"""

from tenantwatch.sql.analyzer import Analyzer
from tenantwatch.sql.model import ScopeVerdict, StatementAnalysis, TenantFilter, ValueSource, resolve_values
from tenantwatch.sql.tables import TenantTables

__all__ = [
    "Analyzer",
    "ScopeVerdict",
    "StatementAnalysis",
    "TenantFilter",
    "TenantTables",
    "ValueSource",
    "resolve_values",
]
