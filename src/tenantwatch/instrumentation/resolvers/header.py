"""Header resolver: ``x-tenant-id`` (+ user and role headers, and the finer tenant keys of ``http.key_headers``),
honored only from trusted proxies."""

from __future__ import annotations

from tenantwatch.config import HttpSettings
from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution, declared_keys

__all__ = ["HeaderResolver"]

_MAX = 256


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()[:_MAX]
    return value or None


class HeaderResolver:
    """Reads the tenant headers. The caller checks trust: this resolver only runs for trusted peers."""

    __slots__ = ("_keys", "_role", "_tenant", "_user")

    def __init__(self, http: HttpSettings) -> None:
        self._tenant, self._user, self._role = http.tenant_header, http.user_header, http.role_header
        self._keys = tuple(http.key_headers.items())

    def present(self, request: RequestInfo) -> bool:
        """The request sends the tenant header or a finer key's header (whether or not its peer may)."""
        if request.header(self._tenant) is not None:
            return True
        return any(request.header(header) is not None for _key, header in self._keys)

    def resolve(self, request: RequestInfo) -> Resolution | None:
        tenant = _clean(request.header(self._tenant))
        keys = declared_keys({key: _clean(request.header(header)) for key, header in self._keys}) if self._keys else ()
        if tenant is None:
            return Resolution(None, source="header", keys=keys) if keys else None
        user, role = _clean(request.header(self._user)), _clean(request.header(self._role))
        return Resolution(tenant, user, role, "header", keys=keys)
