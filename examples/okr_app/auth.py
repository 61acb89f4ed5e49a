"""Bearer tokens for the example: HS256 JWTs with tenant_id, sub and role claims, signed with a dev secret.

The same secret file is given to tenantwatch's JWT resolver, so the tenant comes from a verified token.
``OKR_JWT_SECRET`` overrides the development secret (use a real one outside a demo).
"""

from __future__ import annotations

import os
import tempfile
import time

import jwt

DEV_SECRET = "okr-example-development-secret-change-me"


def secret() -> str:
    return os.environ.get("OKR_JWT_SECRET") or DEV_SECRET


def secret_file() -> str:
    """A file holding the secret, for ``Settings.http.jwt_key_file``."""
    path = os.path.join(tempfile.gettempdir(), f"okr-jwt-{os.getpid()}.key")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(secret())
    return path


def make_token(tenant: int, user: int, role: str, *, ttl: int = 3600, key: str | None = None) -> str:
    claims = {"tenant_id": str(tenant), "sub": str(user), "role": role, "exp": int(time.time()) + ttl}
    return jwt.encode(claims, key or secret(), algorithm="HS256")
