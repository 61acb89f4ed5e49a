"""injection_signal: a request value appears verbatim inside the SQL text (string-built SQL)."""

from __future__ import annotations

from tenantwatch.config import Settings
from tenantwatch.facts import SpanFacts
from tenantwatch.processors.findings import Finding
from tenantwatch.processors.rules._base import NO_FINDINGS, Rule, quote

__all__ = ["InjectionSignal"]


class InjectionSignal(Rule):
    """Fires when the instrumentation saw values of the current request inside the statement text. SQLAlchemy binds
    parameters, so a request value only reaches the text when the SQL was built by string formatting: the classic
    injection path. The finding names where the values came from (``query.q``), never the values."""

    __slots__ = ()
    id = "injection_signal"
    summary = "a request value appears verbatim in the SQL text (string-built SQL)"

    def __call__(self, facts: SpanFacts, settings: Settings) -> tuple[Finding, ...]:
        sources = facts.request_values_in_sql
        if not sources:
            return NO_FINDINGS
        message = (
            f"{facts.operation or 'statement'} text contains request value(s) from {quote(list(sources))}: "
            "the SQL is built from request input; bind parameters instead"
        )
        return (self.finding(facts, settings, message, table=facts.main_table),)
