"""Tenant values compared canonically: one tenant, whatever form the application binds it in.

Applications bind the same tenant id in different forms: ``uuid.hex`` on SQLite and the dashed form on PostgreSQL,
a :class:`uuid.UUID`, its 16 bytes, an ``int`` or its text. Comparing the text as bound calls a tenant a stranger
to itself. :func:`canonical` maps every form of one value to one string:

* a UUID, as :class:`uuid.UUID`, as 16 bytes, or as text in any form Python's :class:`uuid.UUID` reads (dashed,
  32 hex digits, in braces, ``urn:uuid:``, any case) -> the lower-case dashed form;
* an ``int`` or the text of one (``"42"``, ``" 042 "``, ``"+42"``) -> its decimal text;
* other bytes -> their UTF-8 text (canonical in turn), else their hex;
* any other text -> itself, stripped (a slug keeps its case: ``Acme`` and ``acme`` are two tenants).

Every comparison of tenant values (the rules, the RLS assist, the metric buckets, ``tenantwatch explain``) goes
through :func:`canonical` or :func:`same_tenant`.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["canonical", "same_tenant"]

_UUID_TEXT = re.compile(r"(?i)^(?:urn:uuid:)?\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?$")
_INT_TEXT = re.compile(r"^[+-]?[0-9]{1,40}$")
_MAX_LENGTH = 256
"""Longer text is not a tenant id in a form worth converting: it is returned as it is."""


def canonical(value: object) -> str:
    """The canonical text of a tenant value (see the module docstring); ``""`` for ``None``. Never raises."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _canonical_text(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) == 16:  # the size of a UUID
            return str(uuid.UUID(bytes=raw))
        try:
            return _canonical_text(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return raw.hex()
    try:
        return _canonical_text(str(value))
    except Exception:  # an object whose __str__ fails is no tenant id we can name
        return ""


def _canonical_text(text: str) -> str:
    stripped = text.strip()
    if len(stripped) > _MAX_LENGTH:
        return stripped
    if _UUID_TEXT.match(stripped):
        return str(uuid.UUID(stripped))
    if _INT_TEXT.match(stripped):
        return str(int(stripped))
    return stripped


def same_tenant(a: object, b: object) -> bool:
    """Whether ``a`` and ``b`` name the same tenant (compared canonically)."""
    return canonical(a) == canonical(b)
