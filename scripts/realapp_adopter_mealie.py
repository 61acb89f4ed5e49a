"""Adopter code for mealie (mealie-recipes/mealie): every request that resolves a user runs in that user's tenant.

This is what a mealie maintainer would add to adopt tenantwatch, kept here so the application's checkout stays
untouched: the harness's pytest plugin calls :func:`wire` once the application is imported. In the application
itself the same four functions would simply replace the bodies of ``get_current_user``, ``try_get_current_user``,
``get_public_group`` and ``get_admin_user`` in ``mealie/core/dependencies/dependencies.py``; here they are installed as
``app.dependency_overrides`` so FastAPI calls them wherever the originals are declared.

Async generator dependencies run in the request's own task: the context entered before ``yield`` holds for the
endpoint (sync endpoints run in the thread pool with a copy of it) and is left when the request is done.

A group is mealie's tenant (``group_id`` on 23 tables); a household is a finer key inside it (``household_id``). The
harness's rules file declares both as a tenant hierarchy (``tenant_keys``: group ⊃ household), so a filter on either
protects a table and the household-only tables are watched. The context holds the group only: in mealie a
household is not an isolation boundary (members read the recipes, users and preferences of every household of their
group, by design, e.g. ``test_recipe_cross_household``), so household values must not be compared with a context
household. An app whose teams *are* isolated sets both: ``tenant_context(group_id, household=household_id)``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from mealie.app import app
from mealie.core import dependencies as deps
from mealie.core.security.providers.credentials_provider import CredentialsProvider
from mealie.core.security.providers.ldap_provider import LDAPProvider
from mealie.core.security.providers.openid_provider import OpenIDProvider
from mealie.db.db_setup import generate_session
from mealie.schema.user.user import GroupInDB, PrivateUser
from mealie.services.user_services.password_reset_service import PasswordResetService
from mealie.services.user_services.registration_service import RegistrationService
from sqlalchemy.orm import Session

import tenantwatch

TENANT_FORM = "TENANTWATCH_REALAPP_TENANT_FORM"
"""``dashed`` (``str(uuid)``, what an adopter writes first) or ``hex`` (what mealie binds on SQLite)."""

_get_current_user = deps.get_current_user
_try_get_current_user = deps.try_get_current_user
_get_public_group = deps.get_public_group
_get_admin_user = deps.get_admin_user

ADMIN_ROLE = "server-admin"
"""The role of mealie's admins. ``superuser_write`` flags writes by the roles meant to be read-only
(``superuser_roles``: ``superuser``, ``admin``); mealie's admins are group members who also run the server, and they
write on purpose, so their role is not named ``admin`` here."""


def tenant_value(value: uuid.UUID | str) -> str:
    if os.environ.get(TENANT_FORM, "dashed") == "hex":
        return uuid.UUID(str(value)).hex
    return str(value)


def user_scope(user: PrivateUser) -> Any:
    """The tenant context of a signed-in user: their group, their id, and their role (no household: see above)."""
    return tenantwatch.tenant_context(
        tenant_value(user.group_id), user_id=str(user.id), role=ADMIN_ROLE if user.admin else "user"
    )


async def current_user(
    request: Request,
    token: Annotated[str | None, Depends(deps.oauth2_scheme_soft_fail)],
    session: Annotated[Session, Depends(generate_session)],
) -> AsyncIterator[PrivateUser]:
    user = await signed_in_user(request, token, session)
    with user_scope(user):
        yield user


async def signed_in_user(request: Request, token: str | None, session: Session) -> PrivateUser:
    """The app's own lookup of the user named by the token: it runs before any tenant is known, on purpose."""
    with tenantwatch.unscoped("resolve the signed-in user from their token"):
        return await _get_current_user(request, token, session)


async def try_current_user(
    request: Request,
    token: Annotated[str | None, Depends(deps.oauth2_scheme_soft_fail)],
    session: Annotated[Session, Depends(generate_session)],
) -> AsyncIterator[PrivateUser | None]:
    try:
        user = await signed_in_user(request, token, session)
    except Exception:
        user = None  # as the app's own try_get_current_user: no user, no tenant
    if user is None:
        yield None
        return
    with user_scope(user):
        yield user


async def public_group(
    group_slug: str,  # the path parameter of every route that uses it, as in the original
    session: Annotated[Session, Depends(generate_session)],
) -> AsyncIterator[GroupInDB]:
    """Public (explore) pages act for the group named in the path: its data, no user."""
    with tenantwatch.unscoped("resolve the public group named in the path"):
        group = await _get_public_group(group_slug, session)
    with tenantwatch.tenant_context(tenant_value(group.id), role="public"):
        yield group


async def admin_user(
    user: Annotated[PrivateUser, Depends(_get_current_user)],
) -> AsyncIterator[PrivateUser]:
    """Server administration (``/api/admin/*``: every route behind mealie's ``get_admin_user``) lists and changes
    every group on purpose: unscoped, once the app has checked that the user is an admin."""
    admin = await _get_admin_user(user)
    with tenantwatch.unscoped("server administration (/api/admin): every group on purpose"):
        yield admin


UNSCOPED_PATHS: tuple[tuple[type, str, str], ...] = (
    (CredentialsProvider, "authenticate", "sign-in: find the user by username or e-mail"),
    (LDAPProvider, "authenticate", "sign-in: find or create the LDAP user"),
    (OpenIDProvider, "authenticate", "sign-in: find or create the OpenID user"),
    (RegistrationService, "register_user", "sign-up: create the user, and the group when it is new"),
    (PasswordResetService, "generate_reset_token", "password reset: find the user by e-mail"),
    (PasswordResetService, "reset_password", "password reset: find the user by reset token"),
)
"""Deliberately global paths: they run before any tenant is known. In the app these are ``with unscoped(...)``
around the calls in ``mealie/routes/auth/auth.py`` and ``mealie/routes/users/registration.py`` / ``forgot_password``
(here the methods themselves are wrapped, as ``unscoped`` also decorates)."""


def wire() -> None:
    for cls, name, reason in UNSCOPED_PATHS:
        method = cls.__dict__.get(name)
        if method is not None and not getattr(method, "__tenantwatch_unscoped__", False):
            wrapped = tenantwatch.unscoped(reason)(method)
            wrapped.__tenantwatch_unscoped__ = True
            setattr(cls, name, wrapped)
    app.dependency_overrides.update(
        {
            _get_current_user: current_user,
            _try_get_current_user: try_current_user,
            _get_public_group: public_group,
            _get_admin_user: admin_user,
        }
    )
