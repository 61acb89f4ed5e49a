"""Path resolver: the tenant is a path parameter, ``/orgs/{org_id}/...``.

``path_param`` names the parameter. The tenant must be in context before the endpoint runs, that is before the
framework has routed the request, so the resolver finds the parameter itself, in this order:

1. **The matched route's path parameters** (Starlette, FastAPI and any app exposing Starlette-style ``routes`` whose
   members have ``matches(scope)``, including ``Mount`` sub-routers): the resolver matches the request against the
   application's routes the way the router will (first full match, else the first partial one) and reads
   ``path_params[path_param]``. When a route matches but has no such parameter, the request has no tenant from the
   path: the segment rule below does not second-guess the router.
2. **A segment after a literal segment**, when no route matches or the application exposes no routes (raw ASGI): with
   ``path_param="org_id"`` it takes ``x`` from ``/orgs/x/...``, ``/org/x/...`` or ``/org_id/x/...`` (the parameter
   name minus ``_id``, its plural, or the name itself).

The route match also gives the request its route template early (``RequestInfo.route``) and its path parameters
(``RequestInfo.path_params``, used by the security observer). Matching costs one regular-expression match per route
tried, and runs only when the path resolver is configured and reached.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution

__all__ = ["PathResolver", "match_route", "routes_of"]

logger = logging.getLogger(__name__)

_MAX = 256
_MAX_DEPTH = 4
_FULL, _PARTIAL = 2, 1
"""``starlette.routing.Match`` values (an Enum), compared by value so Starlette stays optional."""


def routes_of(app: object) -> Sequence[Any] | None:
    """The route list of a Starlette-style application, following ``.app`` through wrapping middleware."""
    for _ in range(8):
        routes = getattr(app, "routes", None)
        if isinstance(routes, list | tuple):
            return routes
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def match_route(routes: Sequence[Any], scope: Mapping[str, Any], _depth: int = 0) -> tuple[str, dict[str, Any]] | None:
    """``(route template, path parameters)`` of the route the router will pick for ``scope``, or None."""
    partial: tuple[str, dict[str, Any]] | None = None
    for route in routes:
        try:
            found_match, child = route.matches(scope)
            match = int(getattr(found_match, "value", found_match))
        except Exception:  # a custom route type that cannot match this scope
            continue
        if match not in (_FULL, _PARTIAL):
            continue
        template = str(getattr(route, "path", "") or "")
        params = dict(child.get("path_params") or {})
        inner = getattr(route, "routes", None)
        if inner and _depth < _MAX_DEPTH:  # a Mount or Host: descend with the child scope
            found = match_route(inner, {**scope, **child}, _depth + 1)
            if found is None:
                continue
            template, params = template + found[0], found[1]
        if match == _FULL:
            return template, params
        if partial is None:
            partial = (template, params)
    return partial


class PathResolver:
    """Reads the tenant from ``param``: the matched route's path parameters, else the segment rule (module docs).

    ``app`` is the application whose routes are matched (None: segment rule only).
    """

    __slots__ = ("_app", "_param", "_prefixes", "_routes")

    def __init__(self, param: str, app: object = None) -> None:
        stem = param.removesuffix("_id").removesuffix("Id")
        self._param = param
        self._prefixes = frozenset({param, stem, stem + "s", stem + "es"})
        self._app = app
        self._routes: Sequence[Any] | None = None

    def _matched(self, scope: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
        if scope is None or self._app is None:
            return None
        if self._routes is None:
            self._routes = routes_of(self._app)  # the router's own list: routes added later are seen
            if self._routes is None:
                self._app = None  # no router to read: segment rule from now on
                return None
        return match_route(self._routes, scope)

    def resolve(self, request: RequestInfo, scope: Mapping[str, Any] | None = None) -> Resolution | None:
        matched = self._matched(scope)
        if matched is not None:
            template, params = matched
            request.route = template or request.route
            request.path_params = {str(k): str(v)[:_MAX] for k, v in params.items()}
            value = request.path_params.get(self._param)
            return Resolution(value, source="path") if value else None
        parts = [p for p in request.path.split("/") if p]
        for index, part in enumerate(parts[:-1]):
            if part in self._prefixes:
                value = parts[index + 1][:_MAX]
                return Resolution(value, source="path") if value else None
        return None
