"""Statement analysis: parse once, cache by text, never raise.

:meth:`Analyzer.analyze` takes the SQL text a driver receives (any DB-API paramstyle) and returns a
:class:`~tenantwatch.sql.model.StatementAnalysis`. The path of a statement:

1. size check (``settings.analysis.max_statement_bytes``) and the exact-text cache (the hit for parameterized SQL);
2. normalization (:mod:`._normalize`): placeholders and, for DML, inline literals become ``$1..$n``; comments go;
3. the shape cache, keyed by the normalized text: statements that differ only in values share one analysis, and
   get their own literal values bound into ``filter_values``/``written_values``;
4. bracket depth check (``settings.analysis.max_depth``), then libpg_query's JSON parse tree (``pglast``), walked
   by :mod:`._scope`; when PostgreSQL's grammar rejects the text, the same text with its literals left inline, then
   sqlglot (:mod:`._fallback`, tighter size cap);
5. anything that fails gives operation ``UNKNOWN`` with ``error`` set: hostile SQL is input like any other.

Both caches are LRUs bounded by ``settings.analysis.cache_size`` entries and by ``settings.analysis.cache_bytes``
(half each, weighed as key plus estimated result); a statement over the size cap is never cached. They are dropped
when :attr:`TenantTables.version <tenantwatch.sql.tables.TenantTables.version>` changes.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import json
import logging
import operator
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pglast.parser

from tenantwatch.config import Settings
from tenantwatch.sql import _fallback
from tenantwatch.sql._cache import LRUCache
from tenantwatch.sql._fingerprint import fingerprint
from tenantwatch.sql._normalize import (
    Expansions,
    Normalized,
    NormalizeError,
    collapse_lists,
    distinct_positional,
    normalize,
    paren_depth,
    slim_for_parse,
)
from tenantwatch.sql._scope import Hierarchy, TooDeepError, Value, WalkResult, walk
from tenantwatch.sql.keyed import keyed_reads
from tenantwatch.sql.model import ScopeVerdict, StatementAnalysis, ValueSource
from tenantwatch.sql.tables import TenantTables

__all__ = [
    "FALLBACK_MAX_BARE_JOINS",
    "FALLBACK_MAX_BYTES",
    "FALLBACK_MAX_TOKENS",
    "MAX_TREE_CHARS",
    "SMALL_TREE_CHARS",
    "Analyzer",
]

logger = logging.getLogger(__name__)


def _json_loader() -> Callable[[str], Any]:
    """``orjson.loads`` when orjson is installed (about 3x faster on parse trees), else the standard library's."""
    try:
        return importlib.import_module("orjson").loads  # type: ignore[no-any-return]
    except ImportError:
        return json.loads


_loads = _json_loader()

FALLBACK_MAX_BYTES = 16_384
"""sqlglot is ~50x slower than libpg_query: statements longer than this are not retried with it."""

FALLBACK_MAX_TOKENS = 300
"""...nor statements of more words and symbols than this (sqlglot costs ~10 µs per token here): it keeps a cold
analysis that falls back within a few milliseconds."""

FALLBACK_MAX_BARE_JOINS = 5
"""...nor statements with more JOINs lacking an ON than this: sqlglot's time doubles with each one
(``a JOIN b JOIN c ...``: 4 ms at 8, seconds at 16)."""

MAX_TREE_CHARS = 150_000
"""A parse tree whose JSON is longer than this is not loaded nor walked (``UNKNOWN``, "too complex"): loading and
walking cost about 40 µs per KiB of it, so this bounds the analysis time whatever the statement."""

SMALL_TREE_CHARS = 50_000
"""The same bound for a statement of at most 16 KiB: such a statement is judged within
5 ms (about 2 ms of loading and walking at this size)."""
_SMALL_TEXT = 16_384

_JOIN_WORDS = re.compile(r"(?i)\b(?:(join)|on|using|cross|natural)\b")
"""JOIN (group 1 non-empty) and the words that give a join its condition or make it need none."""
_FALLBACK_TOKEN = re.compile(r"\w+|[^\w\s]")
_ESTIMATE_FROM = 8192
"""Longer texts (and texts longer than their token bound) have their tokens counted before parsing."""
_TREE_CHARS_PER_TOKEN = 20
"""Every token adds at least this many characters of parse tree: the tree bound as a token bound, checked before
parsing (parsing a statement whose tree is then refused costs as much as walking it)."""
_ENTRY_OVERHEAD = 200
"""Bytes counted per cache entry besides its key and its result (the dict slot, the tuple, the version)."""


@dataclass(frozen=True, slots=True)
class _Template:
    """The analysis of one normalized text, values still as ``$k`` references."""

    result: WalkResult | None
    fingerprint: str
    error: str | None = None
    literals_inline: bool = False
    """PostgreSQL rejected the text with ``$n`` for literals: parse the literal-bearing text instead."""
    expansions: Expansions | None = None
    """Parameters that stand for a collapsed list (see :func:`~tenantwatch.sql._normalize.collapse_lists`)."""


class Analyzer:
    """Analyze statements for tenant isolation (see the module docstring). Thread-safe."""

    def __init__(self, settings: Settings | None = None, tables: TenantTables | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.tables = tables if tables is not None else TenantTables(self.settings)
        bounds = self.settings.analysis
        self._max_bytes = bounds.max_statement_bytes
        self._max_depth = bounds.max_depth
        self._fallback_max_bytes = min(FALLBACK_MAX_BYTES, self._max_bytes)
        half = max(1, bounds.cache_bytes // 2)
        self._exact: LRUCache[str, tuple[int, StatementAnalysis]] = LRUCache(bounds.cache_size, half)
        self._shapes: LRUCache[str, tuple[int, _Template]] = LRUCache(bounds.cache_size, half)
        self._version = self.tables.version
        tables = self.tables
        self._hierarchy = (
            Hierarchy(tables.other_columns, tables.key_of, tables.root_key) if tables.hierarchical else None
        )

    # -- public --------------------------------------------------------------------------------------------------

    def analyze(self, sql: str) -> StatementAnalysis:
        """The analysis of ``sql``; never raises (operation ``UNKNOWN`` and ``error`` set instead)."""
        try:
            version = self.tables.version
            hit = self._exact.get(sql)
            if hit is not None and hit[0] == version:
                return hit[1]
            if version != self._version:
                self._exact.clear()
                self._shapes.clear()
                self._version = version
            text = sql if isinstance(sql, str) else _as_text(sql)
            analysis = self._analyze(text, version)
            if isinstance(sql, str) and not (analysis.error or "").startswith(_TOO_LARGE):
                self._exact.put(sql, (version, analysis), _weight(sql, analysis))
            return analysis
        except Exception as exc:  # the analysis must never break the caller
            logger.debug("tenantwatch: statement analysis failed", exc_info=True)
            return StatementAnalysis(operation="UNKNOWN", error=f"internal error: {type(exc).__name__}: {exc}")

    def clear_cache(self) -> None:
        """Forget every cached analysis."""
        self._exact.clear()
        self._shapes.clear()

    @property
    def cache_info(self) -> dict[str, int]:
        """Sizes, weights (bytes) and hit counts of both caches (for tests and benchmarks)."""
        return {
            "exact_size": len(self._exact),
            "exact_bytes": self._exact.bytes,
            "exact_hits": self._exact.hits,
            "shape_size": len(self._shapes),
            "shape_bytes": self._shapes.bytes,
            "shape_hits": self._shapes.hits,
        }

    # -- internals -----------------------------------------------------------------------------------------------

    def _analyze(self, sql: str, version: int) -> StatementAnalysis:
        size = len(sql)
        if size * 4 > self._max_bytes:
            size = len(sql.encode("utf-8", "surrogatepass"))
        if size > self._max_bytes:
            return _unknown(f"{_TOO_LARGE} ({size} bytes > {self._max_bytes})")
        if "\x00" in sql:
            return _unknown("statement contains a NUL byte")
        try:
            normalized = normalize(sql)
        except NormalizeError as exc:
            return _unknown(str(exc))
        cached = self._shapes.get(normalized.text)
        template = cached[1] if cached is not None and cached[0] == version else None
        if template is None:
            template = self._template(sql, normalized)
            self._shapes.put(normalized.text, (version, template), _template_weight(normalized.text, template))
        if template.literals_inline:
            return self._analyze_inline(sql, template.fingerprint)
        return _bind(template, normalized.sources)

    def _template(self, sql: str, normalized: Normalized) -> _Template:
        text = normalized.text
        collapsed, expansions = collapse_lists(text)
        fp = fingerprint(collapsed)  # the same fingerprint as the full list (see _fingerprint), for less work
        # collapsing keeps the bracket depth (a kept row or item is as deep as the ones cut), and is shorter
        depth = self._max_depth
        if (collapsed.count("(") + collapsed.count("[")) > depth and paren_depth(collapsed, depth) > depth:
            return _Template(None, fp, f"statement nested deeper than {self._max_depth} levels")
        slim = slim_for_parse(collapsed)
        tree_chars = _tree_chars(normalized)
        max_tokens = tree_chars // _TREE_CHARS_PER_TOKEN
        if len(slim) > min(_ESTIMATE_FROM, max_tokens):
            tokens = sum(1 for _ in itertools.islice(_FALLBACK_TOKEN.finditer(slim), max_tokens + 1))  # stops there
            if tokens > max_tokens:
                return _Template(None, fp, f"statement too complex to analyze (more than {max_tokens} tokens)")
        try:
            return _Template(self._parse_and_walk(slim, tree_chars), fp, expansions=expansions or None)
        except TooDeepError as exc:
            return _Template(None, fp, str(exc))
        except RecursionError:
            return _Template(None, fp, f"statement nested deeper than {self._max_depth} levels")
        except pglast.parser.ParseError as exc:
            pg_error = str(exc)
        if "stack depth limit exceeded" in pg_error:  # neither inline literals nor sqlglot get further
            return _Template(None, fp, f"statement nested deeper than the parser allows ({pg_error})")
        if (
            len(text) <= _ESTIMATE_FROM  # a long statement is not normalized and parsed a second time
            and normalized.literals
            and any(s.kind == "literal" for s in normalized.sources)
        ):
            try:
                pglast.parser.parse_sql_json(_encodable(normalize(sql, literals=False).text))
            except pglast.parser.ParseError:
                pass  # not a literal-placement problem: another dialect, or not SQL
            else:
                return _Template(None, fp, pg_error, literals_inline=True)
        return self._fallback(text, fp, pg_error)

    def _analyze_inline(self, sql: str, fp: str) -> StatementAnalysis:
        """PostgreSQL rejected ``$n`` in a literal's place (``SET x = 'y'``, custom ``type 'literal'``): parse the
        statement with its literals inline. The result is cached by exact text only."""
        normalized = normalize(sql, literals=False)
        try:
            result = self._parse_and_walk(normalized.text, _tree_chars(normalized))
        except TooDeepError as exc:
            return _unknown(str(exc), fp)
        except RecursionError:
            return _unknown(f"statement nested deeper than {self._max_depth} levels", fp)
        except pglast.parser.ParseError as exc:
            return _bind(self._fallback(normalized.text, fp, str(exc)), normalized.sources)
        return _bind(_Template(result, fp), normalized.sources)

    def _parse_and_walk(self, text: str, max_tree_chars: int = MAX_TREE_CHARS) -> WalkResult:
        raw = pglast.parser.parse_sql_json(_encodable(text))
        if len(raw) > max_tree_chars:
            raise TooDeepError(
                f"statement too complex to analyze (parse tree of {len(raw)} characters > {max_tree_chars})"
            )
        try:
            tree = _loads(raw)
        except RecursionError as exc:
            raise TooDeepError(f"statement nested deeper than {self._max_depth} levels") from exc
        except ValueError as exc:  # orjson refuses trees nested deeper than 1024
            raise TooDeepError(f"statement nested deeper than {self._max_depth} levels ({exc})") from exc
        stmts = tree.get("stmts") or []
        result = walk(
            stmts,
            column_for=self.tables.column_for,
            tenant_columns=self.tables.tenant_columns,
            max_depth=self._max_depth,
            has_sublinks='"SubLink"' in raw,
            fk_links=self.tables.fk_links,
            is_root=self.tables.is_root,
            hierarchy=self._hierarchy,
        )
        return self._with_keys(stmts, result)

    def _with_keys(self, stmts: list[Any], result: WalkResult) -> WalkResult:
        """``result`` with its lookups by key (only statements with an unfiltered read pay for the look)."""
        if result.operation != "SELECT" or not any(s.verdict == "missing" for s in result.scopes):
            return result
        keyed = keyed_reads(stmts, result.scopes, self.tables.keys_for)
        return dataclasses.replace(result, keyed=keyed) if keyed else result

    def _fallback(self, text: str, fp: str, pg_error: str) -> _Template:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._fallback_max_bytes:
            return _Template(None, fp, f"cannot parse: {pg_error} (too large for the fallback parser)")
        text = slim_for_parse(text)
        tokens = len(_FALLBACK_TOKEN.findall(text))
        if tokens > FALLBACK_MAX_TOKENS:
            return _Template(None, fp, f"cannot parse: {pg_error} (too many tokens for the fallback parser: {tokens})")
        words = _JOIN_WORDS.findall(text)
        bare = len(words) - 2 * words.count("")  # JOINs less ON / USING / CROSS / NATURAL
        if bare > FALLBACK_MAX_BARE_JOINS:
            return _Template(None, fp, f"cannot parse: {pg_error} (too many joins without ON for the fallback parser)")
        try:
            stmts = _fallback.parse(text)
            result = walk(
                stmts,
                column_for=self.tables.column_for,
                tenant_columns=self.tables.tenant_columns,
                max_depth=self._max_depth,
                fk_links=self.tables.fk_links,
                is_root=self.tables.is_root,
                hierarchy=self._hierarchy,
            )
            result = self._with_keys(stmts, result)
        except TooDeepError as exc:
            return _Template(None, fp, str(exc))
        except RecursionError:
            return _Template(None, fp, f"statement nested deeper than {self._max_depth} levels")
        except Exception as exc:
            return _Template(None, fp, f"cannot parse: {pg_error}; fallback: {exc}")
        return _Template(result, fp)


def _tree_chars(normalized: Normalized) -> int:
    """The parse-tree bound of a statement: :data:`SMALL_TREE_CHARS` if it was at most 16 KiB. Told from the
    normalized text alone (the shape cache's key), where each ``$n`` is at most 4 characters longer than what it
    replaced."""
    small = len(normalized.text) <= _SMALL_TEXT + 4 * len(normalized.sources)
    return SMALL_TREE_CHARS if small else MAX_TREE_CHARS


_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(text: str) -> str:
    """``text`` with lone surrogates (which no UTF-8 encoder accepts, and no PostgreSQL identifier can hold) as
    U+FFFD: the parser then judges the rest of the statement instead of failing on the encoding."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


_TOO_LARGE = "statement too large"


def _weight(sql: str, analysis: StatementAnalysis) -> int:
    """Estimated bytes an exact-cache entry holds: the key, and the result's strings and tuples."""
    values = len(analysis.filter_values) + len(analysis.written_values) + len(analysis.tables)
    return sys.getsizeof(sql) + _ENTRY_OVERHEAD + _result_weight(analysis.scopes, analysis.error, values)


def _result_weight(scopes: tuple[ScopeVerdict, ...], error: str | None, values: int = 0) -> int:
    size = 64 * values
    for scope in scopes:
        size += 120 + len(scope.scope) + len(scope.table) + len(scope.reason or "")
    return size + (len(error) if error else 0)


def _template_weight(text: str, template: _Template) -> int:
    result = template.result
    size = sys.getsizeof(text) + _ENTRY_OVERHEAD + 64 * len(template.expansions or ())
    if result is None:
        return size + len(template.error or "")
    values = len(result.filter_values) + len(result.written_values) + len(result.tables)
    return size + _result_weight(result.scopes, template.error, values)


def _as_text(sql: object) -> str:
    if isinstance(sql, bytes | bytearray | memoryview):
        return bytes(sql).decode("utf-8", "replace")
    return str(sql)


def _unknown(error: str, fp: str = "") -> StatementAnalysis:
    return StatementAnalysis(operation="UNKNOWN", fingerprint=fp, error=error)


def _source(value: Value, sources: tuple[ValueSource, ...]) -> ValueSource | None:
    if isinstance(value, str):
        return ValueSource(kind="literal", value=value)
    index = abs(value) - 1
    if not 0 <= index < len(sources):
        return None
    source = sources[index]
    if value > 0:
        return source
    if source.kind == "literal" and source.value is not None:  # -$k of an inline literal
        text = source.value
        return ValueSource(kind="literal", value=text[1:] if text.startswith("-") else "-" + text)
    return None


_FIELDS = operator.attrgetter("kind", "key", "value")
"""What :class:`ValueSource` equality compares, as a tuple (its dataclass ``__hash__`` runs in Python)."""


def _bind_values(
    values: tuple[Value, ...], sources: tuple[ValueSource, ...], expansions: Expansions | None = None
) -> tuple[ValueSource, ...]:
    if len(values) == 1 and expansions and isinstance(values[0], int) and values[0] > 0 and values[0] in expansions:
        stride, count = expansions[values[0]]
        members = sources[values[0] - 1 : values[0] - 1 + stride * count : stride]
        if distinct_positional(members, stride):  # one long list of parameters: nothing to deduplicate
            return members
    found: dict[tuple[object, ...], ValueSource] = {}  # keyed by the fields: hashed in C, not by ValueSource
    for value in values:
        spread = expansions.get(abs(value)) if expansions and isinstance(value, int) else None
        if spread is not None:
            assert isinstance(value, int)
            stride, count = spread
            if value > 0:  # $k, $k+stride, ...: a slice of the sources
                members = sources[value - 1 : value - 1 + stride * count : stride]
                found.update(zip(map(_FIELDS, members), members, strict=True))  # a repeat keeps its place
                continue
            step = -stride
            for member in range(value, value + step * count, step):
                source = _source(member, sources)
                if source is not None:
                    found.setdefault(_FIELDS(source), source)
            continue
        source = _source(value, sources)
        if source is not None:
            found.setdefault(_FIELDS(source), source)
    return tuple(found.values())


def _bind(template: _Template, sources: tuple[ValueSource, ...]) -> StatementAnalysis:
    result = template.result
    if result is None:
        return _unknown(template.error or "not analyzed", template.fingerprint)
    return StatementAnalysis(
        operation=result.operation,
        tables=result.tables,
        tenant_tables=result.tenant_tables,
        scopes=result.scopes,
        filter_values=_bind_values(result.filter_values, sources, template.expansions),
        written_values=_bind_values(result.written_values, sources, template.expansions),
        fingerprint=template.fingerprint,
        main_table=result.main_table,
        key_filter_values=_bind_keyed(result.key_filter_values, sources, template.expansions),
        key_written_values=_bind_keyed(result.key_written_values, sources, template.expansions),
        keyed=result.keyed,
    )


def _bind_keyed(
    keyed: tuple[tuple[str, tuple[Value, ...]], ...], sources: tuple[ValueSource, ...], expansions: Expansions | None
) -> tuple[tuple[str, tuple[ValueSource, ...]], ...]:
    """:func:`_bind_values` per finer tenant key (a tenant hierarchy; empty without one)."""
    if not keyed:
        return ()
    return tuple((key, _bind_values(values, sources, expansions)) for key, values in keyed)
