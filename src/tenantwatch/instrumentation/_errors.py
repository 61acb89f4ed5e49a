"""The one exception the instrumentation raises on purpose.

Everything tenantwatch does inside SQLAlchemy's hooks runs in :class:`tenantwatch.core.guard.guard`: an internal
error is logged (rate-limited, so a broken hook cannot flood the application's logs) and swallowed, and the
application's query carries on. The only exception that reaches the application is :class:`TenantIsolationError`,
raised in ``enforce`` mode before a statement that breaks a critical rule reaches the database; it is a
:class:`~tenantwatch.core.guard.DeliberateError`, so no guard swallows it.
"""

from __future__ import annotations

from tenantwatch.core.findings import Finding
from tenantwatch.core.guard import DeliberateError
from tenantwatch.facts import SpanFacts

__all__ = ["TenantIsolationError"]


class TenantIsolationError(DeliberateError):
    """Raised in ``enforce`` mode instead of running a statement that an enforced rule flags.

    The statement never reached the database. ``findings`` holds what the rules listed in ``enforce.rules`` found
    (not suppressed),
    ``facts`` what tenantwatch knew about the statement (tables, tenant filter verdict, tenant values, code
    location, tenant context).
    """

    def __init__(self, findings: tuple[Finding, ...], facts: SpanFacts) -> None:
        self.findings = findings
        self.facts = facts
        details = "; ".join(f"{f.rule} ({f.severity}): {f.message}" for f in findings)
        where = f" at {facts.code_location}" if facts.code_location else ""
        what = facts.operation or "statement"
        article = "an" if what[:1].upper() in "AEIOU" else "a"  # an UPDATE, an INSERT; a SELECT, a DELETE
        super().__init__(f"tenantwatch blocked {article} {what}{where}: {details}")

    def __reduce__(self) -> tuple[type[TenantIsolationError], tuple[tuple[Finding, ...], SpanFacts]]:
        return (type(self), (self.findings, self.facts))
