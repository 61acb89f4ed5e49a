"""Header resolver: ``x-tenant-id`` (+ user and role headers), honored only from trusted proxies."""

from __future__ import annotations

from tenantwatch.config import HttpSettings
from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution

__all__ = ["HeaderResolver"]

_MAX = 256


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()[:_MAX]
    return value or None


class HeaderResolver:
    """Reads the tenant headers. The caller checks trust: this resolver only runs for trusted peers."""

    __slots__ = ("_role", "_tenant", "_user")

    def __init__(self, http: HttpSettings) -> None:
        self._tenant, self._user, self._role = http.tenant_header, http.user_header, http.role_header

    def present(self, request: RequestInfo) -> bool:
        return request.header(self._tenant) is not None

    def resolve(self, request: RequestInfo) -> Resolution | None:
        tenant = _clean(request.header(self._tenant))
        if tenant is None:
            return None
        return Resolution(tenant, _clean(request.header(self._user)), _clean(request.header(self._role)), "header")
