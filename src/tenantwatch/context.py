"""Tenant context: who the current work acts for.

The context lives in a :mod:`contextvars` variable, so it follows asyncio tasks and threads started with a copied
context (``contextvars.copy_context().run``, ``asyncio.to_thread``, ``loop.run_in_executor`` with a copied
context). It is mirrored into W3C baggage (``tenant.id``, ``enduser.id``, ``enduser.role``) so the tenant crosses
service boundaries with any OpenTelemetry propagator.

Incoming baggage is a claim, not a context: anyone who can reach a service can send ``baggage: tenant.id=globex``.
:func:`current_context` therefore never reads baggage by itself; baggage becomes the tenant context only through a
trust decision:

* behind :class:`~tenantwatch.instrumentation.asgi.TenantwatchMiddleware`, when the peer is a trusted proxy
  (``http.trusted_proxies`` / ``http.trust_headers``); from anyone else it is ignored and counted;
* elsewhere (a worker consuming a trusted queue, a task runner), explicitly with :func:`trust_baggage`.

Usage::

    from tenantwatch import tenant_context, unscoped

    with tenant_context("acme", user_id="u-1", role="member"):
        session.execute(select(Objective))      # db spans carry tenant.id=acme

    # a tenant hierarchy (the rules file declares ``tenant_keys``: organization ⊃ team)
    with tenant_context("acme", team="t-1"):   # or tenant_context({"organization": "acme", "team": "t-1"})
        ...                                     # db spans carry tenant.id=acme, tenant.team.id=t-1

    @tenant_context("acme")
    async def job() -> None: ...

    with unscoped("nightly billing roll-up"):
        session.execute(text("SELECT organization_id, count(*) FROM objectives GROUP BY 1"))  # tagged, not flagged

    # a worker whose messages come from a trusted producer: the producer's baggage names the tenant
    with trust_baggage(propagate.extract(message.headers)):
        handle(message)
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar, cast

from opentelemetry import baggage
from opentelemetry import context as otel_context

from tenantwatch import attributes as A
from tenantwatch.core.tenant_values import canonical

__all__ = [
    "TenantContext",
    "current_context",
    "set_tenant_hierarchy",
    "tenant_context",
    "trust_baggage",
    "unscoped",
]

_F = TypeVar("_F", bound=Callable[..., Any])

_MAX_VALUE_LENGTH = 256
"""Baggage and context values are truncated to this length: they come from requests and end up on spans."""


@dataclass(frozen=True, slots=True)
class TenantContext:
    """The tenant, user and role the current work acts for.

    ``unscoped_reason`` is set inside :func:`unscoped`: deliberate cross-tenant work whose queries are tagged, not
    flagged. ``unscoped_rules`` names the rules it allows when :func:`unscoped` was given ``rules``; empty means the
    rules that honour ``unscoped`` (all the isolation rules), as before.
    """

    tenant_id: str | None = None
    user_id: str | None = None
    role: str | None = None
    unscoped_reason: str | None = None
    unscoped_rules: tuple[str, ...] = ()
    keys: tuple[tuple[str, str], ...] = ()
    """The values of a tenant hierarchy's finer keys, ``(("team", "t-1"),)``, sorted by key name; the root key's
    value is ``tenant_id``. Empty with one tenant key (the simple default)."""

    @property
    def is_unscoped(self) -> bool:
        return self.unscoped_reason is not None

    def value_of(self, key: str) -> str | None:
        """This context's value of tenant key ``key``: ``tenant_id`` for the root key (by its declared name, or
        ``tenant``), the finer key's value otherwise; ``None`` when the context holds none."""
        if key in (_hierarchy.root, DEFAULT_KEY):
            return self.tenant_id
        for name, value in self.keys:
            if name == key:
                return value
        return None


DEFAULT_KEY = "tenant"
"""The name of the one tenant key when the rules file declares no ``tenant_keys``; always an alias of the root."""


@dataclass(frozen=True, slots=True)
class _Hierarchy:
    root: str = DEFAULT_KEY
    finer: tuple[str, ...] = ()


_hierarchy = _Hierarchy()


def set_tenant_hierarchy(root: str, finer: Sequence[str] = ()) -> None:
    """Declare the tenant keys process-wide (set from the rules file's ``tenant_keys`` by the instrumentor): the
    root key, whose value is ``tenant.id``, and the finer keys below it (``tenant.<key>.id`` in baggage and on
    spans). Called again, it replaces the declaration; ``set_tenant_hierarchy("tenant")`` is the simple default."""
    global _hierarchy  # noqa: PLW0603 - one process-wide declaration, read when contexts are built
    _hierarchy = _Hierarchy(root=str(root), finer=tuple(dict.fromkeys(str(k) for k in finer if str(k) != root)))


def tenant_hierarchy() -> tuple[str, tuple[str, ...]]:
    """The declared root key and finer keys (see :func:`set_tenant_hierarchy`)."""
    return _hierarchy.root, _hierarchy.finer


def _key_values(values: Mapping[str, object | None]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for name, value in values.items():
        text = _clean(value)
        if text is not None:
            pairs.append((str(name), text))
    return tuple(sorted(pairs))


_EMPTY = TenantContext()
_current: contextvars.ContextVar[TenantContext | None] = contextvars.ContextVar("tenantwatch_context", default=None)


def _clean(value: object | None) -> str | None:
    if value is None:
        return None
    text = (value if isinstance(value, str) else canonical(value)).strip()  # a UUID's bytes: its text, not b'...'
    if not text:
        return None
    return text[:_MAX_VALUE_LENGTH]


def current_context() -> TenantContext:
    """The tenant context in force: the one set by :func:`tenant_context`, :func:`unscoped`, :func:`trust_baggage`
    or the ASGI middleware in this task or thread; empty otherwise.

    Incoming W3C baggage alone is never promoted: it says what a peer claims, and only a trust decision makes that
    the context (see the module docs).
    """
    ctx = _current.get()
    if ctx is not None:
        return ctx
    return _from_baggage(None) if _baggage_trusted else _EMPTY


_baggage_trusted = False
"""Set from ``Settings.trust_baggage`` by the SQLAlchemy instrumentor: the operator's decision that every peer of
this process is trusted (a service reachable only from its own gateway or producers), so incoming baggage is the
context wherever nothing else set one. The ASGI middleware still decides per peer: it always sets a context."""


def set_baggage_trust(trusted: bool) -> None:
    """Trust (or stop trusting) incoming W3C baggage process-wide where no context is set (``trust_baggage``
    setting, ``TENANTWATCH_TRUST_BAGGAGE``); for services whose only peers are trusted, zero-code ones above all."""
    global _baggage_trusted  # noqa: PLW0603 - one process-wide operator decision, read on every statement
    _baggage_trusted = bool(trusted)


def _from_baggage(context: otel_context.Context | None) -> TenantContext:
    tenant = _clean(baggage.get_baggage(A.TENANT_ID, context))
    if tenant is None:
        return _EMPTY
    return TenantContext(
        tenant_id=tenant,
        user_id=_clean(baggage.get_baggage(A.ENDUSER_ID, context)),
        role=_clean(baggage.get_baggage(A.ENDUSER_ROLE, context)),
        keys=_key_values({key: baggage.get_baggage(A.tenant_key_attribute(key), context) for key in _hierarchy.finer}),
    )


def _baggage_pairs(ctx: TenantContext) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = [
        (A.TENANT_ID, ctx.tenant_id),
        (A.ENDUSER_ID, ctx.user_id),
        (A.ENDUSER_ROLE, ctx.role),
    ]
    held = dict(ctx.keys)
    for key in dict.fromkeys((*_hierarchy.finer, *held)):
        pairs.append((A.tenant_key_attribute(key), held.get(key)))
    return pairs


class _ContextScope:
    """Context manager and decorator (sync and async) that sets a :class:`TenantContext` for its body."""

    def __init__(self, make: Callable[[TenantContext], TenantContext]) -> None:
        self._make = make
        self._tokens: list[tuple[contextvars.Token[TenantContext | None], object]] = []

    def __enter__(self) -> TenantContext:
        ctx = self._make(current_context())
        token = _current.set(ctx)
        otel_ctx = otel_context.get_current()
        for key, value in _baggage_pairs(ctx):
            otel_ctx = (
                baggage.set_baggage(key, value, otel_ctx)
                if value is not None
                else baggage.remove_baggage(key, otel_ctx)
            )
        otel_token = otel_context.attach(otel_ctx)
        self._tokens.append((token, otel_token))
        return ctx

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, otel_token = self._tokens.pop()
        otel_context.detach(cast("contextvars.Token[otel_context.Context]", otel_token))
        _current.reset(token)

    async def __aenter__(self) -> TenantContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: _F) -> _F:
        make = self._make
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _ContextScope(make):
                    return await func(*args, **kwargs)

            return cast("_F", async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _ContextScope(make):
                return func(*args, **kwargs)

        return cast("_F", wrapper)


def tenant_context(
    tenant_id: str | int | object | Mapping[str, object] | None,
    *,
    user_id: str | int | None = None,
    role: str | None = None,
    **keys: object,
) -> _ContextScope:
    """Run the body (``with``) or every call of the decorated function as ``tenant_id``.

    With a tenant hierarchy (the rules file's ``tenant_keys``), ``tenant_id`` is the root key's value and the finer
    keys come as keywords, ``tenant_context("acme", team="t-1")``, or everything as one mapping by key name,
    ``tenant_context({"organization": "acme", "team": "t-1"})``. Values may be strings, ints or UUIDs (compared
    canonically).

    Nested contexts replace the outer one for their body and restore it afterwards. Values are stripped and
    truncated to 256 characters; an empty tenant means "no tenant".
    """
    values: dict[str, object] = dict(keys)
    root_value: object | None = tenant_id
    if isinstance(tenant_id, Mapping):
        mapping = {str(k): v for k, v in tenant_id.items()}
        root_value = mapping.pop(_hierarchy.root, mapping.pop(DEFAULT_KEY, None))
        values = {**mapping, **values}
    values.pop(_hierarchy.root, None)
    values.pop(DEFAULT_KEY, None)
    ctx = TenantContext(
        tenant_id=_clean(root_value), user_id=_clean(user_id), role=_clean(role), keys=_key_values(values)
    )
    return _ContextScope(lambda _outer: ctx)


def trust_baggage(context: otel_context.Context | None = None) -> _ContextScope:
    """Run the body (``with``) or every call of the decorated function as the tenant, user and role named in W3C
    baggage: the baggage of ``context`` (say ``opentelemetry.propagate.extract(message.headers)``), else of the
    current OpenTelemetry context when the body starts.

    This is a trust decision: use it only where the baggage comes from a producer you trust (a queue only your
    services write to), never on what an outside client sent; ASGI requests go through the middleware, which makes
    that decision per peer. Baggage without ``tenant.id`` gives an empty context (no tenant, user or role). Only the
    baggage is read from ``context``; the body keeps the current trace context.
    """
    return _ContextScope(lambda _outer: _from_baggage(context))


def unscoped(reason: str, *, rules: Sequence[str] | None = None) -> _ContextScope:
    """Mark deliberate cross-tenant work (admin jobs, migrations, seed data): its queries are tagged, not flagged.

    The reason is required and lands on every db span as ``tenantwatch.unscoped.reason``. The user and role of the
    outer context are kept, so a superuser write inside ``unscoped`` is still seen.

    ``rules`` names the rules this work may break, and only those are silenced (any rule id, ``test_data``
    included: ``unscoped("seed the default admin", rules=["test_data"])``); every other rule judges the body as if
    it were not unscoped. Without ``rules`` the rules that honour ``unscoped`` (the isolation rules) stay silent, as
    they always have. An unknown rule id raises ``ValueError``.
    """
    text = _clean(reason)
    if text is None:
        raise ValueError("unscoped(reason): reason must be a non-empty string")
    allowed: tuple[str, ...] = ()
    if rules is not None:
        from tenantwatch.rules import RULE_IDS

        if isinstance(rules, str):
            rules = [rules]
        allowed = tuple(dict.fromkeys(str(rule).strip() for rule in rules))
        unknown = [rule for rule in allowed if rule not in RULE_IDS]
        if unknown or not allowed:
            raise ValueError(
                f"unscoped(rules=...): unknown rule id(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                f"valid ids: {', '.join(RULE_IDS)}"
            )
    return _ContextScope(lambda outer: replace(outer, unscoped_reason=text, unscoped_rules=allowed))
