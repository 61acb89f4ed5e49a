"""Findings on the console, one line each, for local runs without a collector.

Turned on by ``configure(console=True)`` or ``TENANTWATCH_CONSOLE=1``; written to standard error as the statement's
span ends::

    tenantwatch: CRITICAL missing_tenant_filter table=orders tenant=1 at app.py:14 in list_orders: SELECT reads
    orders without a tenant filter in scope main: ...; context tenant '1' | SELECT id FROM orders

(one line). With a tenant hierarchy the context's finer keys follow the tenant (``tenant=acme team=t-1``) and a
finding about a finer key names it (``cross_tenant key=team``). The statement is shown normalized (placeholders and
inline literals of writes as ``$1..$n``), collapsed to one line and cut at 200 characters. Writing never raises
into the application.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from typing import Final, TextIO

from opentelemetry.sdk.trace import ReadableSpan

from tenantwatch.core.guard import guard
from tenantwatch.facts import SpanFacts
from tenantwatch.processors import Finding

__all__ = ["ConsoleFindings", "format_finding"]

logger = logging.getLogger(__name__)

STATEMENT_CHARS: Final = 200
_SPACES: Final = re.compile(r"\s+")


def _statement(text: str | None) -> str:
    if not text:
        return ""
    try:
        from tenantwatch.sql._normalize import normalize

        text = normalize(text).text
    except Exception:  # an unterminated quote or a too-odd statement: shown as it came
        logger.debug("tenantwatch: console could not normalize a statement", exc_info=True)
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= STATEMENT_CHARS else text[: STATEMENT_CHARS - 1] + "…"


def _location(facts: SpanFacts) -> str:
    if not facts.code_filepath:
        return ""
    path = facts.code_filepath
    try:
        relative = os.path.relpath(path)
        if not relative.startswith(".."):
            path = relative
    except ValueError:  # another drive (Windows)
        pass
    where = f" at {path}:{facts.code_lineno or 0}"
    return f"{where} in {facts.code_function}" if facts.code_function else where


def format_finding(finding: Finding, facts: SpanFacts) -> str:
    """One line: severity, rule, the tenant key it is about, table, tenant (and finer keys), code location, the
    finding's message and the normalized statement."""
    parts = [f"tenantwatch: {finding.severity.upper()} {finding.rule}"]
    if finding.tenant_key:
        parts.append(f" key={finding.tenant_key}")
    table = finding.table or facts.main_table
    if table:
        parts.append(f" table={table}")
    parts.append(f" tenant={facts.tenant_id if facts.tenant_id is not None else '-'}")
    parts.extend(f" {name}={value}" for name, value in facts.tenant_keys)
    parts.append(_location(facts))
    parts.append(f": {_SPACES.sub(' ', finding.message).strip()}")
    statement = _statement(facts.statement)
    if statement:
        parts.append(f" | {statement}")
    return "".join(parts)


class ConsoleFindings:
    """A finding listener (see ``TenantwatchSpanProcessor.add_finding_listener``) that prints each finding."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, finding: Finding, facts: SpanFacts, span: ReadableSpan) -> None:
        with guard("console finding output", logger=logger, level=logging.DEBUG):
            line = format_finding(finding, facts)
            stream = self._stream if self._stream is not None else sys.stderr
            with self._lock:
                stream.write(line + "\n")
                stream.flush()
