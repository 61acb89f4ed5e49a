"""JWT resolver: the tenant, user and role claims of a bearer token whose signature verifies.

Keys come from ``jwt_key_file`` (a PEM public key for RS*/ES*/EdDSA, or a shared secret for HS*) or ``jwks_file``
(keys chosen by the token's ``kid``), loaded once and reloaded when the file changes. Only the configured
algorithms are accepted (never ``none``); ``exp``/``nbf`` are checked, and ``aud``/``iss`` when configured. A token
that fails any check sets no tenant; the rejection reason (``unsigned``, ``expired``, ``invalid_signature``,
``invalid_audience``, ``invalid_issuer``, ``unknown_key``, ``malformed``, ``no_key``) is counted by the middleware.

Verified tokens are remembered (up to ``cache_size`` of them, by exact token text, for the key generation that
verified them): a client sending the same token again costs a dictionary lookup and an ``exp`` comparison instead of a
signature check. A remembered token still expires at its ``exp``, and every remembered token is forgotten when a key
file changes. Rejected tokens are never remembered.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import jwt
from jwt import PyJWK

from tenantwatch.config import HttpSettings
from tenantwatch.core.request import RequestInfo
from tenantwatch.instrumentation.resolvers import Resolution, declared_keys

__all__ = ["JWTResolver"]

logger = logging.getLogger(__name__)

_MAX_TOKEN = 8192
_CACHE_SIZE = 1024


class _KeyFile:
    """A key file read once and again when its mtime changes."""

    _RECHECK_SECONDS = 1.0

    def __init__(self, path: str, parse: Any) -> None:
        self._path, self._parse = path, parse
        self._mtime: float | None = None
        self._value: Any = None
        self._checked = float("-inf")
        self.version = 0
        """Incremented each time the file is (re)loaded."""

    def get(self) -> Any:
        now = time.monotonic()
        if self._value is not None and now - self._checked < self._RECHECK_SECONDS:
            return self._value  # a stat per second at most, not one per request
        self._checked = now
        try:
            mtime = os.stat(self._path).st_mtime
        except OSError:
            if self._value is None:
                logger.warning("tenantwatch: JWT key file %s cannot be read", self._path)
            return self._value
        if mtime != self._mtime:
            try:
                with open(self._path, encoding="utf-8") as handle:
                    self._value = self._parse(handle.read())
                self._mtime = mtime
                self.version += 1
            except Exception:
                logger.exception("tenantwatch: JWT key file %s is not usable", self._path)
        return self._value


def _jwks(text: str) -> dict[str, PyJWK]:
    keys: dict[str, PyJWK] = {}
    for entry in json.loads(text).get("keys", []):
        key = PyJWK.from_dict(entry)
        keys[str(entry.get("kid", ""))] = key
    return keys


class JWTResolver:
    """Verifies ``Authorization: Bearer <jwt>`` and reads its claims.

    ``http`` supplies the configuration (``jwt_*`` fields, ``jwks_file``); ``cache_size`` bounds the verified-token
    cache (0 turns it off); ``clock`` (seconds since the epoch) is what ``exp`` of a remembered token is compared to.
    """

    def __init__(
        self, http: HttpSettings, *, cache_size: int = _CACHE_SIZE, clock: Callable[[], float] = time.time
    ) -> None:
        self._http = http
        self._algorithms = [a for a in http.jwt_algorithms if a.lower() != "none"]
        self._key = _KeyFile(http.jwt_key_file, lambda text: text.strip()) if http.jwt_key_file else None
        self._jwks = _KeyFile(http.jwks_file, _jwks) if http.jwks_file else None
        self._options = {"require": ["exp"], "verify_aud": http.jwt_audience is not None}
        self._cache_size = cache_size
        self._clock = clock
        self._verified: dict[str, tuple[tuple[int, int], float, Resolution | None]] = {}
        """token -> (key generation, exp, what it resolved to)."""

    def _generation(self) -> tuple[int, int]:
        """The versions of the key files, reloading a changed file (at most one stat a second)."""
        key, jwks = self._key, self._jwks
        if key is not None:
            key.get()
        if jwks is not None:
            jwks.get()
        return (key.version if key is not None else 0, jwks.version if jwks is not None else 0)

    def _remembered(self, token: str, generation: tuple[int, int]) -> tuple[bool, Resolution | None]:
        entry = self._verified.get(token)
        if entry is None:
            return False, None
        if entry[0] != generation:
            self._verified.pop(token, None)
            return False, None
        if self._clock() >= entry[1]:
            self._verified.pop(token, None)
            return True, Resolution(None, source="jwt", rejected="expired")
        return True, entry[2]

    def _remember(
        self, token: str, generation: tuple[int, int], claims: dict[str, Any], found: Resolution | None
    ) -> None:
        if self._cache_size <= 0:
            return
        try:
            expires = float(claims["exp"])
        except (KeyError, TypeError, ValueError):
            return
        verified = self._verified
        if len(verified) >= self._cache_size:
            try:
                del verified[next(iter(verified))]  # oldest first
            except (KeyError, RuntimeError, StopIteration):
                verified.clear()
        verified[token] = (generation, expires, found)

    @property
    def configured(self) -> bool:
        return self._key is not None or self._jwks is not None

    def token(self, request: RequestInfo) -> str | None:
        header = request.header("authorization")
        if header is None or header[:7].lower() != "bearer ":
            return None
        return header[7:].strip() or None

    @staticmethod
    def _header(token: str) -> dict[str, Any] | None:
        try:
            return jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None

    def _refused_algorithm(self, algorithm: str) -> str | None:
        if not algorithm or algorithm.lower() == "none":
            return "unsigned"
        if algorithm not in self._algorithms:
            return "algorithm_not_allowed"
        return None

    def resolve(self, request: RequestInfo) -> Resolution | None:
        token = self.token(request)
        if token is None:
            return None
        if len(token) > _MAX_TOKEN:
            return Resolution(None, source="jwt", rejected="malformed")
        generation = self._generation()
        known, answer = self._remembered(token, generation)
        if known:
            return answer
        header: dict[str, Any] | None = None
        key: Any = None
        if self._jwks is not None:  # the key depends on the token's kid: read the header first
            header = self._header(token)
            if header is None or not isinstance(header.get("alg"), str):
                return Resolution(None, source="jwt", rejected="malformed")
            refused = self._refused_algorithm(str(header["alg"]))
            if refused is not None:
                return Resolution(None, source="jwt", rejected=refused)
            found = (self._jwks.get() or {}).get(str(header.get("kid", "")))
            key = found.key if found is not None else None
            if key is None and self._key is None:
                return Resolution(None, source="jwt", rejected="unknown_key")
        if key is None and self._key is not None:
            key = self._key.get()
        if key is None:
            return Resolution(None, source="jwt", rejected="no_key")
        http = self._http
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=http.jwt_audience,
                issuer=http.jwt_issuer,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            return Resolution(None, source="jwt", rejected="expired")
        except jwt.InvalidAudienceError:
            return Resolution(None, source="jwt", rejected="invalid_audience")
        except jwt.InvalidIssuerError:
            return Resolution(None, source="jwt", rejected="invalid_issuer")
        except jwt.InvalidSignatureError:
            return Resolution(None, source="jwt", rejected="invalid_signature")
        except jwt.ImmatureSignatureError:
            return Resolution(None, source="jwt", rejected="not_yet_valid")
        except jwt.InvalidAlgorithmError:
            header = self._header(token) or {}
            return Resolution(
                None,
                source="jwt",
                rejected=self._refused_algorithm(str(header.get("alg", ""))) or "algorithm_not_allowed",
            )
        except (jwt.PyJWTError, ValueError, TypeError):
            return Resolution(None, source="jwt", rejected="malformed")
        found = self._claims(claims)
        self._remember(token, generation, claims, found)
        return found

    def _claims(self, claims: dict[str, Any]) -> Resolution | None:
        http = self._http
        tenant = claims.get(http.jwt_tenant_claim)
        keys = declared_keys({key: claims.get(claim) for key, claim in http.key_claims.items()})
        if tenant is None:
            return Resolution(None, source="jwt", keys=keys) if keys else None
        user = claims.get(http.jwt_user_claim)
        role = claims.get(http.jwt_role_claim)
        return Resolution(
            str(tenant)[:256],
            None if user is None else str(user)[:256],
            None if role is None else str(role)[:256],
            "jwt",
            keys=keys,
        )
