"""Test-data detection on writes: scan the values an INSERT or UPDATE writes, record masked matches, mask literals.

For INSERT and UPDATE statements only (SELECTs and every other statement cost nothing: the caller checks the
operation of the cached analysis first), :meth:`TestDataScanner.scan` looks at

* the bound parameter values (a dict, a tuple/list, or the list of either of ``executemany``): strings only, at most
  :data:`MAX_VALUES` of them per statement, each scanned up to :data:`MAX_LENGTH` characters;
* the string literals in the statement text (``'...'``, ``E'...'``; comments, quoted identifiers and dollar quotes
  are skipped), when it has any;

against ``rules.test_data.patterns`` (:class:`~tenantwatch.core.patterns.TestDataPatterns`, compiled
once per settings). Only when something matches does it find out which column each value goes to, by parsing the
statement (``INSERT`` column lists, ``VALUES`` rows, ``INSERT ... SELECT`` lists, ``SET`` targets, ``ON CONFLICT DO
UPDATE``): a matching value that is not written (a ``WHERE`` parameter of an UPDATE) is not test-data contamination
and is dropped; when the statement cannot be parsed every match counts, labelled with its parameter name (``$n``
for positional ones).

The result (:class:`TestDataFound`) holds ``table.column=mask`` entries for ``tenantwatch.db.test_data``, the
statement text with every matching literal replaced by its mask (for ``db.statement`` / ``db.query.text``), and
:meth:`TestDataFound.scrub`, which masks the raw values wherever else they could appear (tenant values, an error
message). Nothing here keeps or returns a raw value outside the caller's stack.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tenantwatch import attributes as A
from tenantwatch.config import Settings
from tenantwatch.rules.test_data import patterns_for

__all__ = ["MAX_ENTRIES", "MAX_LENGTH", "MAX_VALUES", "WRITES", "TestDataFound", "TestDataScanner"]

logger = logging.getLogger(__name__)

WRITES = frozenset({"INSERT", "UPDATE"})
"""Operations whose written values are scanned."""

MAX_VALUES = 1000
"""String values scanned per statement (parameters, then literals); the rest are not looked at."""

MAX_LENGTH = 4096
"""Characters of each value scanned."""

MAX_ENTRIES = 16
"""Distinct ``table.column=mask`` entries recorded per statement."""

_MAX_STATEMENT = 100_000
"""Longer statement texts are not scanned for literals (the analyzer does not analyze them either)."""

_LITERALS = re.compile(
    r"""
      --[^\n]*+
    | /\*(?:[^*]++|\*(?!/))*+(?:\*/|\Z)
    | "(?:[^"]++|"")*+(?:"|\Z)
    | (?P<e>(?<![\w$])[eE])'(?P<ebody>(?:[^'\\]++|\\.|'')*+)(?:'|\Z)
    | '(?P<body>(?:[^']++|'')*+)(?:'|\Z)
    | (?<![\w$])\$(?P<tag>[A-Za-z_]\w*)?\$
    """,
    re.VERBOSE | re.DOTALL,
)
"""Comments, quoted identifiers, dollar-quote openers and string literals: only the last are of interest."""

_E_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_E_MAP = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


@dataclass(frozen=True, slots=True)
class TestDataFound:
    """What a scan found: masked entries, the masked statement text (``None``: no literal was masked), and the
    raw value -> mask map used by :meth:`scrub` (kept on the caller's stack only, never recorded)."""

    __test__ = False  # not a pytest test class, despite the name

    entries: tuple[str, ...]
    statement: str | None
    masks: Mapping[str, str]

    def scrub(self, text: str) -> str:
        """``text`` with every matched raw value replaced by its mask (longest values first)."""
        for raw in sorted(self.masks, key=len, reverse=True):
            if raw and raw in text:
                text = text.replace(raw, self.masks[raw])
        return text

    def scrub_values(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """Tenant values, with any that is (or holds) a matched raw value masked."""
        if not any(raw in value for value in values for raw in self.masks if raw):
            return values
        return tuple(self.scrub(value) for value in values)

    def apply(self, span: Any, attributes: dict[str, Any]) -> None:
        """Put the findings into ``attributes`` (about to be set on ``span``): the entries, the masked statement
        under the statement keys the span carries, and scrubbed tenant values."""
        if self.entries:
            attributes[A.DB_TEST_DATA] = self.entries
        if self.statement is not None:
            present = getattr(span, "attributes", None) or {}
            for key in (A.DB_STATEMENT, A.DB_QUERY_TEXT):
                if key in present or key in attributes:
                    attributes[key] = self.statement
        for key in (A.DB_TENANT_VALUES, A.DB_WRITTEN_TENANT_VALUES):
            values = attributes.get(key)
            if isinstance(values, tuple):
                attributes[key] = self.scrub_values(values)


@dataclass(slots=True)
class _Match:
    key: str | int | None
    """Parameter name or position; ``None`` for a literal."""
    value: str
    mask: str
    span: tuple[int, int] | None = None
    """Position of the literal token in the statement text."""


class TestDataScanner:
    """Scans the written values of INSERT/UPDATE statements against the test-data patterns of one settings."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, settings: Settings) -> None:
        self.patterns = patterns_for(settings)

    def scan(self, statement: str, parameters: Any, executemany: bool) -> TestDataFound | None:
        """Masked matches of one INSERT/UPDATE execution, ``None`` when nothing matches (the common case)."""
        matches = self._parameter_matches(parameters, executemany)
        budget = MAX_VALUES - len(matches)
        if "'" in statement and len(statement) <= _MAX_STATEMENT and self._may_match(statement):
            matches += self._literal_matches(statement, budget)
        if not matches:
            return None
        return self._found(statement, matches)

    # --- scanning -------------------------------------------------------------------------------------------------

    def _may_match(self, statement: str) -> bool:
        """Whether a literal of ``statement`` can match: one pass over the whole text, unless escapes (``''``,
        backslashes) could hide a match that only the unescaped literal shows."""
        if "''" in statement or "\\" in statement:
            return True
        return self.patterns.search(statement)

    def _parameter_matches(self, parameters: Any, executemany: bool) -> list[_Match]:
        matches: list[_Match] = []
        patterns = self.patterns
        items: Iterable[tuple[Any, Any]]
        if not executemany and type(parameters) is dict and len(parameters) <= MAX_VALUES:
            items = parameters.items()  # the common case, without the generator
        else:
            items = _string_parameters(parameters, executemany)
        for key, value in items:
            if type(value) is not str:
                continue
            text = value[:MAX_LENGTH]
            if patterns.search(text):
                masked = patterns.mask(text)
                if masked is not None:
                    matches.append(_Match(key, value, masked))
        return matches

    def _literal_matches(self, statement: str, budget: int) -> list[_Match]:
        matches: list[_Match] = []
        mask = self.patterns.mask
        search = _LITERALS.search
        position = 0
        while budget > 0:
            token = search(statement, position)
            if token is None:
                break
            position = token.end()
            body = token.group("body")
            ebody = token.group("ebody")
            if body is not None:
                value = body.replace("''", "'")
            elif ebody is not None:
                value = _E_ESCAPE.sub(lambda m: _E_MAP.get(m.group(1), m.group(1)), ebody).replace("''", "'")
            else:
                if token.group().startswith("$"):  # a dollar-quoted body: skipped whole, not scanned
                    closing = statement.find(token.group(), position)
                    if closing < 0:
                        break
                    position = closing + len(token.group())
                continue
            budget -= 1
            masked = mask(value[:MAX_LENGTH])
            if masked is not None:
                matches.append(_Match(None, value, masked, token.span()))
        return matches

    # --- labelling and masking ------------------------------------------------------------------------------------

    def _found(self, statement: str, matches: list[_Match]) -> TestDataFound | None:
        written = _written_columns(statement) if len(statement) <= _MAX_STATEMENT else None  # no huge cache keys
        entries: dict[str, None] = {}
        masks: dict[str, str] = {}
        for match in matches:
            masks[match.value] = match.mask
            label = _label(match, written)
            if label is not None and len(entries) < MAX_ENTRIES:
                entries[f"{label}={match.mask}"] = None
        masked_statement = _masked_statement(statement, [m for m in matches if m.span is not None])
        if not entries and masked_statement is None:
            return None
        return TestDataFound(tuple(entries), masked_statement, masks)


def _string_parameters(parameters: Any, executemany: bool) -> Iterator[tuple[str | int, str]]:
    """(key, value) of the string values among the parameters, at most :data:`MAX_VALUES`."""
    if parameters is None:
        return
    sets: Iterable[Any] = parameters if executemany and isinstance(parameters, list | tuple) else (parameters,)
    seen = 0
    for param_set in sets:
        items: Iterable[tuple[str | int, Any]]
        if isinstance(param_set, Mapping):
            items = param_set.items()
        elif isinstance(param_set, list | tuple):
            items = enumerate(param_set)
        else:
            continue
        for key, value in items:
            seen += 1
            if seen > MAX_VALUES:
                return
            if type(value) is str:
                yield key, value


@dataclass(frozen=True, slots=True)
class _Written:
    """Where each written value of a statement goes (from its parse tree)."""

    table: str | None
    params: dict[str | int, str]
    """Parameter key -> column, for the parameters whose values are written."""
    literals: dict[str, str]
    """Literal text -> column, for the literals that are written."""


@functools.lru_cache(maxsize=256)
def _written_columns(statement: str) -> _Written | None:
    """The written columns of an INSERT/UPDATE (``None`` when the statement cannot be parsed). Only called for
    statements with a match, so the parse cost is paid for those alone; cached by text."""
    try:
        import json

        import pglast.parser

        from tenantwatch.sql._normalize import normalize

        normalized = normalize(statement)
        tree = json.loads(pglast.parser.parse_sql_json(normalized.text))
        stmts = tree.get("stmts") or []
        if len(stmts) != 1:
            return None
        node = stmts[0].get("stmt") or {}
    except Exception:
        logger.debug("tenantwatch: cannot map test-data values to columns", exc_info=True)
        return None
    by_number: dict[int, str] = {}
    table: str | None = None
    if "InsertStmt" in node:
        insert = node["InsertStmt"]
        table = _relation(insert.get("relation"))
        columns = [target.get("ResTarget", {}).get("name") for target in insert.get("cols") or ()]
        select = (insert.get("selectStmt") or {}).get("SelectStmt") or {}
        for row in select.get("valuesLists") or ():
            for column, value in zip(columns, (row.get("List") or {}).get("items") or (), strict=False):
                _assign(by_number, value, column)
        for column, target in zip(columns, select.get("targetList") or (), strict=False):
            _assign(by_number, (target.get("ResTarget") or {}).get("val"), column)
        conflict = ((insert.get("onConflictClause") or {}).get("targetList")) or ()
        _assign_targets(by_number, conflict)
    elif "UpdateStmt" in node:
        update = node["UpdateStmt"]
        table = _relation(update.get("relation"))
        _assign_targets(by_number, update.get("targetList") or ())
    else:
        return None
    params: dict[str | int, str] = {}
    literals: dict[str, str] = {}
    for number, column in by_number.items():
        if not 0 < number <= len(normalized.sources):
            continue
        source = normalized.sources[number - 1]
        if source.kind == "param" and source.key is not None:
            params[source.key] = column
        elif source.kind == "literal" and source.value is not None:
            literals.setdefault(source.value, column)
    return _Written(table, params, literals)


def _relation(relation: Any) -> str | None:
    if not isinstance(relation, dict) or not relation.get("relname"):
        return None
    name = str(relation["relname"])
    schema = relation.get("schemaname")
    return f"{schema}.{name}" if schema else name


def _assign_targets(by_number: dict[int, str], targets: Iterable[Any]) -> None:
    for target in targets:
        res = (target or {}).get("ResTarget") or {}
        _assign(by_number, res.get("val"), res.get("name"))


def _assign(by_number: dict[int, str], tree: Any, column: Any) -> None:
    """Every ``$n`` inside ``tree`` is written to ``column``."""
    if not isinstance(column, str):
        return
    stack = [tree]
    steps = 0
    while stack and steps < 10_000:
        steps += 1
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("ParamRef")
            if isinstance(ref, dict) and isinstance(ref.get("number"), int):
                by_number.setdefault(ref["number"], column)
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _label(match: _Match, written: _Written | None) -> str | None:
    """``table.column`` of a matched value; ``None`` when the parse shows it is not written."""
    if written is None:
        if match.key is None:
            return "literal"
        return match.key if isinstance(match.key, str) else f"${match.key + 1}"
    column = written.literals.get(match.value) if match.key is None else written.params.get(match.key)
    if column is None:
        return None
    return f"{written.table}.{column}" if written.table else column


def _masked_statement(statement: str, literals: list[_Match]) -> str | None:
    if not literals:
        return None
    parts: list[str] = []
    position = 0
    for match in sorted(literals, key=lambda m: m.span or (0, 0)):
        assert match.span is not None
        start, end = match.span
        parts.append(statement[position:start])
        parts.append("'" + match.mask.replace("'", "''") + "'")
        position = end
    parts.append(statement[position:])
    return "".join(parts)
