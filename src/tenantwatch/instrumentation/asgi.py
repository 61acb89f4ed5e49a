"""ASGI instrumentation: tenant context, tenant attributes and security signals for every request.

:class:`TenantwatchMiddleware` wraps any ASGI application (raw ASGI, Starlette, FastAPI) in OpenTelemetry's ASGI
middleware and, inside the server span it starts, for every ``http`` and ``websocket`` scope alike (``lifespan`` and
other scope types pass through untouched):

1. resolves the tenant, user and role: a custom callable first, then the resolvers of ``Settings.http.resolvers``
   in order (JWT verified against a key or JWKS; tenant headers and incoming W3C baggage only from trusted proxies;
   subdomain; path parameter of the matched route). A rejected token or an untrusted header never sets a tenant; both
   are counted. With a tenant hierarchy, the source that names the root tenant may name the finer keys too
   (``http.key_headers``, ``http.key_claims``, the callable, trusted baggage ``tenant.<key>.id``); a finer key
   without the root tenant is ignored and counted as a resolution failure (``key_without_root``).
2. puts them in the tenant context and W3C baggage for the whole request (db spans and outgoing calls see them),
   replacing whatever baggage the peer sent: with no trusted answer the request runs with **no** tenant, and a
   custom resolver that raises fails closed the same way (counted on ``tenantwatch.http.tenant_resolution_failures``,
   logged at most once a minute); and on the server span (``tenant.id``, ``enduser.id``, ``enduser.role``,
   ``tenant.bucket``, ``client.address``, ``tenantwatch.tenant.source``, ``tenant.<key>.id`` of the finer keys),
   and sets ``http.route`` from the framework's matched route;
3. runs the request observers (by default the :class:`~tenantwatch.security.SecurityObserver`: attack patterns,
   request values for ``injection_signal``, auth failures, response actions), which may refuse the request;
4. counts ``tenantwatch.http.requests`` and ``tenantwatch.http.request.duration`` on bounded labels (tenant bucket,
   route template, method: non-standard methods are ``_OTHER``);
5. redacts the query string on the server span (``url.query``, ``http.url``, ``http.target``, ``url.full``): the
   value of every field whose name contains a word of ``Settings.http.redact_query_keys`` becomes ``REDACTED``,
   before the span ends (through OTel's server request hook).

It never raises into the application: a failure in tenantwatch's own code is logged (rate-limited) and the request
runs with no tenant.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from tenantwatch import attributes as A
from tenantwatch.config import Settings, load_settings
from tenantwatch.context import DEFAULT_KEY, TenantContext, tenant_context, tenant_hierarchy
from tenantwatch.core.guard import RateLimitedLog, guard, log_internal_error
from tenantwatch.core.handover import FindingSource, FindingSubscription, offered
from tenantwatch.core.request import (
    RequestInfo,
    RequestObserver,
    reset_current_request,
    set_current_request,
)
from tenantwatch.core.request_metrics import RequestMetrics
from tenantwatch.instrumentation.resolvers import Resolution, declared_keys
from tenantwatch.instrumentation.resolvers.header import HeaderResolver
from tenantwatch.instrumentation.resolvers.jwt import JWTResolver
from tenantwatch.instrumentation.resolvers.path import PathResolver
from tenantwatch.instrumentation.resolvers.subdomain import SubdomainResolver
from tenantwatch.instrumentation.resolvers.trust import TrustedPeers
from tenantwatch.redaction import redact_query, redact_target, redact_url

__all__ = ["TenantResolver", "TenantwatchMiddleware", "instrument_app", "uninstrument_app"]

logger = logging.getLogger(__name__)

_MAX_FORWARDED_HOPS = 16

_SCOPE_TYPES = ("http", "websocket")
"""Scope types that act for a tenant: both go through the same resolution (a WebSocket is no less a request)."""

_REFUSED_WEBSOCKET_CLOSE = 1008
"""WebSocket close code for a refused connection when the server lacks the HTTP-response extension (policy)."""

_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "QUERY"})
"""HTTP methods that keep their own metric label value; any other is ``_OTHER`` (an unbounded, client-chosen set)."""

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
TenantResolver = Callable[
    [RequestInfo],
    "TenantContext | Resolution | Mapping[str, object] | Awaitable[TenantContext | Resolution | Mapping[str, object] "
    "| None] | None",
]
"""A custom resolver: gets the request, returns a TenantContext (with the finer tenant keys in ``keys``), a mapping
by tenant key name (``{"organization": "acme", "team": "t-1"}``) or None; may be async."""

_KEY_WITHOUT_ROOT_LOG = RateLimitedLog()
"""One warning a minute per source when a finer tenant key arrives without the root tenant."""


class TenantwatchMiddleware:
    """OpenTelemetry's ASGI middleware plus tenant resolution and security observers (see the module docs)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings | None = None,
        resolver: TenantResolver | None = None,
        observers: Sequence[RequestObserver] | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        excluded_urls: str | None = None,
        processor: FindingSource | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings if settings is not None else load_settings()
        http = self.settings.http
        self.metrics = RequestMetrics(
            meter_provider, tenant_cap=self.settings.tenant_label_cap, client_cap=http.client_label_cap
        )
        from tenantwatch.security.observer import SecurityObserver

        self.security = SecurityObserver(self.settings, self.metrics, clock=clock or time.time)
        self.observers: list[RequestObserver] = list(observers) if observers is not None else [self.security]
        self.findings = FindingSubscription(
            self.security.on_finding, processor if hasattr(processor, "add_finding_listener") else None
        )
        """Response actions hear the findings of ``processor``, else of the span processor that sees this
        middleware's server spans start (bound on the first traced request; see :mod:`tenantwatch.core.handover`)."""
        self._resolver = resolver
        self._trusted = TrustedPeers(http.trusted_proxies, trust_all=http.trust_headers)
        self._jwt = JWTResolver(http)
        self._header = HeaderResolver(http)
        self._subdomain = SubdomainResolver(http.subdomain_base) if http.subdomain_base else None
        self._path = PathResolver(http.path_param, app) if http.path_param else None
        self._order = http.resolvers
        self._redact_keys = http.redact_query_keys
        self._inner = OpenTelemetryMiddleware(
            self._from_otel,
            excluded_urls=excluded_urls,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            server_request_hook=self._redact_query,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run OpenTelemetry's middleware around the tenant layer, never letting it raise into the application:
        it gets a copy of the scope whose query string is valid UTF-8 (it decodes raw bytes such as 0xFF strictly),
        the application still gets the original scope; if OTel fails before the application started, the request
        runs without a server span, and a failure of OTel's after the application finished is logged."""
        progress = _Progress()
        token = _PROGRESS.set(progress)
        try:
            with offered(self.findings):
                await self._inner(_otel_scope(scope), receive, send)
        except Exception:
            if progress.entered and not progress.finished:
                raise  # the application's own exception, passed through OTel unchanged
            logger.exception("tenantwatch: OpenTelemetry's ASGI middleware failed; the request is not traced by it")
            if not progress.entered:
                await self._tenant_layer(scope, receive, send)
        finally:
            _PROGRESS.reset(token)

    async def _from_otel(self, scope: Scope, receive: Receive, send: Send) -> None:
        """What OpenTelemetry's middleware calls: the tenant layer, with the application's original scope."""
        progress = _PROGRESS.get()
        if progress is not None:
            progress.entered = True
        original = scope.get(_ORIGINAL_SCOPE)
        await self._tenant_layer(original if original is not None else scope, receive, send)
        if progress is not None:
            progress.finished = True

    # --- per request ----------------------------------------------------------------------------------------

    def _redact_query(self, span: Any, scope: Scope) -> None:
        """OTel's server request hook: the query string on the server span, sensitive values redacted."""
        with guard("redacting the query string", logger=logger, level=logging.ERROR):
            if not scope.get("query_string") or span is None or not span.is_recording():
                return
            present = getattr(span, "attributes", None) or {}
            keys = self._redact_keys
            changed: dict[str, str] = {}
            for key, redact in (
                (A.URL_QUERY, redact_query),
                (A.HTTP_TARGET, redact_target),
                (A.HTTP_URL, redact_url),
                (A.URL_FULL, redact_url),
            ):
                value = present.get(key)
                if isinstance(value, str):
                    clean = redact(value, keys)
                    if clean != value:
                        changed[key] = clean
            if changed:
                span.set_attributes(changed)

    def _request(self, scope: Scope) -> tuple[RequestInfo, bool]:
        headers = tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers") or ())
        client = scope.get("client")
        peer = str(client[0]) if client else None
        trusted = peer in self._trusted
        address = peer
        if trusted:
            for name, value in headers:
                if name == "x-forwarded-for":
                    address = self._forwarded_client(value) or peer
                    break
        host = None
        for name, value in headers:
            if name == "host":
                host = value
                break
        query = scope.get("query_string") or b""
        request = RequestInfo(
            method=str(scope.get("method", "GET" if scope.get("type") == "websocket" else "")),
            path=str(scope.get("path", "")),
            query_string=query.decode("latin-1") if isinstance(query, bytes) else str(query),
            headers=headers,
            client_address=address,
            host=host,
        )
        return request, trusted

    def _forwarded_client(self, forwarded: str) -> str | None:
        """The client behind our proxies: the right-most ``X-Forwarded-For`` hop that is not a trusted proxy (hops
        further left were written by the client itself and may be forged)."""
        address = None
        for raw in reversed(forwarded.split(",")[-_MAX_FORWARDED_HOPS:]):
            hop = raw.strip()
            if not hop:
                continue
            address = hop
            if hop not in self._trusted:
                break
        return address

    async def _resolve(self, scope: Scope, request: RequestInfo, trusted: bool) -> Resolution | None:
        if self._resolver is not None:
            try:
                answer = self._resolver(request)
                if inspect.isawaitable(answer):
                    answer = await answer
            except Exception as exc:  # the host's resolver: fail closed, never fall back to weaker sources
                self._resolution_failed(request, A.RESOLUTION_FAILED_RESOLVER, exc)
                return None
            given = _from_callable(answer)
            if given is not None:
                given = self._with_root(request, given)
                if given is not None:
                    return given
        metrics = self.metrics
        for name in self._order:
            found: Resolution | None = None
            if name == "jwt" and self._jwt.configured:
                found = self._jwt.resolve(request)
                if found is not None and found.rejected is not None:
                    metrics.rejected_tokens.add(1, {"reason": found.rejected})
                    if request.span is not None:
                        request.span.set_attribute(A.TOKEN_REJECTED, found.rejected)
                    found = None
            elif name == "header" and self._header.present(request):
                if trusted:
                    found = self._header.resolve(request)
                else:
                    metrics.ignored_headers.add(1, {A.CLIENT_BUCKET: metrics.client_bucket(request.client_address)})
            elif name == "subdomain" and self._subdomain is not None:
                found = self._subdomain.resolve(request)
            elif name == "path" and self._path is not None:
                found = self._path.resolve(request, scope)
            if found is not None:
                found = self._with_root(request, found)
                if found is not None and found.tenant_id is not None:
                    return found
        incoming = baggage.get_baggage(A.TENANT_ID)
        _root, finer = tenant_hierarchy()
        keys = declared_keys({key: baggage.get_baggage(A.tenant_key_attribute(key)) for key in finer}) if finer else ()
        if incoming is not None or keys:
            if trusted:
                user, role = baggage.get_baggage(A.ENDUSER_ID), baggage.get_baggage(A.ENDUSER_ROLE)
                return self._with_root(
                    request,
                    Resolution(
                        None if incoming is None else str(incoming),
                        None if user is None else str(user),
                        None if role is None else str(role),
                        "baggage",
                        keys=keys,
                    ),
                )
            metrics.ignored_headers.add(1, {A.CLIENT_BUCKET: metrics.client_bucket(request.client_address)})
        return None

    def _with_root(self, request: RequestInfo, found: Resolution) -> Resolution | None:
        """``found``, unless it names finer tenant keys but no root tenant: those are ignored (logged once a minute
        per source, counted on ``tenantwatch.http.tenant_resolution_failures{reason="key_without_root"}``, marked
        on the server span) and the next source is tried."""
        if found.tenant_id is not None or not found.keys:
            return found
        names = ", ".join(key for key, _value in found.keys)
        _KEY_WITHOUT_ROOT_LOG.emit(
            found.source,
            "tenantwatch: the %s named the tenant key(s) %s but no root tenant (%s); ignored, the request runs "
            "without them",
            found.source or "resolver",
            names,
            tenant_hierarchy()[0],
            logger=logger,
            exc_info=False,
        )
        with guard("ASGI middleware metrics"):
            self.metrics.resolution_failures.add(1, {"reason": A.RESOLUTION_FAILED_KEY_WITHOUT_ROOT})
            if request.span is not None and request.span.is_recording():
                request.span.set_attribute(A.TENANT_RESOLUTION_FAILED, A.RESOLUTION_FAILED_KEY_WITHOUT_ROOT)
        return None

    def _resolution_failed(self, request: RequestInfo, reason: str, exc: BaseException) -> None:
        """The tenant could not be resolved, so the request runs with no tenant: log it (once a minute per reason),
        count it and mark the server span. Call from the ``except`` block; never raises."""
        where = "custom tenant resolver" if reason == A.RESOLUTION_FAILED_RESOLVER else "ASGI tenant resolution"
        log_internal_error(where, outcome="the request runs with no tenant")
        with guard("ASGI middleware metrics"):
            self.metrics.resolution_failures.add(1, {"reason": reason, A.ERROR_TYPE: type(exc).__qualname__})
            if request.span is not None and request.span.is_recording():
                request.span.set_attribute(A.TENANT_RESOLUTION_FAILED, reason)

    def _annotate(self, request: RequestInfo, found: Resolution | None) -> None:
        span = request.span
        if span is None or not span.is_recording():
            return
        attributes: dict[str, str] = {A.TENANT_BUCKET: self.metrics.tenant_bucket(request.tenant_id)}
        if request.client_address:
            attributes[A.CLIENT_ADDRESS] = request.client_address
        if request.route:
            attributes[A.HTTP_ROUTE] = request.route
        if found is not None:
            attributes[A.TENANT_ID] = found.tenant_id or ""
            attributes[A.TENANT_SOURCE] = found.source
            if found.user_id is not None:
                attributes[A.ENDUSER_ID] = found.user_id
            if found.role is not None:
                attributes[A.ENDUSER_ROLE] = found.role
            for key, value in request.tenant_keys:
                attributes[A.tenant_key_attribute(key)] = value
        span.set_attributes(attributes)  # one call: one lock, one validation pass

    async def _tenant_layer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") not in _SCOPE_TYPES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        with guard("ASGI middleware", outcome="the request runs with no tenant") as attempt:
            request, trusted = self._request(scope)
            request.span = trace.get_current_span()
        if attempt.failed:
            with tenant_context(None):  # whatever the peer sent in baggage stays a claim
                await self.app(scope, receive, send)
            return
        found: Resolution | None = None
        try:
            found = await self._resolve(scope, request, trusted)
        except Exception as exc:
            self._resolution_failed(request, A.RESOLUTION_FAILED_INTERNAL, exc)
        if found is not None:
            request.tenant_id, request.user_id, request.role = found.tenant_id, found.user_id, found.role
            request.tenant_source = found.source
            request.tenant_keys = found.keys if found.tenant_id is not None else ()
        with guard("ASGI middleware span attributes"):
            self._annotate(request, found)
        token = set_current_request(request)
        status_seen: list[int] = []

        async def send_wrapper(message: Message) -> None:
            if not status_seen:
                status = _status(message)
                if status is not None:
                    status_seen.append(status)
                    self._after(scope, request, status)
            await send(message)

        try:
            values = {DEFAULT_KEY: request.tenant_id, **dict(request.tenant_keys)}
            with tenant_context(values, user_id=request.user_id, role=request.role):
                refusal = self._before(request)
                if refusal is not None:
                    await self._refuse(scope, send_wrapper, *refusal)
                    return
                await self.app(scope, receive, send_wrapper)
        finally:
            reset_current_request(token)
            self._record(scope, request, status_seen[0] if status_seen else 500, time.perf_counter() - started)

    def _before(self, request: RequestInfo) -> tuple[int, str] | None:
        for observer in self.observers:
            refusal = None
            with guard(f"{type(observer).__qualname__}.before", logger=logger, level=logging.ERROR):
                refusal = observer.before(request)
            if refusal is not None:
                return refusal
        return None

    def _after(self, scope: Scope, request: RequestInfo, status: int) -> None:
        with guard("ASGI middleware after the response started", logger=logger, level=logging.ERROR):
            route = _route(scope)
            if route is not None:
                request.route = route
                if request.span is not None and request.span.is_recording():
                    request.span.set_attribute(A.HTTP_ROUTE, route)
            for observer in self.observers:
                with guard(f"{type(observer).__qualname__}.after", logger=logger, level=logging.ERROR):
                    observer.after(request, status)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, reason: str) -> None:
        body = json.dumps({"detail": reason}).encode()
        prefix = "http"
        if scope.get("type") == "websocket":
            if "websocket.http.response" not in (scope.get("extensions") or {}):
                await send({"type": "websocket.close", "code": _REFUSED_WEBSOCKET_CLOSE, "reason": reason[:120]})
                return
            prefix = "websocket.http"  # the denial-response extension: the client sees the real status
        await send(
            {
                "type": f"{prefix}.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": f"{prefix}.response.body", "body": body})

    def _record(self, scope: Scope, request: RequestInfo, status: int, seconds: float) -> None:
        with guard("recording request metrics", logger=logger, level=logging.ERROR):
            route = request.route or _route(scope) or ""
            labels = {
                A.TENANT_BUCKET: self.metrics.tenant_bucket(request.tenant_id),
                A.HTTP_ROUTE: route,
                A.HTTP_REQUEST_METHOD: request.method if request.method in _METHODS else A.OTHER_METHOD,
            }
            self.metrics.duration.record(seconds, labels)
            labels[A.HTTP_RESPONSE_STATUS_CODE] = status  # type: ignore[assignment]
            self.metrics.requests.add(1, labels)


def _from_callable(answer: object) -> Resolution | None:
    """What a custom resolver's answer says: a Resolution as is; a TenantContext or a mapping by tenant key name
    (the root key by its declared name or ``tenant``) with its declared finer keys; anything else nothing."""
    if isinstance(answer, Resolution):
        keys = declared_keys(dict(answer.keys))
        return answer if keys == answer.keys else replace(answer, keys=keys)
    if isinstance(answer, TenantContext):
        keys = declared_keys(dict(answer.keys))
        if answer.tenant_id is None and not keys:
            return None
        return Resolution(answer.tenant_id, answer.user_id, answer.role, "callable", keys=keys)
    if isinstance(answer, Mapping):
        values = {str(key): value for key, value in answer.items()}
        root = values.get(tenant_hierarchy()[0], values.get(DEFAULT_KEY))
        tenant = None if root is None else (str(root).strip()[:256] or None)
        keys = declared_keys(values)
        if tenant is None and not keys:
            return None
        return Resolution(tenant, source="callable", keys=keys)
    return None


def _status(message: Message) -> int | None:
    """The response status a message decides, if it is the first one that does (HTTP, or a WebSocket handshake)."""
    kind = message.get("type")
    if kind in ("http.response.start", "websocket.http.response.start"):
        return int(message.get("status", 0))
    if kind == "websocket.accept":
        return 101
    if kind == "websocket.close":  # before accept: the server answers the handshake with 403
        return 403
    return None


_ORIGINAL_SCOPE = "tenantwatch.original_scope"
"""Key, in the scope copy OTel's middleware gets, of the scope the application must see."""

_QUERY_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
"""Printable ASCII stays as is (``%xx`` escapes included); every other byte is percent-encoded."""


class _Progress:
    """How far one request got: into the tenant layer (OTel called us), and out of it normally."""

    __slots__ = ("entered", "finished")

    def __init__(self) -> None:
        self.entered = False
        self.finished = False


_PROGRESS: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar("tenantwatch_asgi_progress", default=None)


def _otel_scope(scope: Scope) -> Scope:
    """``scope`` itself, or, when its query string is not valid UTF-8 (OTel's middleware would raise
    ``UnicodeDecodeError``), a copy with the offending bytes percent-encoded that remembers the original."""
    query = scope.get("query_string")
    if not isinstance(query, bytes | bytearray) or not query:
        return scope
    try:
        query.decode("utf-8")
    except UnicodeDecodeError:
        copy = dict(scope)
        copy["query_string"] = urllib.parse.quote(bytes(query), safe=_QUERY_SAFE).encode("ascii")
        copy[_ORIGINAL_SCOPE] = scope
        return copy
    return scope


def _route(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path", None) or getattr(route, "path_format", None)
    return str(path) if path else None


def instrument_app(
    app: ASGIApp,
    *,
    settings: Settings | None = None,
    resolver: TenantResolver | None = None,
    observers: Sequence[RequestObserver] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    excluded_urls: str | None = None,
    processor: FindingSource | None = None,
    clock: Callable[[], float] | None = None,
) -> TenantwatchMiddleware:
    """Wrap ``app`` (any ASGI application) with :class:`TenantwatchMiddleware`; serve the returned object.

    ``settings`` defaults to :func:`tenantwatch.config.load_settings` (arguments > ``TENANTWATCH_*`` > rules file >
    defaults); ``resolver`` is a custom tenant resolver tried first; ``observers`` replaces the default security
    observer; ``tracer_provider`` / ``meter_provider`` default to the global ones; ``excluded_urls`` (comma-separated
    regular expressions, as OTel's ASGI middleware takes them) get no server span (their tenant is still resolved,
    so their db spans are tagged); ``processor`` is the
    :class:`~tenantwatch.processors.TenantwatchSpanProcessor` whose findings feed response actions (when omitted:
    the one that sees this middleware's server spans start, from the first traced request on); ``clock`` drives
    the security observer's windows (tests).
    """
    return TenantwatchMiddleware(
        app,
        settings=settings,
        resolver=resolver,
        observers=observers,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        excluded_urls=excluded_urls,
        processor=processor,
        clock=clock,
    )


def uninstrument_app(app: Any) -> Any:
    """The application :func:`instrument_app` wrapped (``app`` itself when it is not a tenantwatch middleware)."""
    return app.app if isinstance(app, TenantwatchMiddleware) else app
