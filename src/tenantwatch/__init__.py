"""tenantwatch: OpenTelemetry instrumentation that watches tenant isolation in multi-tenant services.

Usage::

    import tenantwatch
    from tenantwatch import tenant_context, unscoped

    tenantwatch.configure(service_name="okr-api")   # tracer, meter and logger providers, OTLP, SQLAlchemy

    with tenant_context("acme", user_id="u-1", role="member"):
        session.execute(select(Objective))          # db span tagged; missing_tenant_filter finding

Names that need SQLAlchemy (the instrumentor) are imported on first use, so ``import tenantwatch`` works without
the optional ``sqlalchemy`` extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tenantwatch._configure import TenantwatchHandle, configure, instrumented, missing_instrumentation
from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.context import TenantContext, current_context, tenant_context, trust_baggage, unscoped
from tenantwatch.core.findings import Finding
from tenantwatch.facts import SpanFacts
from tenantwatch.processors import TenantwatchSpanProcessor
from tenantwatch.sql import Analyzer, StatementAnalysis, TenantTables
from tenantwatch.version import __version__

if TYPE_CHECKING:
    from tenantwatch.instrumentation._errors import TenantIsolationError
    from tenantwatch.instrumentation.asgi import TenantwatchMiddleware, instrument_app
    from tenantwatch.instrumentation.sqlalchemy import TenantwatchSQLAlchemyInstrumentor

__all__ = [
    "Analyzer",
    "ConfigError",
    "Finding",
    "Settings",
    "SpanFacts",
    "StatementAnalysis",
    "TenantContext",
    "TenantIsolationError",
    "TenantTables",
    "TenantwatchHandle",
    "TenantwatchMiddleware",
    "TenantwatchSQLAlchemyInstrumentor",
    "TenantwatchSpanProcessor",
    "__version__",
    "configure",
    "current_context",
    "instrument_app",
    "instrumented",
    "load_settings",
    "missing_instrumentation",
    "tenant_context",
    "trust_baggage",
    "unscoped",
]

_LAZY = {
    "TenantIsolationError": "tenantwatch.instrumentation._errors",
    "TenantwatchSQLAlchemyInstrumentor": "tenantwatch.instrumentation.sqlalchemy",
    "TenantwatchMiddleware": "tenantwatch.instrumentation.asgi",
    "instrument_app": "tenantwatch.instrumentation.asgi",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tenantwatch' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
