"""Bearer tokens for the example: HS256 JWTs with tenant_id, team_id, sub and role claims, signed with a dev secret.

``tenant_id`` is the organization's UUID and ``team_id`` the caller's team in it (dashed text; optional). The same
secret file is given to tenantwatch's JWT resolver, so the server span names the tenant from a verified token; the
app's own current-user dependency verifies the token as well and sets the tenant context its endpoints run in
(main.py). ``OKR_JWT_SECRET`` overrides the development secret (use a real one outside a demo).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import tempfile
import time
import uuid
from typing import Any

import jwt

DEV_SECRET = "okr-example-development-secret-change-me"


def secret() -> str:
    return os.environ.get("OKR_JWT_SECRET") or DEV_SECRET


@functools.cache
def secret_file() -> str:
    """A private file (mode 0600, one per process) holding the secret, for ``Settings.http.jwt_key_file``."""
    fd, path = tempfile.mkstemp(prefix="okr-jwt-", suffix=".key")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret())
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


def make_token(
    tenant: uuid.UUID | str,
    user: int,
    role: str,
    *,
    team: uuid.UUID | str | None = None,
    ttl: int = 3600,
    key: str | None = None,
) -> str:
    """A token for organization ``tenant`` (its UUID), user ``user`` with ``role``, member of ``team`` if given."""
    claims = {"tenant_id": str(tenant), "sub": str(user), "role": role, "exp": int(time.time()) + ttl}
    if team is not None:
        claims["team_id"] = str(team)
    return jwt.encode(claims, key or secret(), algorithm="HS256")


def verify(token: str) -> dict[str, Any]:
    """The claims of a token signed with the secret and not expired; ``jwt.InvalidTokenError`` otherwise."""
    claims: dict[str, Any] = jwt.decode(token, secret(), algorithms=["HS256"], options={"require": ["exp"]})
    return claims


def main(argv: list[str] | None = None) -> int:
    """``python -m examples.okr_app.auth --tenant acme --role admin``: print a token for curl or the traffic
    generator."""
    import argparse

    parser = argparse.ArgumentParser(description="Mint a bearer token for the OKR example (dev secret).")
    parser.add_argument("--tenant", default="acme", help="seeded organization: acme, globex, initech (or 1, 2, 3)")
    parser.add_argument("--team", default="growth", help="seeded team of that organization: growth, platform")
    parser.add_argument("--user", type=int, help="user id (default: the seeded user of that role)")
    parser.add_argument("--role", choices=("member", "admin", "superuser"), default="member")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (negative: already expired)")
    args = parser.parse_args(argv)
    from .seed import tenant, user_id

    try:
        org = tenant(args.tenant)
    except KeyError:
        parser.error(f"--tenant: no seeded organization {args.tenant!r}")
    try:
        team = org.team(args.team)
    except KeyError:
        parser.error(f"--team: no seeded team {args.team!r}")
    user = args.user if args.user is not None else user_id(org, args.role)
    print(make_token(org.id, user, args.role, team=team, ttl=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
