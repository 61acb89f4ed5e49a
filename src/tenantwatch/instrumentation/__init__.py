"""Instrumentations that put tenant-isolation facts on OpenTelemetry spans.

:class:`TenantwatchSQLAlchemyInstrumentor` (module :mod:`tenantwatch.instrumentation.sqlalchemy`, whose documentation
is the manual) and :class:`TenantIsolationError`, raised by its ``enforce`` mode. SQLAlchemy itself is imported only
when the instrumentor is used: it stays an optional dependency.
"""

from __future__ import annotations

from tenantwatch.instrumentation._errors import TenantIsolationError
from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor

__all__ = ["TenantIsolationError", "TenantwatchSQLAlchemyInstrumentor"]
