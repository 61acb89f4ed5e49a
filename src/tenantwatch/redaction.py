"""What leaves the process: exported strings capped, statement literals, bound values and secrets stripped.

Both layers use these functions: the instrumentation on the spans it touches before they end (db span status, the
statement, server span query strings), the span processor on everything it forwards and logs (the last line of
defence for spans of other instrumentations and exception events recorded by the application's own spans).

* :func:`cap` cuts a string to ``limit`` characters and says so (``…[cut 123 chars]``), so a 10 MB bound value
  costs a few KB on every span, event and log record it appears on.
* :func:`mask_statement` replaces every literal of a statement by ``?`` (see
  :func:`tenantwatch.sql._normalize.mask_literals`).
* :func:`scrub_db_error` keeps what a database error says (the constraint, the type, the relation) and drops what it
  quotes: the server's ``DETAIL`` (``Failing row contains (…)``, ``Key (email)=(…)``), ``LINE``/``CONTEXT`` excerpts
  of the statement, quoted input values, and SQLAlchemy's ``[SQL: …]`` (masked) and ``[parameters: …]`` sections.
* :func:`redact_query` replaces the value of every query-string field whose name contains a sensitive word.
* :func:`safe_url` is a database or OTLP URL as messages may show it (password and ``password=`` parameter as
  ``***``); :func:`hide_url_secrets` masks every URL in a message and the secrets of the URL it is about. Every
  command and exporter message that names a URL goes through them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import unquote_plus

from opentelemetry.util.types import AttributeValue

__all__ = [
    "DEFAULT_REDACT_QUERY_KEYS",
    "REDACTED",
    "cap",
    "cap_attributes",
    "cap_value",
    "hide_url_secrets",
    "looks_like_db_error",
    "mask_statement",
    "redact_query",
    "redact_target",
    "redact_url",
    "safe_url",
    "scrub_db_error",
]

REDACTED = "REDACTED"
"""What a redacted query-string value becomes (the word OpenTelemetry's own URL redaction writes)."""

DEFAULT_REDACT_QUERY_KEYS: tuple[str, ...] = (
    "token",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "code",
    "auth",
    "session",
    "signature",
    "sig",
    "credential",
    "jwt",
    "otp",
)
"""Query-string fields whose name contains one of these words (case-insensitive) have their value redacted."""


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters plus a marker naming how many were cut; unchanged when it fits."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[cut {len(text) - limit} chars]"


def cap_value(value: AttributeValue, limit: int) -> AttributeValue:
    """An attribute value with every string in it capped (sequences keep their other items)."""
    if isinstance(value, str):
        return cap(value, limit)
    if isinstance(value, Sequence) and any(isinstance(item, str) and len(item) > limit for item in value):
        return tuple(cap(item, limit) if isinstance(item, str) else item for item in value)
    return value


def _too_long(value: object, limit: int) -> bool:
    if isinstance(value, str):
        return len(value) > limit
    if isinstance(value, tuple | list):
        return any(isinstance(item, str) and len(item) > limit for item in value)
    return False


def cap_attributes(attributes: Mapping[str, AttributeValue], limit: int) -> dict[str, AttributeValue] | None:
    """A copy of ``attributes`` with every string capped, or ``None`` when every string already fits (no copy)."""
    if not any(_too_long(value, limit) for value in attributes.values()):
        return None
    return {key: cap_value(value, limit) for key, value in attributes.items()}


_CACHED_STATEMENT_CHARS = 2048
"""Statements up to this length have their masked text cached (1024 entries: a few MB at most)."""


@functools.lru_cache(maxsize=1024)
def _mask_cached(statement: str) -> str:
    from tenantwatch.sql._normalize import mask_literals

    return mask_literals(statement)


def mask_statement(statement: str) -> str:
    """``statement`` with its literals as ``?`` and its comments dropped (cached for short statements)."""
    if len(statement) <= _CACHED_STATEMENT_CHARS:
        return _mask_cached(statement)
    from tenantwatch.sql._normalize import mask_literals

    return mask_literals(statement)


# --- database errors ------------------------------------------------------------------------------------------

_DROPPED_LINE = re.compile(r"^\s*(?:DETAIL|CONTEXT|QUERY|WHERE|LINE \d+|STATEMENT)\b.*$|^\s*\^\s*$", re.MULTILINE)
"""Server lines that quote row values or the statement (PostgreSQL's DETAIL, CONTEXT, LINE n and its caret)."""
_SQL_SECTION = re.compile(r"\[SQL: (?P<sql>.*?)\](?=\n\[parameters: |\n\(Background on this error|\n|\Z)", re.DOTALL)
_PARAMETERS_SECTION = re.compile(r"\[(?:parameters|SQL parameters): [^\n]*")
_SINGLE_QUOTED = re.compile(r"'(?:[^'\n]|'')*'")
_QUOTED_INPUT = re.compile(r'(?P<lead>(?::|\bnear|\bat or near|\bvalue|\btoken)\s*)"(?:[^"\n]|"")*"')
"""A double-quoted value after ``:``/``near``: ``invalid input syntax for type uuid: "…"``, ``near "…"``."""
_KEY_VALUES = re.compile(r"\)=\((?:[^()\n]|\([^()\n]*\))*\)")
"""``Key (email)=(a@b.c)``: the values part."""
_DB_MARKERS = ("[SQL: ", "[parameters: ", "\nDETAIL:", "Failing row contains")


def looks_like_db_error(text: str) -> bool:
    """Whether an exception text (message, stack trace, status description) carries a database error's parts."""
    return any(marker in text for marker in _DB_MARKERS)


def scrub_db_error(message: str) -> str:
    """A database error message without the values it quotes (see the module docstring). Never raises."""
    try:
        text = _SQL_SECTION.sub(lambda m: f"[SQL: {mask_statement(m.group('sql'))}]", message)
        text = _PARAMETERS_SECTION.sub("[parameters: (not shown)]", text)
        text = _DROPPED_LINE.sub("", text)
        text = _KEY_VALUES.sub(")=(?)", text)
        text = _SINGLE_QUOTED.sub("'?'", text)
        text = _QUOTED_INPUT.sub(lambda m: f'{m.group("lead")}"?"', text)
        return re.sub(r"\n{2,}", "\n", text).strip()
    except Exception:  # a scrubber that fails must still not let the text out
        return "(database error, message not shown)"


# --- query strings --------------------------------------------------------------------------------------------


def _sensitive(name: str, keys: Iterable[str]) -> bool:
    low = unquote_plus(name).lower()
    return any(key in low for key in keys)


def redact_query(query: str, keys: Sequence[str] = DEFAULT_REDACT_QUERY_KEYS) -> str:
    """``query`` (``a=1&token=…``) with the value of every field whose name contains one of ``keys`` redacted."""
    if not query or not keys:
        return query
    lowered = tuple(key.lower() for key in keys)
    parts = query.split("&")
    changed = False
    for index, part in enumerate(parts):
        name, sep, value = part.partition("=")
        if sep and value and _sensitive(name, lowered):
            parts[index] = f"{name}={REDACTED}"
            changed = True
    return "&".join(parts) if changed else query


def redact_target(target: str, keys: Sequence[str] = DEFAULT_REDACT_QUERY_KEYS) -> str:
    """A request target or URL (``/path?a=1&token=…#f``) with its query string redacted by key."""
    path, sep, rest = target.partition("?")
    if not sep:
        return target
    query, hash_sep, fragment = rest.partition("#")
    return f"{path}?{redact_query(query, keys)}{hash_sep}{fragment}"


def redact_url(url: str, keys: Sequence[str] = DEFAULT_REDACT_QUERY_KEYS) -> str:
    """:func:`redact_target` plus credentials in the authority (``https://user:pw@host``) removed."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        if "@" in authority:
            authority = "REDACTED:REDACTED@" + authority.rsplit("@", 1)[1]
        url = f"{scheme}{sep}{authority}{slash}{tail}"
    return redact_target(url, keys)


# --- URLs in messages -------------------------------------------------------------------------------------------

HIDDEN = "***"
"""What a password becomes in a URL shown to a person (SQLAlchemy's ``render_as_string(hide_password=True)`` form)."""

_USERINFO = re.compile(r"^(?P<user>[^:/?#@]*):(?P<password>[^@]*)@")
_SECRET_PARAM = re.compile(
    r"(?P<name>(?:^|(?<=[?&;\s]))[^=&;\s?#]*(?:password|passwd|pwd|secret|token)[^=&;\s?#]*=)(?P<value>[^&;\s#]*)",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;)\]]")
"""A URL in running text, without the punctuation that follows it (``... of postgresql://h/db: refused``)."""


def safe_url(url: str) -> str:
    """``url`` as it may be shown: the password of ``user:password@`` and the value of every ``password=`` (or
    ``passwd``, ``pwd``, ``secret``, ``token``) query parameter as ``***``; the rest as given. Plain text, so it
    works without SQLAlchemy and for OTLP endpoints (``http://user:pw@collector:4318``) too."""
    scheme, sep, rest = url.partition("://")
    if sep:
        rest = _USERINFO.sub(lambda m: f"{m.group('user')}:{HIDDEN}@" if m.group("password") else m.group(0), rest)
        url = f"{scheme}{sep}{rest}"
    path, qsep, query = url.partition("?") if sep else ("", "", url)  # no scheme: a libpq "key=value" string?
    query = _SECRET_PARAM.sub(lambda m: m.group("name") + HIDDEN if m.group("value") else m.group(0), query)
    return f"{path}{qsep}{query}"


def _secrets(url: str) -> set[str]:
    from urllib.parse import quote, unquote_plus

    found: set[str] = set()
    _scheme, sep, rest = url.partition("://")
    match = _USERINFO.match(rest) if sep else None
    if match and match.group("password"):
        found.add(match.group("password"))
    query = url.partition("?")[2] if sep else url
    found.update(m.group("value") for m in _SECRET_PARAM.finditer(query) if m.group("value"))
    for secret in list(found):
        found.update({unquote_plus(secret), quote(unquote_plus(secret), safe="")})
    return {secret for secret in found if secret and secret != HIDDEN}


def hide_url_secrets(message: str, url: str | None = None) -> str:
    """``message`` with every URL in it shown as :func:`safe_url` shows it, and the password (and secret query
    parameters) of ``url`` replaced by ``***`` wherever a library quoted them on their own."""
    text = _URL_IN_TEXT.sub(lambda m: safe_url(m.group(0)), message)
    if url:
        for secret in sorted(_secrets(url), key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
    return text
