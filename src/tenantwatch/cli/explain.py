"""``tenantwatch explain``: why is this query flagged?

Analyzes SQL exactly as the instrumentation does (:class:`tenantwatch.sql.analyzer.Analyzer`), resolves the tenant
values from the bound parameters (:func:`tenantwatch.facts.facts_for_statement`), runs the rules
(:func:`tenantwatch.core.rule.evaluate`) and applies the suppressions of the rules file, then prints per
statement: operation, tables, tenant tables and their column, the verdict per scope and table with its reason, the
resolved tenant values, the context, and the findings (``--json``: one JSON object per input).

Inputs are SQL arguments, or JSON lines on stdin (``{"sql": ..., "params": [...] | {...}, "tenant": ..., "user": ...,
"role": ..., "unscoped": ..., "route": ..., "returned_rows": ..., "duration_ms": ..., "executemany": ...}``; the
command-line flags are defaults for keys a line leaves out; unknown keys are ignored so exported log lines can be
piped in as they are). Tenant tables come from the rules file, ``--tenant-table`` and ``--database-url`` (the
database's catalog).

Exit code: 0 no finding at or above ``--fail-on``, 1 some statement has one, 3 some statement could not be analyzed
(verdict ``unknown``), 2 usage or configuration error or an input line that could not be read (every other line is
still reported; a line that is not JSON, too long, nested too deep or not valid Unicode is one such line).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any, Final

from tenantwatch import environment_variables as env
from tenantwatch.attributes import SEVERITIES
from tenantwatch.cli._assumed import AssumedTables
from tenantwatch.cli._common import EXIT_FINDINGS, EXIT_OK, EXIT_UNANALYZED, EXIT_USAGE, UsageError, or_dash, printable
from tenantwatch.cli._database import learn_tenant_tables
from tenantwatch.config import ConfigError, Settings, load_settings
from tenantwatch.core.tenant_values import canonical

if TYPE_CHECKING:
    from tenantwatch.context import TenantContext
    from tenantwatch.core.findings import Finding
    from tenantwatch.sql.analyzer import Analyzer
    from tenantwatch.sql.model import StatementAnalysis

__all__ = ["MAX_INPUT_DEPTH", "MAX_LINE_CHARS", "add_parser", "run"]

logger = logging.getLogger(__name__)

FAIL_ON_CHOICES: Final = (*SEVERITIES, "never")
"""``--fail-on`` values: a severity, or ``never``."""

MAX_LINE_CHARS: Final = 1_048_576
"""A longer stdin line is reported and skipped without being held in memory (statements are analyzed up to
``analysis.max_statement_bytes``, 100 kB by default)."""

MAX_INPUT_DEPTH: Final = 32
"""JSON lines nested deeper than this are reported and skipped (an input needs two or three levels)."""


def add_parser(sub: Any) -> None:
    """Register ``explain`` on the subcommand parsers."""
    explain = sub.add_parser(
        "explain",
        help="why is this query flagged? verdict per scope and table, and the findings the rules raise",
        description=(
            "Analyze SQL like the instrumentation does and print the tenant-filter verdict per scope and table, the "
            "resolved tenant values and the findings the rules would raise. SQL comes from the arguments, or from "
            'JSON lines on stdin: {"sql": ..., "params": [...] or {...}, "tenant": ..., "role": ..., "user": ...}.'
        ),
    )
    explain.add_argument("sql", nargs="*", help="SQL statement(s); omit or '-' to read JSON lines from stdin")
    explain.add_argument("--rules", metavar="FILE", help=f"rules file (default: ${env.TENANTWATCH_RULES_FILE})")
    explain.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy URL of a database whose catalog says which tables are tenant-scoped",
    )
    explain.add_argument(
        "--tenant-table",
        action="append",
        default=[],
        metavar="TABLE[=COLUMN]",
        help="declare a tenant-scoped table (repeatable); COLUMN defaults to the first tenant column",
    )
    explain.add_argument(
        "--profile",
        choices=("default", "strict"),
        help="strict: tables that only inherit their tenant (foreign-key joins, correlated or narrowing subqueries) "
        "are missing_tenant_filter findings too (default: the rules file's profile)",
    )
    explain.add_argument("--tenant", help="tenant the statement runs for (the root key's value with tenant_keys)")
    explain.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a finer tenant key's value in the context, e.g. team=t-1 (repeatable; keys from the rules file's "
        "tenant_keys)",
    )
    explain.add_argument("--user", help="end user the statement runs for")
    explain.add_argument("--role", help="end user's role, e.g. member, admin, superuser")
    explain.add_argument("--unscoped", metavar="REASON", help="run as deliberate cross-tenant work (unscoped)")
    explain.add_argument("--route", help="HTTP route template, for route suppressions")
    explain.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE|VALUE",
        help="bound parameter (repeatable): name=value for :name/%%(name)s, bare values in order for ?/%%s/$1; "
        "values are read as JSON when they parse (numbers, lists)",
    )
    explain.add_argument("--returned-rows", type=int, metavar="N", help="rows the statement returned (large_result)")
    explain.add_argument("--duration-ms", type=float, metavar="MS", help="how long it took (slow_query)")
    explain.add_argument(
        "--code-location",
        metavar="PATH:LINE:FUNCTION",
        help="code location the statement ran at (the pytest gate prints it): the finding fingerprint then equals "
        "the one recorded live",
    )
    explain.add_argument("--json", action="store_true", help="one JSON object per input")
    explain.add_argument(
        "--fail-on",
        choices=FAIL_ON_CHOICES,
        default="info",
        help="lowest severity that makes the exit code 1 (default: info, i.e. any finding; 'never': always 0)",
    )


# --- inputs -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Input:
    """One statement to explain, with the context it runs in."""

    number: int
    sql: str
    params: object = None
    tenant: str | None = None
    user: str | None = None
    role: str | None = None
    unscoped: str | None = None
    route: str | None = None
    returned_rows: int | None = None
    duration_ms: float | None = None
    executemany: bool = False
    keys: tuple[tuple[str, str], ...] = ()
    """Finer tenant keys' values (``--key team=t-1``, JSON ``"keys": {"team": "t-1"}``), sorted by key."""
    code_location: tuple[str, int, str | None] | None = None
    """``--code-location PATH:LINE:FUNCTION``: where the statement ran (part of the finding fingerprint)."""


@dataclass(frozen=True, slots=True)
class _BadInput:
    """An input line that could not be read."""

    number: int
    error: str


def _text(value: object, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise ValueError(f'"{key}" must be a string or a number, got {type(value).__name__}')


def _number(value: object, key: str, kind: type[int] | type[float]) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f'"{key}" must be a number, got {type(value).__name__}')
    if value < 0:
        raise ValueError(f'"{key}" must not be negative')
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(f'"{key}" must be a whole number')
    return kind(value)


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f'"{key}" must be true or false, got {type(value).__name__}')
    return value


def _hostile(data: object) -> str | None:
    """Why a parsed JSON line cannot be used as it is (too deep, text that is not valid Unicode), or ``None``.
    Iterative, so it cannot itself run out of stack."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_INPUT_DEPTH:
            return f"nested deeper than {MAX_INPUT_DEPTH} levels"
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                return f"text with a lone surrogate ({value[exc.start]!r}) is not valid Unicode"
        elif isinstance(value, dict):
            stack.extend((key, depth + 1) for key in value)
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def _input_from_json(number: int, line: str, defaults: _Input) -> _Input | _BadInput:
    """Parse one JSON line; missing keys fall back to the command-line flags (``defaults``)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        return _BadInput(number, f"not valid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return _BadInput(number, f"not usable JSON: nested deeper than {MAX_INPUT_DEPTH} levels")
    problem = _hostile(data)
    if problem is not None:
        return _BadInput(number, f"not usable JSON: {problem}")
    if not isinstance(data, dict):
        return _BadInput(number, f"expected a JSON object, got {type(data).__name__}")
    sql = data.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        return _BadInput(number, 'missing "sql": each line needs {"sql": "...", ...}')
    params = data.get("params", defaults.params)
    if params is not None and not isinstance(params, list | dict):
        return _BadInput(number, f'"params" must be a list or an object, got {type(params).__name__}')
    try:
        return _Input(
            number=number,
            sql=sql,
            params=params,
            tenant=_text(data["tenant"], "tenant") if "tenant" in data else defaults.tenant,
            user=_text(data["user"], "user") if "user" in data else defaults.user,
            role=_text(data["role"], "role") if "role" in data else defaults.role,
            unscoped=_text(data["unscoped"], "unscoped") if "unscoped" in data else defaults.unscoped,
            route=_text(data["route"], "route") if "route" in data else defaults.route,
            returned_rows=_number(data.get("returned_rows", defaults.returned_rows), "returned_rows", int),
            duration_ms=_number(data.get("duration_ms", defaults.duration_ms), "duration_ms", float),
            executemany=_flag(data.get("executemany", defaults.executemany), "executemany"),
            keys=_json_keys(data["keys"]) if "keys" in data else defaults.keys,
        )
    except ValueError as exc:
        return _BadInput(number, str(exc))


def _json_keys(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise ValueError(f'"keys" must be an object of key name to value, got {type(value).__name__}')
    pairs = []
    for name, raw in value.items():
        text = _text(raw, f"keys.{name}")
        if text is not None:
            pairs.append((str(name), text))
    return tuple(sorted(pairs))


def _keys_from_flags(values: Sequence[str], settings: Settings) -> tuple[tuple[str, str], ...]:
    """``--key team=t-1`` (repeatable): a finer key the rules file's ``tenant_keys`` declares."""
    if not values:
        return ()
    finer = settings.finer_keys
    pairs: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name or not value:
            raise UsageError(f"--key {item!r}: expected KEY=VALUE, e.g. team=t-1")
        if name == settings.root_key:
            raise UsageError(f"--key {item!r}: {name} is the root key; give its value as --tenant")
        if name not in finer:
            declared = f"the rules file declares: {', '.join(finer)}" if finer else "the rules file has no tenant_keys"
            raise UsageError(f"--key {item!r}: unknown tenant key {name!r}; {declared}")
        pairs[name] = value
    return tuple(sorted(pairs.items()))


def _parse_param_value(raw: str) -> object:
    """``--param`` values are JSON when they parse as JSON (numbers, lists), plain strings otherwise."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _params_from_flags(values: Sequence[str]) -> object:
    """``--param name=value`` (named styles) or ``--param value`` (positional styles, in order); not both."""
    if not values:
        return None
    named: dict[str, object] = {}
    positional: list[object] = []
    for item in values:
        name, sep, raw = item.partition("=")
        if sep and name.strip().isidentifier():
            named[name.strip()] = _parse_param_value(raw)
        else:
            positional.append(_parse_param_value(item))
    if named and positional:
        raise UsageError("--param: use either name=value (named parameters) or bare values (positional), not both")
    return named if named else positional


def _iter_inputs(
    args: argparse.Namespace, stdin: IO[str], keys: tuple[tuple[str, str], ...] = ()
) -> Iterator[_Input | _BadInput]:
    defaults = _Input(
        number=0,
        sql="",
        params=_params_from_flags(args.param),
        tenant=args.tenant,
        user=args.user,
        role=args.role,
        unscoped=args.unscoped,
        route=args.route,
        returned_rows=args.returned_rows,
        duration_ms=args.duration_ms,
        executemany=False,
        keys=keys,
        code_location=_code_location(args.code_location),
    )
    statements = [s for s in args.sql if s != "-"]
    if statements:
        for number, sql in enumerate(statements, start=1):
            yield replace(defaults, number=number, sql=sql)
        return
    for number, line in _lines(stdin):
        if line is None:
            yield _BadInput(number, f"line longer than {MAX_LINE_CHARS} characters")
        elif line.strip():
            yield _input_from_json(number, line, defaults)


def _code_location(value: str | None) -> tuple[str, int, str | None] | None:
    """``PATH:LINE:FUNCTION`` (the function may be empty; the path may hold colons, e.g. a Windows drive)."""
    if value is None:
        return None
    parts = value.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
        raise UsageError(f"--code-location {value!r}: expected PATH:LINE:FUNCTION, e.g. app/views.py:12:list_all")
    return parts[0], int(parts[1]), parts[2] or None


def _lines(stdin: IO[str]) -> Iterator[tuple[int, str | None]]:
    """Numbered stdin lines; ``None`` for a line longer than :data:`MAX_LINE_CHARS` (read past, never held whole)."""
    number = 0
    while True:
        line = stdin.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield number, line
            continue
        while line and not line.endswith("\n"):
            line = stdin.readline(MAX_LINE_CHARS)
        yield number, None


# --- tenant tables ----------------------------------------------------------------------------------------------------


def _parse_tenant_tables(values: Sequence[str]) -> dict[str, str]:
    """``--tenant-table objectives`` (first configured tenant column) or ``--tenant-table legacy=org``."""
    tables: dict[str, str] = {}
    for item in values:
        table, _, column = item.partition("=")
        if not table.strip():
            raise UsageError(f"--tenant-table {item!r}: expected TABLE or TABLE=COLUMN")
        tables[table.strip().lower()] = column.strip().lower()
    return tables


# --- evaluation and output --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Explained:
    """Everything ``explain`` says about one input."""

    item: _Input
    analysis: StatementAnalysis
    context: TenantContext
    tenant_values: tuple[str, ...]
    written_values: tuple[str, ...]
    tenant_columns: dict[str, str | None]
    key_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    written_key_values: tuple[tuple[str, tuple[str, ...]], ...] = ()
    compared: list[dict[str, Any]] = field(default_factory=list)
    """A tenant hierarchy: per key with values in the statement, what ``cross_tenant`` compares them with."""
    enforce: bool = False
    """Whether the settings run in ``enforce`` mode."""
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[tuple[Finding, str]] = field(default_factory=list)
    assumed: dict[str, int] = field(default_factory=dict)
    """Tenant tables read off a statement (:mod:`tenantwatch.cli._assumed`), declared nowhere else -> the input
    that named their tenant column first."""
    newly_assumed: list[str] = field(default_factory=list)
    """The tables this input made ``explain`` assume tenant-scoped, as ``table (column)``."""

    @property
    def would_block(self) -> bool:
        """In enforce mode, a critical finding that no suppression covers stops the statement before it runs."""
        return self.enforce and any(f.severity == "critical" for f in self.findings)


def _explain_one(
    item: _Input, analyzer: Analyzer, settings: Settings, system: str | None, assumed: AssumedTables | None = None
) -> _Explained:
    from tenantwatch.context import TenantContext
    from tenantwatch.core.rule import evaluate
    from tenantwatch.core.suppressions import matching_suppression
    from tenantwatch.facts import facts_for_statement

    analysis = analyzer.analyze(item.sql)
    newly_assumed = assumed.learn(item.sql, item.number) if assumed is not None and analysis.error is None else []
    if newly_assumed:
        analysis = analyzer.analyze(item.sql)  # the tables version moved on: judged with the assumed tables
    context = TenantContext(
        tenant_id=item.tenant, user_id=item.user, role=item.role, unscoped_reason=item.unscoped, keys=item.keys
    )
    facts = facts_for_statement(
        analysis,
        item.params,
        context,
        executemany=item.executemany,
        statement=item.sql,
        system=system,
        returned_rows=item.returned_rows,
        duration_ms=item.duration_ms,
        route=item.route,
        code_filepath=item.code_location[0] if item.code_location else None,
        code_lineno=item.code_location[1] if item.code_location else None,
        code_function=item.code_location[2] if item.code_location else None,
    )
    explained = _Explained(
        item=item,
        analysis=analysis,
        context=context,
        tenant_values=facts.tenant_values,
        written_values=facts.written_tenant_values,
        tenant_columns={table: analyzer.tables.column_for(table) for table in analysis.tenant_tables},
        key_values=facts.key_values,
        written_key_values=facts.written_key_values,
        compared=_compared(facts, settings) if settings.tenant_keys else [],
        enforce=settings.mode == "enforce",
        assumed=assumed.first_named if assumed is not None else {},
        newly_assumed=newly_assumed,
    )
    for finding in evaluate(facts, settings):
        suppression = matching_suppression(finding, facts, settings)
        if suppression is not None:
            explained.suppressed.append((finding, suppression.reason or "suppressed by the rules file"))
        else:
            explained.findings.append(finding)
    return explained


def _compared(facts: Any, settings: Settings) -> list[dict[str, Any]]:
    """Per tenant key the statement names values of: the context value ``cross_tenant`` compares them with
    (``None``: the context holds none, so they are not compared)."""
    out: list[dict[str, Any]] = []
    root = settings.root_key
    read, written = dict(facts.key_values), dict(facts.written_key_values)
    if facts.tenant_values or facts.written_tenant_values:
        read[root], written[root] = facts.tenant_values, facts.written_tenant_values
    for key in (root, *settings.finer_keys):
        if key not in read and key not in written:
            continue
        out.append(
            {
                "key": key,
                "context": facts.tenant_id if key == root else dict(facts.tenant_keys).get(key),
                "values": list(read.get(key, ())),
                "written_values": list(written.get(key, ())),
            }
        )
    return out


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "severity": finding.severity,
        "message": finding.message,
        "table": finding.table,
        "fingerprint": finding.fingerprint,
    }


def _explained_json(explained: _Explained) -> dict[str, Any]:
    analysis = explained.analysis
    ctx = explained.context
    return {
        "input": explained.item.number,
        "sql": explained.item.sql,
        "operation": analysis.operation,
        "tables": list(analysis.tables),
        "tenant_tables": [
            {
                "table": table,
                "column": column,
                **({"assumed_from": explained.assumed[table]} if table in explained.assumed else {}),
            }
            for table, column in explained.tenant_columns.items()
        ],
        "tenant_filter": analysis.tenant_filter,
        "scopes": [
            {
                "scope": s.scope,
                "table": s.table,
                "role": s.role,
                "verdict": s.verdict,
                "reason": s.reason,
                **({"inherited_by": s.inherited_by} if s.inherited_by else {}),
                **({"key": s.key} if s.key else {}),
            }
            for s in analysis.scopes
        ],
        "tenant_values": list(explained.tenant_values),
        "written_tenant_values": list(explained.written_values),
        **({"key_values": {k: list(v) for k, v in explained.key_values}} if explained.key_values else {}),
        **(
            {"written_key_values": {k: list(v) for k, v in explained.written_key_values}}
            if explained.written_key_values
            else {}
        ),
        **({"compared": explained.compared} if explained.compared else {}),
        "fingerprint": analysis.fingerprint or None,
        "analysis_error": analysis.error,
        "context": {
            "tenant": ctx.tenant_id,
            "user": ctx.user_id,
            "role": ctx.role,
            "unscoped": ctx.unscoped_reason,
            **({"keys": dict(ctx.keys)} if ctx.keys else {}),
        },
        "findings": [_finding_json(f) for f in explained.findings],
        "suppressed": [{**_finding_json(f), "reason": reason} for f, reason in explained.suppressed],
        "enforce_would_block": explained.would_block,
    }


def _canonical_texts(values: Sequence[str]) -> list[str]:
    """Tenant values as ``cross_tenant`` compares them (:func:`~tenantwatch.core.tenant_values.canonical`), each
    once: ``uuid.hex`` bound on SQLite and a dashed context UUID read alike (the JSON keeps them as bound)."""
    return list(dict.fromkeys(canonical(value) for value in values))


def _explained_text(explained: _Explained, label: str = "statement") -> str:
    analysis = explained.analysis
    ctx = explained.context
    item = explained.item
    out = [f"-- statement {item.number} " + "-" * 60, item.sql.strip(), ""]

    def row(label: str, value: str) -> None:
        out.append(f"  {label:<{max(16, len(label) + 2)}}{value}")  # a long label (key organization) keeps 2 spaces

    row("operation", analysis.operation)
    row("tables", or_dash(analysis.tables))
    tables = []
    for table, column in explained.tenant_columns.items():
        assumed = f", assumed: {label} {explained.assumed[table]} names it" if table in explained.assumed else ""
        tables.append(f"{table} ({column}{assumed})" if column else table)
    row("tenant tables", or_dash(tables))
    verdict: str = analysis.tenant_filter
    if analysis.error is not None:
        verdict += f" ({analysis.error})"
    row("tenant filter", verdict)
    if analysis.scopes:
        out.append("  scopes")
        width_scope = max(len(s.scope) for s in analysis.scopes)
        width_table = max(len(s.table) for s in analysis.scopes)
        for s in analysis.scopes:
            reason = f"  {s.reason}" if s.reason else ""
            verdict = f"{s.verdict} ({s.inherited_by})" if s.inherited_by else s.verdict
            if s.key:
                reason += f" [key {s.key}]"
            out.append(f"    {s.scope:<{width_scope}}  {s.table:<{width_table}}  {s.role:<5}  {verdict:<7}{reason}")
    row("tenant values", or_dash(_canonical_texts(explained.tenant_values)))
    if analysis.is_write:
        row("written values", or_dash(_canonical_texts(explained.written_values)))
    for entry in explained.compared:
        seen = ", ".join(
            part
            for part in (
                f"filters {or_dash(_canonical_texts(entry['values']))}" if entry["values"] else "",
                f"writes {or_dash(_canonical_texts(entry['written_values']))}" if entry["written_values"] else "",
            )
            if part
        )
        own = entry["context"]
        against = f"context {canonical(own)}" if own is not None else "no value in context: not compared"
        row(f"key {entry['key']}", f"{seen}; {against}")
    keys = "".join(f" {name}={canonical(value)}" for name, value in ctx.keys)
    tenant = canonical(ctx.tenant_id) if ctx.tenant_id else "-"
    context = f"tenant={tenant}{keys} user={ctx.user_id or '-'} role={ctx.role or '-'}"
    if ctx.unscoped_reason is not None:
        context += f" unscoped={ctx.unscoped_reason!r}"
    row("context", context)
    if item.returned_rows is not None or item.duration_ms is not None:
        rows = "-" if item.returned_rows is None else str(item.returned_rows)
        duration = "-" if item.duration_ms is None else f"{item.duration_ms:g} ms"
        row("measured", f"rows={rows} duration={duration}")
    row("fingerprint", analysis.fingerprint or "-")
    if not explained.findings and analysis.error is not None:
        row("findings", "unknown: the statement could not be analyzed, so no rule could judge it")
    elif not explained.findings:
        row("findings", "none")
    else:
        out.append("  findings")
        for finding in explained.findings:
            table = f" [{finding.table}]" if finding.table else ""
            out.append(f"    {finding.severity.upper():<9}{finding.rule}{table}: {finding.message}")
            out.append(f"    {'':<9}fingerprint {finding.fingerprint}")
    if explained.enforce:
        row("enforce mode", "would BLOCK this statement" if explained.would_block else "would let it run")
    if explained.suppressed:
        out.append("  suppressed")
        for finding, reason in explained.suppressed:
            out.append(f"    {finding.severity.upper():<9}{finding.rule}: {finding.message} (suppressed: {reason})")
    return "\n".join(out) + "\n"


def _status(status: int, explained: _Explained, fail_on: str) -> int:
    """Unreadable input (2) outranks statements that could not be analyzed (3), which outrank findings (1)."""
    if status == EXIT_USAGE:
        return status
    if explained.analysis.error is not None:
        return EXIT_UNANALYZED
    if status == EXIT_OK and _fails(explained, fail_on):
        return EXIT_FINDINGS
    return status


def _fails(explained: _Explained, fail_on: str) -> bool:
    if fail_on == "never":
        return False
    threshold = SEVERITIES.index(fail_on)
    return any(SEVERITIES.index(f.severity) >= threshold for f in explained.findings if f.severity in SEVERITIES)


def run(args: argparse.Namespace, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """Explain every input; returns the exit code."""
    if not [s for s in args.sql if s != "-"] and stdin.isatty():
        raise UsageError('give SQL as an argument, or pipe JSON lines ({"sql": ...}) on stdin')
    try:
        settings = load_settings(args.rules, profile=getattr(args, "profile", None))
    except ConfigError as exc:
        raise UsageError(str(exc), details={"issues": [issue.to_json() for issue in exc.issues]}) from exc
    extra_tables = _parse_tenant_tables(args.tenant_table)
    if extra_tables:
        default_column = settings.tenant_columns[0] if settings.tenant_columns else "organization_id"
        merged = dict(settings.tenant_tables)
        merged.update({t: c or default_column for t, c in extra_tables.items()})
        settings = settings.model_copy(update={"tenant_tables": merged})

    from tenantwatch.sql.analyzer import Analyzer

    analyzer = Analyzer(settings)
    system: str | None = None
    if args.database_url:
        system, learned = learn_tenant_tables(analyzer.tables, args.database_url)
        if not args.json:
            stderr.write(f"learned {learned} tenant table(s) from the {system} catalog\n")
    assumed = AssumedTables(analyzer.tables) if not args.database_url and settings.discover else None
    if not any(not analyzer.tables.is_root(table) for table in analyzer.tables.snapshot()):
        roots = " (tenant_keys names only root tables)" if analyzer.tables.snapshot() else ""
        unless = " unless the statement names its tenant column (then it is assumed tenant-scoped)" if assumed else ""
        stderr.write(
            f"note: no tenant-scoped tables are known{roots}, so a table reads as global{unless}; "
            "give tenant_tables in --rules, --database-url or --tenant-table\n"
        )

    status = EXIT_OK
    label = "statement" if [s for s in args.sql if s != "-"] else "line"
    keys = _keys_from_flags(getattr(args, "key", []) or [], settings)
    for item in _iter_inputs(args, stdin, keys):
        bad = item if isinstance(item, _BadInput) else None
        if isinstance(item, _Input):
            try:
                explained = _explain_one(item, analyzer, settings, system, assumed)
                report = (
                    json.dumps(_explained_json(explained), default=str)
                    if args.json
                    else _explained_text(explained, label)
                )
            except Exception as exc:  # one hostile input must not stop the others
                logger.debug("tenantwatch explain: input %d failed", item.number, exc_info=True)
                bad = _BadInput(item.number, f"cannot be explained: {type(exc).__name__}: {exc}")
            else:
                stdout.write(printable(report) + "\n")
                stdout.flush()
                if explained.newly_assumed:
                    stderr.write(
                        printable(
                            f"note: {label} {item.number} names the tenant column of "
                            f"{', '.join(explained.newly_assumed)}: assumed tenant-scoped (as discovery would find "
                            "it); declare it in tenant_tables or give --database-url to be sure\n"
                        )
                    )
                status = _status(status, explained, args.fail_on)
        if bad is not None:
            message = printable(f"{label} {bad.number}: {bad.error}")
            if args.json:
                stdout.write(json.dumps({"input": bad.number, "error": message}) + "\n")
            else:
                stdout.write(f"-- {message} (skipped)\n\n")
            stdout.flush()
            stderr.write(f"tenantwatch explain: {message}\n")
            status = EXIT_USAGE
    return status
