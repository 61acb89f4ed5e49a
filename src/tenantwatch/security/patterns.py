"""Attack patterns in requests: SQL injection, XSS, path traversal, command injection.

Bounded by construction: each value is cut to ``max_bytes`` before anything looks at it, a cheap character test
skips values that cannot match, and every regular expression is linear (no nested quantifiers, no backtracking over
unbounded alternations). Query values are URL-decoded twice (double encoding is a classic evasion).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote_plus

__all__ = ["SCANNED_HEADERS", "query_pairs", "scan", "scan_value"]

SCANNED_HEADERS = ("user-agent", "referer", "x-forwarded-host", "x-original-url", "cookie")
"""Headers scanned besides the path and query string (never ``authorization``)."""

_PATTERNS: tuple[tuple[str, re.Pattern[str], frozenset[str]], ...] = (
    (
        "sqli",
        re.compile(
            r"(?:'|\"|\b)\s*(?:or|and)\s+(?:'[^']{0,20}'|\d{1,10})\s*=\s*(?:'[^']{0,20}'?|\d{1,10})"
            r"|\bunion\s+(?:all\s+)?select\b"
            r"|;\s*(?:drop|delete|insert|update|alter|truncate)\s+\w"
            r"|'\s*(?:--|#)"
            r"|\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d"
            r"|\bor\s+1\s*=\s*1\b",
            re.IGNORECASE,
        ),
        frozenset("'\";=-(# "),
    ),
    (
        "xss",
        re.compile(
            r"<\s*script\b|javascript\s*:|\bon(?:error|load|click|mouseover|focus)\s*=|<\s*(?:iframe|svg|img)\b[^>]{0,100}\bon\w{1,20}\s*=",
            re.IGNORECASE,
        ),
        frozenset("<:="),
    ),
    (
        "traversal",
        re.compile(r"(?:\.\.[/\\]){1,}|[/\\]\.\.(?:[/\\]|$)|/etc/passwd\b|\bwin\.ini\b|%2e%2e[/\\%]", re.IGNORECASE),
        frozenset("./\\%"),
    ),
    (
        "cmd",
        re.compile(
            r"(?:;|\|\|?|&&|`|\$\()\s*(?:cat|ls|id|whoami|uname|curl|wget|nc|bash|sh|rm|ping|powershell)\b",
            re.IGNORECASE,
        ),
        frozenset(";|&`$"),
    ),
)


def scan_value(value: str, *, max_bytes: int = 512) -> list[str]:
    """Kinds of attack pattern found in one value."""
    value = value[:max_bytes]
    chars = set(value)
    return [kind for kind, pattern, trigger in _PATTERNS if not trigger.isdisjoint(chars) and pattern.search(value)]


def query_pairs(query_string: str, *, max_values: int, max_bytes: int) -> list[tuple[str, str]]:
    """The first ``max_values`` name/value pairs of a query string (never raises, bounded work)."""
    fields = query_string[: max_bytes * max_values].split("&", max_values)[:max_values]
    return parse_qsl("&".join(fields), keep_blank_values=True)


def _decoded(value: str, max_bytes: int) -> str:
    value = value[: max_bytes * 3]
    once = unquote_plus(value)
    return unquote_plus(once) if "%" in once else once


def scan(
    path: str, query_string: str, headers: Iterable[tuple[str, str]], *, max_bytes: int = 512, max_values: int = 64
) -> tuple[str, ...]:
    """``kind:location`` for every pattern found: ``sqli:query.id``, ``traversal:path``, ``xss:header.referer``."""
    found: list[str] = []
    for kind in scan_value(_decoded(path, max_bytes), max_bytes=max_bytes):
        found.append(f"{kind}:path")
    if query_string:
        for name, value in query_pairs(query_string, max_values=max_values, max_bytes=max_bytes):
            for kind in scan_value(_decoded(value, max_bytes), max_bytes=max_bytes):
                found.append(f"{kind}:query.{name[:64]}")
    for name, value in headers:
        if name in SCANNED_HEADERS:
            for kind in scan_value(value, max_bytes=max_bytes):
                found.append(f"{kind}:header.{name}")
    return tuple(dict.fromkeys(found))
