"""Shared by the per-rule tests: sample facts, a hand-moved clock and shorthands over evaluate() and the detectors."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.trace import SpanKind
from processor_support import CLEAN, Pipeline

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.core.rule import evaluate
from tenantwatch.facts import SpanFacts

DEFAULTS = Settings()

UPDATE_ALL = SpanFacts(
    operation="UPDATE",
    main_table="objectives",
    tables=("objectives",),
    tenant_tables=("objectives",),
    tenant_filter="missing",
    unscoped_writes=("objectives",),
    statement_fingerprint="f00dfeed00000003",
    tenant_id="acme",
    role="member",
)
INSERT_NO_TENANT = replace(UPDATE_ALL, operation="INSERT", statement_fingerprint="f00dfeed00000004")
ADMIN_INSERT = replace(
    CLEAN, operation="INSERT", tenant_values=(), written_tenant_values=("acme",), role="admin", user_id="root-7"
)
WRITE = replace(CLEAN, operation="UPDATE", returned_rows=1, statement_fingerprint="f00dfeed000000aa")


def rules(facts: SpanFacts, settings: Settings = DEFAULTS) -> list[str]:
    """The statement rules that fire on ``facts``, in order."""
    return [finding.rule for finding in evaluate(facts, settings)]


def request(pipeline: Pipeline, tenant: str | None, db: SpanFacts) -> None:
    """A server span (with ``tenant``) around one db span with ``db``'s facts."""
    attributes = {A.TENANT_ID: tenant} if tenant else {}
    with pipeline.tracer.start_as_current_span("GET /objectives", kind=SpanKind.SERVER, attributes=attributes):
        pipeline.db_span(db)
