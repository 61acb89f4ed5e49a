"""Tenant resolvers: where a request's tenant, user and role come from.

Each resolver is a small object with ``resolve(request) -> Resolution | None``. The middleware tries them in the
order of ``Settings.http.resolvers`` (a custom callable first, when given); the first answer wins. A resolver never
raises: a bad header, token or host yields ``None`` (and, for tokens, a rejection reason the middleware counts).

With a tenant hierarchy (``organization ⊃ team``), the source that names the root tenant may name the finer keys too
(``Resolution.keys``: the header resolver from ``http.key_headers``, the JWT resolver from ``http.key_claims``, a
custom callable, trusted baggage ``tenant.<key>.id``); the finer keys never come from another source than the root.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tenantwatch.context import tenant_hierarchy

__all__ = ["Resolution", "declared_keys"]

_MAX = 256


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a resolver found. ``tenant_id`` None with a ``rejected`` reason means a token was refused."""

    tenant_id: str | None
    user_id: str | None = None
    role: str | None = None
    source: str = ""
    rejected: str | None = None
    keys: tuple[tuple[str, str], ...] = ()
    """The finer tenant keys this source names, ``(("team", "t-1"),)``, sorted; see :func:`declared_keys`."""


def declared_keys(values: Mapping[str, object | None]) -> tuple[tuple[str, str], ...]:
    """The values of the finer tenant keys declared by ``set_tenant_hierarchy`` (the rules file's ``tenant_keys``),
    stripped and cut to 256 characters, sorted by key name. Keys not declared, and empty values, are left out: with
    one tenant key (the default) this is always empty."""
    _root, finer = tenant_hierarchy()
    if not finer:
        return ()
    pairs = []
    for key in finer:
        value = values.get(key)
        if value is None:
            continue
        text = str(value).strip()[:_MAX]
        if text:
            pairs.append((key, text))
    return tuple(sorted(pairs))
