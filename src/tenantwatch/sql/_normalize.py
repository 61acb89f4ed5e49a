"""Rewrite a statement's placeholders and inline literals to ``$1..$n`` before parsing.

Every DB-API paramstyle SQLAlchemy emits becomes a PostgreSQL ``$n`` parameter, and (for DML) every inline literal
too, so that the normalized text is the cache key shared by all statements that differ only in values. What each
``$n`` stood for is kept in :attr:`Normalized.sources`: the parameter's key (name, or 0-based position) or the
literal's text.

The scanner is a single regular expression that only stops at the tokens that matter (comments, quoted strings and
identifiers, dollar quotes, placeholders, numbers, ``::`` casts and ``%%`` escapes); everything else is copied. Each
token pattern consumes unterminated input to the end, so the scan is linear even on hostile text.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
from dataclasses import dataclass

from tenantwatch.sql.model import ValueSource

__all__ = [
    "MAX_LITERALS",
    "MAX_TOKENS",
    "SCAN_TOKENS",
    "SMALL_SCAN_TOKENS",
    "Expansions",
    "NormalizeError",
    "Normalized",
    "collapse_lists",
    "distinct_positional",
    "mask_literals",
    "normalize",
    "paren_depth",
    "slim_for_parse",
    "slim_select_lists",
]


class NormalizeError(ValueError):
    """The text cannot be a SQL statement (unterminated quote or comment)."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """A statement with ``$1..$n`` in place of its placeholders (and, if ``literals``, its inline literals)."""

    text: str
    """The rewritten statement, comments dropped: what is parsed, and the second-level cache key."""
    sources: tuple[ValueSource, ...]
    """``sources[k - 1]`` is what ``$k`` stood for."""
    literals: bool
    """Whether inline literals were replaced too (only for DML statements, outside type contexts)."""


_SPECIAL = re.compile(r"""--|/\*|['"$?]|%[(%sbt]|:[:A-Za-z_]""")
"""Where a token can start (``::`` is a cast, skipped): the scan jumps from one to the next inside the regular
expression engine, so text between tokens (``a - b``, ``x / 2``, ``a % b``) costs no Python step."""

MAX_TOKENS = 10_000
"""Placeholders a statement without quotes may have (rewritten in one split): past this the statement is refused
(``UNKNOWN``). A statement with quotes goes through the full scan, bounded by :data:`SMALL_SCAN_TOKENS` and
:data:`SCAN_TOKENS`; literals of either kind by :data:`MAX_LITERALS`."""

MAX_LITERALS = 500
"""Inline literals, quoted names and comments one statement may have (placeholders are not counted: a batch
insert of thousands of parameters stays analyzable). Each costs a few microseconds of Python work to rewrite, so
past this the statement is refused (``UNKNOWN``) as soon as the scan has counted them: this keeps the analysis of
any statement within milliseconds."""

SMALL_SCAN_TOKENS = 1_200
"""The token bound of the full scan (a statement with quotes) for a statement of at most 16 KiB: each token is a
few microseconds of Python work, and such a statement is judged within 5 ms. Placeholders of a statement without
quotes (a batch insert, with or without a comment) are rewritten in one split and only bound by :data:`MAX_TOKENS`."""
_SMALL_TEXT = 16_384
SCAN_TOKENS = 5_000
"""The same for a longer statement (within 50 ms)."""

_PLACEHOLDER_KINDS = frozenset({"dparam", "pyfmt", "fmt", "named", "qmark"})


def _too_many_literals(count: int | None = None) -> NormalizeError:
    """The refusal; ``count`` when known (the scan stops counting at the cap)."""
    found = f"{count} > {MAX_LITERALS}" if count is not None else f"more than {MAX_LITERALS}"
    return NormalizeError(f"too many inline literals, quoted names and comments ({found})")


_CACHED_TEXT = 64
"""Literal and parameter names up to this length share one :class:`ValueSource` object (the caches hold no
long text)."""

_TOKEN = re.compile(
    r"""
      (?P<lc>--[^\n]*)
    | (?P<bc>/\*)
    | (?P<str>'(?:[^']++|'')*+(?:'|\Z))
    | (?P<dq>"(?:[^"]++|"")*+(?:"|\Z))
    | (?P<dparam>\$(?P<dnum>\d+))
    | (?P<dollar>\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$)
    | (?P<pct>%%)
    | (?P<pyfmt>%\((?P<pyname>[^()]*)\)[sbt])
    | (?P<fmt>%[sbt])
    | (?P<named>:(?P<name>[A-Za-z_]\w*))
    | (?P<qmark>\?(?P<qnum>\d*))
    """,
    re.VERBOSE | re.DOTALL,
)
"""Tokens that start with a character of :data:`_SPECIAL`, matched at that position only."""

_E_STRING = re.compile(r"[eE]'(?:[^'\\]++|\\.|'')*+(?:'|\Z)", re.DOTALL)

_NUMBER = re.compile(r"\d(?<![\w$.]\d)\d*+(?:\.\d*+)?(?:[eE][+-]?\d++)?(?![\w$])")
"""Numeric constants (``.5`` without a leading digit is left inline)."""

_DML = re.compile(r"\s*\(*\s*(?:select|insert|update|delete|with|values|table|merge|explain|declare|copy)\b", re.I)
"""Statements whose literals are normalized; others (SET, DDL, ...) keep theirs, and are cached by exact text."""

_E_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_E_MAP = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _e_unescape(body: str) -> str:
    return _E_ESCAPE.sub(lambda m: _E_MAP.get(m.group(1), m.group(1)), body).replace("''", "'")


def _block_comment_end(sql: str, start: int) -> int:
    """End of the (nestable) block comment opening at ``start``.

    Linear: the next ``/*`` and the next ``*/`` are each searched again only once the scan has passed them, so
    every character is looked at a bounded number of times however deep the nesting (``/* /* ... */ */``)."""
    depth = 0
    pos = start
    opening = sql.find("/*", pos)
    closing = sql.find("*/", pos + 2)
    while True:
        if closing < 0:
            raise NormalizeError("unterminated /* comment")
        if 0 <= opening < closing:
            depth += 1
            pos = opening + 2
        else:
            depth -= 1
            pos = closing + 2
            if depth == 0:
                return pos
        if 0 <= opening < pos:
            opening = sql.find("/*", pos)
        if closing < pos:
            closing = sql.find("*/", pos)


@functools.lru_cache(maxsize=4096)
def _cached_param(key: str | int) -> ValueSource:
    return ValueSource(kind="param", key=key)


@functools.lru_cache(maxsize=4096)
def _cached_literal(value: str) -> ValueSource:
    return ValueSource(kind="literal", value=value)


_POSITIONAL = [ValueSource(kind="param", key=index) for index in range(4096)]
_DOLLARS = [f"${index}" for index in range(4097)]
"""``_DOLLARS[k] == "$k"``; both lists grow on demand up to :data:`MAX_TOKENS` (shared, so a batch of thousands
of parameters costs no object per parameter)."""


def _positional(count: int) -> list[ValueSource]:
    """The sources of positional parameters ``0 .. count - 1``."""
    if count > len(_POSITIONAL):
        _POSITIONAL.extend(ValueSource(kind="param", key=index) for index in range(len(_POSITIONAL), count))
    return _POSITIONAL[:count]


def distinct_positional(members: tuple[ValueSource, ...], stride: int) -> bool:
    """Whether ``members`` are the positional parameters ``k, k + stride, ...`` (so no two are equal): compared
    with the shared objects in C, element by element, instead of hashing each."""
    if not members:
        return True
    first = members[0].key
    if members[0].kind != "param" or type(first) is not int or first < 0:
        return False
    return members == tuple(_POSITIONAL[first : first + stride * len(members) : stride])


def _dollars(first: int, count: int) -> list[str]:
    """``["$first", ..., "$(first + count - 1)"]``."""
    if first + count > len(_DOLLARS):
        _DOLLARS.extend(f"${index}" for index in range(len(_DOLLARS), first + count))
    return _DOLLARS[first : first + count]


def _param(key: str | int) -> ValueSource:
    if type(key) is int and 0 <= key < len(_POSITIONAL):
        return _POSITIONAL[key]
    if isinstance(key, str) and len(key) > _CACHED_TEXT:
        return ValueSource(kind="param", key=key)
    return _cached_param(key)


def _literal(value: str) -> ValueSource:
    if len(value) > _CACHED_TEXT:
        return ValueSource(kind="literal", value=value)
    return _cached_literal(value)


def _is_ident_char(sql: str, index: int) -> bool:
    """Whether ``sql[index]`` can be part of an identifier (``[\\w$\\x80-\\uffff]``), without a regex call."""
    if index < 0:
        return False
    char = sql[index]
    return char.isalnum() or char in "_$" or "\x80" <= char <= "\uffff"


_TYPE_WORDS = frozenset(
    [
        "interval",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "timetz",
        "zone",
        "json",
        "jsonb",
        "uuid",
        "inet",
        "cidr",
        "macaddr",
        "macaddr8",
        "bytea",
        "money",
        "point",
        "line",
        "lseg",
        "box",
        "path",
        "polygon",
        "circle",
        "bit",
        "varbit",
        "numeric",
        "decimal",
        "int",
        "int2",
        "int4",
        "int8",
        "integer",
        "smallint",
        "bigint",
        "real",
        "float",
        "float4",
        "float8",
        "boolean",
        "bool",
        "text",
        "varchar",
        "char",
        "character",
        "varying",
        "name",
        "oid",
        "regclass",
        "regtype",
        "regproc",
        "xml",
        "tsvector",
        "tsquery",
        "precision",
    ]
)
"""``interval '1 day'``: PostgreSQL only accepts a string constant after a type name, so such literals stay."""

_TYPMOD_WORDS = frozenset(
    [
        "varchar",
        "char",
        "character",
        "varying",
        "nchar",
        "nvarchar",
        "numeric",
        "decimal",
        "dec",
        "bit",
        "varbit",
        "time",
        "timestamp",
        "timetz",
        "timestamptz",
        "interval",
        "float",
        "double",
        "string",
        "binary",
        "varbinary",
    ]
)
"""``varchar(255)``, ``numeric(10, 2)``: type modifiers must stay integer constants."""

_OPEN_INTEGERS = re.compile(r"\(\s*+(\d++)(?:\s*+,\s*+(\d++))?")
"""``(20`` or ``(10, 2``: where a type modifier can be (led by ``(``, so the engine skips the rest fast)."""

_LOOK_BACK = 40
"""Characters looked at before a literal for a type name: a fixed window, so each check costs O(1)."""


def _word_before(sql: str, end: int) -> str:
    """The lower-cased identifier that ends at ``end`` once spaces are skipped (``""`` if none, or if longer than
    the look-back window)."""
    low = max(0, end - _LOOK_BACK)
    while end > low and sql[end - 1].isspace():
        end -= 1
    start = end
    while start > low and (sql[start - 1].isalnum() or sql[start - 1] == "_"):
        start -= 1
    if start == end or (start > 0 and _is_ident_char(sql, start - 1)):
        return ""
    return sql[start:end].lower()


def _type_before_string(sql: str, start: int) -> bool:
    """Whether the string constant at ``start`` follows a type name or ``)`` (``interval '1 day'``)."""
    end = start
    while end > 0 and sql[end - 1] in " \t\r\n":
        end -= 1
    if end == 0:
        return False
    char = sql[end - 1]
    return char == ")" or ((char.isalnum() or char == "_") and _word_before(sql, end) in _TYPE_WORDS)


def _typmod_starts(sql: str) -> frozenset[int]:
    """Where the integer type modifiers of ``varchar(20)``, ``numeric(10, 2)`` start: one pass over the text, so
    each number's check is a set lookup (a regular expression search per number made long lists slow)."""
    found: set[int] = set()
    for match in _OPEN_INTEGERS.finditer(sql):
        if _word_before(sql, match.start()) in _TYPMOD_WORDS:
            found.add(match.start(1))
            if match.group(2) is not None:
                found.add(match.start(2))
    return frozenset(found)


def _tokens(sql: str, numbers: bool) -> list[tuple[str, int, int, re.Match[str] | None]]:
    """The interesting tokens of ``sql`` as ``(kind, start, end, match)``, in order; comment and dollar-quote
    bodies are skipped whole. ``numbers``: include numeric constants (kind ``num``, match ``None``)."""
    tokens: list[tuple[str, int, int, re.Match[str] | None]] = []
    pos = 0
    literals = 0
    special = _SPECIAL.search
    token_at = _TOKEN.match
    max_tokens = SMALL_SCAN_TOKENS if len(sql) <= _SMALL_TEXT else SCAN_TOKENS
    while True:
        found = special(sql, pos)
        if found is None:
            break
        at = found.start()
        if found.group() == "::":  # a cast
            pos = at + 2
            continue
        if len(tokens) >= max_tokens:
            raise NormalizeError(f"statement has more than {max_tokens} tokens")
        match = token_at(sql, at)
        if match is None:
            pos = at + 1
            continue
        kind = match.lastgroup or ""
        start, end = at, match.end()
        if kind in ("dparam", "dollar") and _is_ident_char(sql, at - 1):
            pos = at + 1  # ``a$1`` is an identifier
            continue
        if kind == "named" and at > 0 and (sql[at - 1] == ":" or _is_ident_char(sql, at - 1)):
            pos = at + 1
            continue
        if kind == "bc":
            end = _block_comment_end(sql, at)
        elif kind == "dollar":
            close = sql.find(match.group(), end)
            if close < 0:
                raise NormalizeError("unterminated dollar-quoted string")
            end = close + len(match.group())
        elif (
            kind == "str"
            and at > 0
            and sql[at - 1] in "eEnNbBxX&"
            and not _is_ident_char(sql, at - 2 - (sql[at - 1] == "&"))
        ):
            prefix = sql[at - 1]
            if prefix in "eE":
                match = _E_STRING.match(sql, at - 1)
                assert match is not None
                kind, start, end = "estr", at - 1, match.end()
            elif prefix == "&":
                if at > 1 and sql[at - 2] in "uU":
                    kind, start = "pstr", at - 2
            else:
                kind, start = "pstr", at - 1
        if kind not in _PLACEHOLDER_KINDS:
            literals += 1
            if literals > MAX_LITERALS:
                raise _too_many_literals()
        tokens.append((kind, start, end, match))
        pos = end
    if not numbers:
        return tokens
    merged: list[tuple[str, int, int, re.Match[str] | None]] = []
    index = 0
    for number in _NUMBER.finditer(sql):
        start = number.start()
        while index < len(tokens) and tokens[index][2] <= start:
            merged.append(tokens[index])
            index += 1
        if index < len(tokens) and tokens[index][1] <= start:
            continue  # inside a string, comment or placeholder
        merged.append(("num", start, number.end(), None))
        literals += 1
        if literals > MAX_LITERALS:
            raise _too_many_literals()
        if len(merged) > max_tokens:
            raise NormalizeError(f"statement has more than {max_tokens} tokens")
    merged.extend(tokens[index:])
    return merged


_STRONG = frozenset({"pyfmt", "fmt", "dparam"})


_PARAM_CAST = re.compile(
    r"(\$\d+)\s*::\s*[A-Za-z_][\w.]*(?:\s*\(\s*\d+(?:\s*,\s*\d+)*\s*\))?(?:\s*\[\s*\])*"
    r"(?![\w.\[(]|\s+(?:precision|varying|with|without|zone|year|month|day|hour|minute|second)\b)",
    re.IGNORECASE,
)
"""``$1::INTEGER``, ``$2::VARCHAR(20)``, ``$3::int[]`` (what SQLAlchemy's psycopg and asyncpg dialects emit) are
dropped from the normalized text: a cast value is the same value, and the parse tree gets much smaller.
Multi-word types (``double precision``, ``timestamp with time zone``) are left alone."""


_CAST_AT_START = re.compile(_PARAM_CAST.pattern[len(r"(\$\d+)") :], re.IGNORECASE)

_NEEDS_SCAN = re.compile(r"""['"\-/]""")
"""Quotes and comment starts: the statement needs the full scan."""
_QUOTES = re.compile(r"""['"]""")
_NAMED = r"|:(?<![:\w$\x80-\uffff]:)[A-Za-z_]\w*"
"""``:name``, not after ``:`` (a cast) nor an identifier character, as the full scan reads it (led by ``:``, so
that every alternative of the split starts with a known character and the engine skips fast to the next one)."""
_PLACEHOLDER_SPLIT = re.compile(r"(%(?:\([^()]*+\)[sbt]|[sbt%])?|[?$]\d*" + _NAMED + ")")
"""Placeholder candidates; led by a character class so the engine scans fast. A lone ``%``/``$`` goes back."""
_IDENT_DOLLAR = re.compile(r"\w\$")
_PLACEHOLDER_NUMBER_SPLIT = re.compile(
    r"(%(?:\([^()]*+\)[sbt]|[sbt%])?|[?$]\d*|\d(?<![\w$.]\d)\d*+(?:\.\d*+)?(?:[eE][+-]?\d++)?(?![\w$])" + _NAMED + ")"
)
_PLACEHOLDER_CHARS = re.compile(r"[%?$]|:[A-Za-z_]")
_DOLLAR_QUOTE = re.compile(r"\$(?!\d)")


def _normalize_plain(sql: str, literals: bool, *, comments_gone: bool = False) -> Normalized | None:
    """Fast path for the common case (an ORM statement, or raw SQL with numbers): no quote, no comment. One split
    on the placeholders (and numbers); ``None`` when the full scan is needed."""
    if (_QUOTES if comments_gone else _NEEDS_SCAN).search(sql) is not None:
        return None
    if "$" in sql and (_DOLLAR_QUOTE.search(sql) is not None or _IDENT_DOLLAR.search(sql) is not None):
        return None
    numbers = literals and _NUMBER.search(sql) is not None
    escapes = sql.count("%%")  # ``%%`` escapes count as literals: each is a step of the loop below
    if escapes > MAX_LITERALS:
        raise _too_many_literals(escapes)
    if numbers:
        # numbers are the only literals here (no quotes); stop counting at the cap
        room = MAX_LITERALS - escapes
        if sum(1 for _ in itertools.islice(_NUMBER.finditer(sql), room + 1)) > room:
            raise _too_many_literals()
    if not numbers and _PLACEHOLDER_CHARS.search(sql) is None:
        return Normalized(text=sql, sources=(), literals=literals)
    parts = (_PLACEHOLDER_NUMBER_SPLIT if numbers else _PLACEHOLDER_SPLIT).split(sql)
    if len(parts) > 2 * MAX_TOKENS:
        raise NormalizeError(f"statement has more than {MAX_TOKENS} tokens")
    if not numbers:
        uniform = _normalize_uniform(sql, parts, literals)
        if uniform is not None:
            return uniform
    strong = any(len(t) > 1 and (t[0] == "$" or (t[0] == "%" and t != "%%")) for t in parts[1::2])
    sources: list[ValueSource] = []
    position = 0
    offset = len(parts[0])
    typmods = _typmod_starts(sql) if numbers else frozenset()
    for index in range(1, len(parts), 2):
        token = parts[index]
        start = offset
        offset += len(token) + len(parts[index + 1])
        first = token[0]
        if first.isdigit():
            if start in typmods:
                continue  # ``varchar(20)``: a type modifier stays
            sources.append(_literal(token))
            parts[index] = f"${len(sources)}"
            continue
        if len(token) == 1 and first != "?":
            continue  # a modulus operator or a lone dollar sign
        if first == "%":
            if token == "%%":
                parts[index] = "%"
                continue
            if token[1] == "(":
                sources.append(_param(token[2:-2]))
            else:
                sources.append(_param(position))
                position += 1
        elif first == "$":
            sources.append(_param(int(token[1:]) - 1))
        elif strong:  # ``?`` is an operator, ``:name`` stays, when another style is in use
            continue
        elif first == ":":
            sources.append(_param(token[1:]))
        elif len(token) > 1:
            sources.append(_param(int(token[1:]) - 1))
        else:
            sources.append(_param(position))
            position += 1
        parts[index] = f"${len(sources)}"
        following = parts[index + 1]
        if not numbers and following.startswith("::"):
            cast = _CAST_AT_START.match(following)
            if cast is not None:
                parts[index + 1] = following[cast.end() :]
    text = "".join(parts)
    if numbers and "::" in text:  # a cast's type modifier may have been split off: strip on the whole text
        text = _PARAM_CAST.sub(r"\1", text)
    return Normalized(text=text, sources=tuple(sources), literals=literals)


_UNIFORM_FROM = 32
"""Statements with at least this many placeholders try :func:`_normalize_uniform` first."""


def _normalize_uniform(sql: str, parts: list[str], literals: bool) -> Normalized | None:
    """A statement whose placeholders are all ``%s``, ``?``, ``$n``, ``%(name)s`` or ``:name`` (a batch insert,
    a long ``IN`` list), rewritten with list operations instead of a Python step per placeholder; else ``None``."""
    tokens = parts[1::2]
    count = len(tokens)
    if count < _UNIFORM_FROM:
        return None
    first = tokens[0]
    if first in ("%s", "?"):
        if tokens.count(first) != count:
            return None
        sources = _positional(count)
    elif first.startswith("%("):
        if sum(1 for t in tokens if t[:2] == "%(") != count:
            return None
        sources = [_param(t[2:-2]) for t in tokens]
    elif first[0] == ":":
        if sum(1 for t in tokens if t[0] == ":") != count:
            return None
        sources = [_param(t[1:]) for t in tokens]
    elif first[0] == "$" and len(first) > 1:
        if "".join(tokens).count("$") != count or "$" in tokens:  # each token is ``$`` and digits
            return None
        keys = list(map(int, [t[1:] for t in tokens]))
        if min(keys) < 1 or max(keys) > MAX_TOKENS:
            return None
        shared = _positional(max(keys) + 1)
        sources = [shared[k - 1] for k in keys]
    else:
        return None
    parts[1::2] = _dollars(1, count)
    text = "".join(parts)
    if "::" in text:
        text = _PARAM_CAST.sub(r"\1", text)
    return Normalized(text=text, sources=tuple(sources), literals=literals)


_COMMENT_OR_QUOTE = re.compile(r"""--|/\*|['"]""")


def _without_comments(sql: str) -> str | None:
    """``sql`` with each comment as one space, when no quote is outside a comment (an ORM statement with a
    ``/* app=... */`` tag); ``None`` otherwise. A Python step per comment only, so the placeholders of the rest
    go through the fast path in one split."""
    out: list[str] = []
    pos = 0
    count = 0
    search = _COMMENT_OR_QUOTE.search
    while (found := search(sql, pos)) is not None:
        mark = found.group()
        if len(mark) == 1:
            return None
        count += 1
        if count > MAX_LITERALS:
            raise _too_many_literals()
        out.append(sql[pos : found.start()])
        out.append(" ")
        if mark == "--":
            newline = sql.find("\n", found.end())
            pos = len(sql) if newline < 0 else newline
        else:
            pos = _block_comment_end(sql, found.start())
    if not out:
        return None
    out.append(sql[pos:])
    return "".join(out)


def normalize(sql: str, *, literals: bool = True) -> Normalized:
    """Rewrite ``sql`` (see the module docstring). Raises :class:`NormalizeError` on an unterminated quote/comment."""
    literals = literals and _DML.match(sql) is not None
    plain = _normalize_plain(sql, literals)
    if plain is None and ("--" in sql or "/*" in sql):
        bare = _without_comments(sql)
        if bare is not None:
            plain = _normalize_plain(bare, literals, comments_gone=True)
    return plain if plain is not None else _normalize_scan(sql, literals)


def _normalize_scan(sql: str, literals: bool) -> Normalized:
    """The general path: every token kind, literals included."""
    tokens = _tokens(sql, literals)
    strong = any(token[0] in _STRONG for token in tokens)
    typmods = _typmod_starts(sql) if literals else frozenset()
    out: list[str] = []
    sources: list[ValueSource] = []
    pos = 0
    fmt_pos = 0
    q_pos = 0
    for kind, start, end, match in tokens:
        token = sql[start:end]
        replacement: str | None = None
        if kind in ("lc", "bc"):
            replacement = " "
        elif kind in ("str", "estr", "pstr", "dq"):
            closer = '"' if kind == "dq" else "'"
            if len(token) < 2 or token[-1] != closer or (kind == "estr" and _odd_backslashes(token)):
                raise NormalizeError("unterminated quoted " + ("identifier" if kind == "dq" else "string"))
            if kind != "dq" and literals and not _type_before_string(sql, start):
                value = _string_value(kind, token)
                if strong:
                    value = value.replace("%%", "%")
                sources.append(_literal(value))
                replacement = f"${len(sources)}"
        elif kind == "dollar":
            assert match is not None
            tag = match.group()
            body = sql[start + len(tag) : end - len(tag)]
            if literals and not _type_before_string(sql, start):
                sources.append(_literal(body))
                replacement = f"${len(sources)}"
        elif kind == "dparam":
            assert match is not None
            sources.append(_param(int(match.group("dnum")) - 1))
            replacement = f"${len(sources)}"
        elif kind == "pct":
            replacement = "%"
        elif kind == "pyfmt":
            assert match is not None
            sources.append(_param(match.group("pyname")))
            replacement = f"${len(sources)}"
        elif kind == "fmt":
            sources.append(_param(fmt_pos))
            fmt_pos += 1
            replacement = f"${len(sources)}"
        elif kind == "named":
            assert match is not None
            if not strong:
                sources.append(_param(match.group("name")))
                replacement = f"${len(sources)}"
        elif kind == "qmark":
            assert match is not None
            if not strong:
                number = match.group("qnum")
                if number:
                    key = int(number) - 1
                else:
                    key = q_pos
                    q_pos += 1
                sources.append(_param(key))
                replacement = f"${len(sources)}"
        elif kind == "num" and literals and start not in typmods:
            sources.append(_literal(token))
            replacement = f"${len(sources)}"
        if replacement is None:
            out.append(sql[pos:end])
        else:
            out.append(sql[pos:start])
            out.append(replacement)
        pos = end
    out.append(sql[pos:])
    text = "".join(out)
    if sources and "::" in text:
        text = _PARAM_CAST.sub(r"\1", text)
    return Normalized(text=text, sources=tuple(sources), literals=literals)


def _odd_backslashes(token: str) -> bool:
    """An E-string like ``E'abc\\'`` whose final quote is escaped is unterminated."""
    count = 0
    index = len(token) - 2
    while index >= 0 and token[index] == "\\":
        count += 1
        index -= 1
    return count % 2 == 1


def _string_value(kind: str | None, token: str) -> str:
    if kind == "estr":
        return _e_unescape(token[2:-1])
    if kind == "pstr":
        body = token[token.index("'") + 1 : -1]
        return body.replace("''", "'")
    return token[1:-1].replace("''", "'")


_NOT_BRACKETS = re.compile(r"[^()\[\]]++")
_BRACKET_STEP = str.maketrans({"(": "\x01", "[": "\x01", ")": "\x02", "]": "\x02"})
_STEP = (0, 1, -1)


def paren_depth(text: str, at_most: int | None = None) -> int:
    """Deepest nesting of ``()``/``[]`` in ``text`` (quoted text counted too: an upper bound; a closing bracket
    with nothing open is ignored). Computed with C-level iterators, never a Python step per bracket. With
    ``at_most``, a cheaper upper bound may be returned when it is not over ``at_most``."""
    brackets = _NOT_BRACKETS.sub("", text)
    if not brackets:
        return 0
    steps = brackets.translate(_BRACKET_STEP).encode("ascii")
    levels = list(itertools.accumulate(map(_STEP.__getitem__, steps)))
    lowest = min(levels)
    if lowest >= 0:  # no closing bracket without an open one: the deepest level is the depth
        return max(levels)
    if at_most is not None and max(levels) - lowest <= at_most:
        return max(levels) - lowest  # a bound of the depth, enough to tell it is not over ``at_most``
    floors = itertools.accumulate(levels, min, initial=0)
    next(floors)
    deepest: int = max(map(operator.sub, levels, map(min, floors, itertools.repeat(0))))
    return max(0, deepest)


_NOT_PLAIN = re.compile(r"""[()$;'"]""")
_SLIM_MIN_BYTES = 300
"""Shorter texts are parsed as they are: their select lists are short, and the scan would cost more than it saves."""
_SLIM_MAX_BYTES = 16_384
_SLIM_MAX_LIST = 4_096


def _word_at(low: str, start: int, word: str) -> bool:
    """Whether ``word`` at ``start`` of ``low`` stands alone (not part of a longer identifier)."""
    end = start + len(word)
    before = low[start - 1] if start > 0 else " "
    after = low[end] if end < len(low) else " "
    return not (before.isalnum() or before in "_$") and not (after.isalnum() or after in "_$")


def _find_word(low: str, word: str, start: int, end: int) -> int:
    index = low.find(word, start, end)
    while index >= 0 and not _word_at(low, index, word):
        index = low.find(word, index + 1, end)
    return index


def slim_select_lists(text: str) -> str:
    """Replace plain select lists (no parenthesis, parameter, quote) by ``1`` before parsing a normalized text.

    Such a list cannot hold a subquery or a value, so it does not matter to the analysis; leaving it out makes the
    parse tree much smaller (an ORM select lists every mapped column). A list right after ``(`` (a derived
    table, a CTE, a subquery) is kept: which tenant and key columns a derived table outputs decides provenance.
    ``INSERT ... SELECT`` is left alone: its select list holds the written values. Bounded: texts over 16 KiB and
    lists over 4 KiB are left as they are.
    """
    if not _SLIM_MIN_BYTES <= len(text) <= _SLIM_MAX_BYTES:
        return text
    low = text.lower()
    if "insert" in low:
        return text
    out: list[str] = []
    pos = 0
    size = len(low)
    index = _find_word(low, "select", 0, size)
    end = -1
    while index >= 0:
        start = index + 6
        if end < start:  # the next FROM, searched again only once passed: linear however many SELECTs
            end = _find_word(low, "from", start, size)
            if end < 0:
                break
        if end > start + _SLIM_MAX_LIST:
            index = _find_word(low, "select", start, size)
            continue
        nested = low[:index].rstrip().endswith("(")  # a derived table's or CTE's list: its output columns count
        if (
            not nested
            and end > start + 3
            and _NOT_PLAIN.search(low, start, end) is None
            and "into" not in low[start:end]
        ):
            out.append(text[pos:start])
            out.append(" 1 ")
            pos = end
        index = _find_word(low, "select", end, size)
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


_IN_PARAM = re.compile(r"\b(not\s+)?in\s+(\$\d+)(?!\d)", re.IGNORECASE)
"""``IN %s`` with a tuple parameter (psycopg2 adapts a tuple to a list): not PostgreSQL syntax as such."""


def _in_param(match: re.Match[str]) -> str:
    return f"<> ALL({match.group(2)})" if match.group(1) else f"= ANY({match.group(2)})"


def slim_for_parse(text: str) -> str:
    """The normalized text made cheaper to parse without changing what the analysis sees (plain select lists
    become ``1``, see :func:`slim_select_lists`), and ``IN $n`` (psycopg2's tuple adaptation) written as
    ``= ANY($n)`` so that PostgreSQL's grammar accepts it."""
    if " $" in text and _IN_PARAM.search(text) is not None:
        text = _IN_PARAM.sub(_in_param, text)
    return slim_select_lists(text)


_IN_LIST = re.compile(r"(?i:in)(?<!\w..)\s*\(\s*\$(\d+)(?:\s*,\s*\$\d+){15,}+\s*\)")
"""``IN ($a, $a+1, ...)`` of at least 16 bare parameters."""
_VALUES_ROWS = re.compile(r"\b[vV][aA][lL][uU][eE][sS]\s*(\([^()]*+\)(?:\s*,\s*\([^()]*+\)){3,}+)")
"""``VALUES (...), (...), ...``: at least 4 rows without nested parentheses."""
_ROW = re.compile(r"\([^()]*+\)")
_DPARAM = re.compile(r"(?<![\w$])\$(\d+)")

Expansions = dict[int, tuple[int, int]]
"""``{k: (stride, count)}``: after :func:`collapse_lists`, ``$k`` stands for ``$k, $k+stride, ...`` (count of them)."""


def collapse_lists(text: str) -> tuple[str, Expansions]:
    """A normalized text with long ``IN`` lists of parameters cut to their first one and runs of ``VALUES`` rows of
    one shape cut to their first row, and what each kept ``$k`` stands for. The scope walk judges one row or one
    item exactly as it judges all of them, and the parse tree stays small (``$k`` are numbered in order of
    appearance, so the items of such a list are consecutive)."""
    if "$" not in text:
        return text, {}
    expansions: Expansions = {}
    out: list[str] = []
    pos = 0
    lower = text.lower()
    if " in" in lower or "in(" in lower:
        for match in _IN_LIST.finditer(text):
            first = int(match.group(1))
            group = match.group()
            count = group.count("$")
            last = _DPARAM.match(group, group.rindex("$"))
            if last is None or int(last.group(1)) != first + count - 1:
                continue
            out.append(text[pos : match.start()])
            out.append(f"IN (${first})")
            pos = match.end()
            expansions[first] = (1, count)
    if pos:
        out.append(text[pos:])
        text = "".join(out)
        out, pos = [], 0
        lower = text.lower()
    if "values" in lower:
        for match in _VALUES_ROWS.finditer(text):
            group = match.group(1)  # rows without nested parentheses: each "(" starts one
            count = group.count("(")
            head, tail = group[: group.index(")") + 1], group[group.rindex("(") :]
            shapes = _DPARAM.sub("$", group)
            if shapes.count(_DPARAM.sub("$", head)) != count:
                continue  # rows of different shapes
            params = [int(k) for k in _DPARAM.findall(head)]
            width = len(params)
            if width and int(_DPARAM.findall(tail)[0]) != params[0] + width * (count - 1):
                continue
            out.append(text[pos : match.start(1)])
            out.append(head)
            pos = match.end(1)
            for k in params:
                expansions[k] = (width, count)
    if pos:
        out.append(text[pos:])
        text = "".join(out)
    return text, expansions


_MASKED_KINDS = frozenset({"str", "estr", "pstr", "dollar", "num"})


_MASK_NUMBER = re.compile(r"(?<![\w$])\d[\d.]*(?:[eE][+-]?\d+)?")
"""Numeric constants, for the fallback of :func:`mask_literals` (one linear pass)."""


def mask_literals(sql: str) -> str:
    """``sql`` with every literal (strings of every quoting, dollar quotes, numbers) replaced by ``?`` and comments
    dropped, whatever the statement (``SET``, DDL and ``ALTER ... PASSWORD`` included); placeholders and quoted
    identifiers stay. What a statement looks like when it leaves the process. Never raises: text that cannot be
    scanned (an unterminated dollar quote) is masked from the first quote on."""
    try:
        tokens = _tokens(sql, True)
    except NormalizeError:  # unterminated, or past the scan caps: keep only what surely holds no literal
        cut = min((i for i in (sql.find("'"), sql.find("$"), sql.find("--"), sql.find("/*")) if i >= 0), default=-1)
        head = _MASK_NUMBER.sub("?", sql if cut < 0 else sql[:cut])
        return head if cut < 0 else head + "?"
    if not tokens:
        return sql
    out: list[str] = []
    pos = 0
    for kind, start, end, _match in tokens:
        if kind in _MASKED_KINDS:
            out.append(sql[pos:start])
            out.append("?")
        elif kind in ("lc", "bc"):
            out.append(sql[pos:start])
            out.append(" ")
        else:
            out.append(sql[pos:end])
        pos = end
    out.append(sql[pos:])
    return "".join(out)
