"""Request values kept for one request, to notice them verbatim inside SQL text (``injection_signal``).

SQLAlchemy binds parameters, so a request value appears in a string literal of a statement's text only when the SQL
was built by string formatting: that is the signal. The store is per request and bounded (``max_request_values``
values of at most ``max_value_bytes``); values shorter than ``min_length`` (default 4) or purely numeric are
skipped, because they occur in SQL text by chance (``LIMIT 20``). Values are never exported: findings name the
source (``query.q``).
"""

from __future__ import annotations

import re

from tenantwatch.security.patterns import query_pairs

__all__ = ["RequestValues"]

_LITERAL = re.compile(r"'(?:[^']|'')*'")
_MAX_SQL = 100_000


class RequestValues:
    """Source name -> value, for one request."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._items)

    @classmethod
    def from_request(
        cls,
        query_string: str,
        path_params: dict[str, str],
        *,
        min_length: int = 4,
        max_values: int = 64,
        max_bytes: int = 512,
    ) -> RequestValues:
        store = cls()
        items = store._items
        candidates = [(f"path.{k}", v) for k, v in path_params.items()]
        if query_string:
            candidates += [
                (f"query.{k[:64]}", v)
                for k, v in query_pairs(query_string, max_values=max_values * 2, max_bytes=max_bytes)
            ]
        for source, value in candidates:
            if len(items) >= max_values:
                break
            if len(value) < min_length or len(value) > max_bytes or value.isdigit():
                continue
            items.append((source, value))
        return store

    def find_in(self, sql: str) -> tuple[str, ...]:
        """Sources whose value appears verbatim inside a string literal of ``sql``.

        Only literals count: a value that merely spells a table or column name (``objective`` in ``objectives``) is
        not a signal, while ``... LIKE '%{q}%'`` built from the request is. Unquoted injection (``ORDER BY {col}``)
        is not seen; the attack-pattern scanner covers the usual payloads.
        """
        if not self._items or "'" not in sql:
            return ()
        literals = _LITERAL.findall(sql[:_MAX_SQL])
        if not literals:
            return ()
        return tuple(
            dict.fromkeys(source for source, value in self._items if any(value in literal for literal in literals))
        )
