"""Subdomain resolver: ``acme.example.com`` acts for tenant ``acme`` when ``subdomain_base`` is ``example.com``."""

from __future__ import annotations

from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution

__all__ = ["SubdomainResolver"]


class SubdomainResolver:
    __slots__ = ("_suffix",)

    def __init__(self, base: str) -> None:
        self._suffix = "." + base.lower().strip(".")

    def resolve(self, request: RequestInfo) -> Resolution | None:
        host = (request.host or "").lower().rsplit(":", 1)[0] if request.host and "]" not in request.host else None
        if not host or not host.endswith(self._suffix):
            return None
        label = host[: -len(self._suffix)]
        if not label or "." in label or len(label) > 63:
            return None
        return Resolution(label, source="subdomain")
