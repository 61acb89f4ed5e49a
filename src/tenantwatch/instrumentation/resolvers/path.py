"""Path resolver: the tenant is a path segment, ``/orgs/{org_id}/...``.

``path_param`` names the parameter. Routing has not happened yet when the tenant is resolved (the context must be in
place before the application runs), so the resolver matches the segment right after a literal segment: with
``path_param="org_id"`` it takes ``x`` from ``/orgs/x/...`` or ``/org/x/...`` or ``/org_id/x/...`` (the
parameter name minus ``_id``, its plural, or the name itself).
"""

from __future__ import annotations

from tenantwatch.instrumentation._request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution

__all__ = ["PathResolver"]


class PathResolver:
    __slots__ = ("_prefixes",)

    def __init__(self, param: str) -> None:
        stem = param.removesuffix("_id").removesuffix("Id")
        self._prefixes = frozenset({param, stem, stem + "s", stem + "es"})

    def resolve(self, request: RequestInfo) -> Resolution | None:
        parts = [p for p in request.path.split("/") if p]
        for index, part in enumerate(parts[:-1]):
            if part in self._prefixes:
                value = parts[index + 1][:256]
                return Resolution(value, source="path") if value else None
        return None
