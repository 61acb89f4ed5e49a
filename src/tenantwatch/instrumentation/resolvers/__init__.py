"""Tenant resolvers: where a request's tenant, user and role come from.

Each resolver is a small object with ``resolve(request) -> Resolution | None``. The middleware tries them in the
order of ``Settings.http.resolvers`` (a custom callable first, when given); the first answer wins. A resolver never
raises: a bad header, token or host yields ``None`` (and, for tokens, a rejection reason the middleware counts).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resolution"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a resolver found. ``tenant_id`` None with a ``rejected`` reason means a token was refused."""

    tenant_id: str | None
    user_id: str | None = None
    role: str | None = None
    source: str = ""
    rejected: str | None = None
