"""HS256 JWTs from a key ring: ``kid`` in the header, ``exp`` always set, a fixed algorithm list."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt
import msgspec

from sessiongate.core.errors import SessionExpired, Unauthenticated

__all__ = ("ALGORITHMS", "KeyRing")

ALGORITHMS = ("HS256",)
"""The only algorithms accepted; ``none`` and asymmetric confusions are impossible by construction."""


class KeyRing:
    """Signs with the active key and verifies with any key of the ring, chosen by ``kid``."""

    __slots__ = ("_active", "_header", "_keys", "_leeway")

    def __init__(self, keys: Mapping[str, str], active_kid: str, leeway: int) -> None:
        if active_kid not in keys:
            msg = f"active kid {active_kid!r} is not in the key ring"
            raise ValueError(msg)
        self._keys = {kid: key.encode() for kid, key in keys.items()}
        self._active = active_kid
        self._leeway = leeway
        # The header PyJWT would write (keys sorted), encoded once: it only changes with the active key.
        self._header = _b64(msgspec.json.encode({"alg": ALGORITHMS[0], "kid": active_kid, "typ": "JWT"})) + b"."

    @property
    def active_kid(self) -> str:
        """The ``kid`` new tokens are signed with."""
        return self._active

    def encode(self, claims: Mapping[str, Any], *, issued_at: datetime, expires_at: datetime) -> str:
        """A signed token carrying ``claims`` plus ``iat`` and ``exp`` (Unix seconds).

        Signed here rather than by ``jwt.encode``, which checks the key's format and builds the header again on every
        call (an eighth of a zelf create's time). The token is the one PyJWT writes (the same header, compact JSON),
        except that non-ASCII text is UTF-8 rather than ``\\u`` escapes, the same JSON; PyJWT still verifies every
        token in :meth:`decode`.
        """
        payload = {**claims, "iat": int(issued_at.timestamp()), "exp": int(expires_at.timestamp())}
        signing_input = self._header + _b64(msgspec.json.encode(payload))
        signature = hmac.new(self._keys[self._active], signing_input, hashlib.sha256).digest()
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def decode(self, token: str, *, now: datetime) -> dict[str, Any]:
        """The claims of a token this ring signed and that has not expired at ``now``.

        Raises:
            SessionExpired: the signature is good but ``exp`` has passed (beyond the leeway).
            Unauthenticated: anything else is wrong with it.
        """
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid", "")))
            if key is None or header.get("alg") not in ALGORITHMS:
                raise Unauthenticated("invalid token")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                leeway=self._leeway,
                options={"require": ["exp", "iat"], "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("invalid token") from exc
        # exp, iat and nbf are checked here against the injected clock, not the wall clock PyJWT would use.
        if now.timestamp() >= claims["exp"] + self._leeway:
            raise SessionExpired("token expired")
        for claim in ("iat", "nbf"):
            value = claims.get(claim)
            if value is not None and (not isinstance(value, int | float) or value > now.timestamp() + self._leeway):
                raise Unauthenticated("invalid token")
        return claims


def _b64(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")
