"""HS256 JWTs from a key ring: ``kid`` in the header, ``exp`` always set, a fixed algorithm list."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping, Set
from datetime import datetime
from typing import Any

import jwt
import msgspec

from sessiongate.core.errors import SessionExpired, Unauthenticated

__all__ = ("ALGORITHMS", "KeyRing", "UnknownKey")

ALGORITHMS = ("HS256",)
"""The only algorithms accepted; ``none`` and asymmetric confusions are impossible by construction."""


class UnknownKey(Unauthenticated):
    """The token names a ``kid`` the ring does not hold: a forgery, or a key made since the ring was read."""


class KeyRing:
    """Signs with the active key and verifies with any key of the ring, chosen by ``kid``, until it retires.

    Args:
        keys: Every key that verifies, by ``kid``.
        active_kid: The one that signs.
        leeway: Seconds of clock skew accepted.
        retires: When keys stop verifying, by ``kid`` (those absent verify until they leave the ring).
        retired: Kids of keys that have left the ring: their tokens are refused without reading the ring again.
        reload: Reads the ring again (:meth:`verify` calls it for a ``kid`` it does not know).
    """

    __slots__ = ("_active", "_header", "_keys", "_leeway", "_retired", "_retires", "reload")

    def __init__(
        self,
        keys: Mapping[str, str],
        active_kid: str,
        leeway: int,
        *,
        retires: Mapping[str, datetime] | None = None,
        retired: Set[str] = frozenset(),
        reload: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._leeway = leeway
        self.reload = reload
        self.replace(keys, active_kid, retires=retires, retired=retired)

    def replace(
        self,
        keys: Mapping[str, str],
        active_kid: str,
        *,
        retires: Mapping[str, datetime] | None = None,
        retired: Set[str] = frozenset(),
    ) -> None:
        """Take up a key ring read again (a rotation made by another process); every holder of this object sees it.

        Raises:
            ValueError: ``active_kid`` is not one of ``keys``.
        """
        if active_kid not in keys:
            msg = f"active kid {active_kid!r} is not in the key ring"
            raise ValueError(msg)
        self._keys = {kid: key.encode() for kid, key in keys.items()}
        self._retires = {kid: when.timestamp() for kid, when in (retires or {}).items()}
        self._retired = frozenset(retired)
        self._active = active_kid
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

    async def verify(self, token: str, *, now: datetime) -> dict[str, Any]:
        """:meth:`decode`, reading the ring again first when the token names a ``kid`` it does not hold.

        Another process may sign with a key this one has not read yet; :attr:`reload` is rate-limited, so tokens
        naming made-up keys cannot make every request read the database.

        Raises:
            SessionExpired: the signature is good but ``exp`` has passed (beyond the leeway).
            Unauthenticated: anything else is wrong with it.
        """
        try:
            return self.decode(token, now=now)
        except UnknownKey:
            if self.reload is None:
                raise
        await self.reload()
        return self.decode(token, now=now)

    def decode(self, token: str, *, now: datetime) -> dict[str, Any]:
        """The claims of a token this ring signed and that has not expired at ``now``.

        Raises:
            SessionExpired: the signature is good but ``exp`` has passed (beyond the leeway).
            UnknownKey: the token names a ``kid`` the ring does not hold.
            Unauthenticated: anything else is wrong with it.
        """
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in ALGORITHMS:
                raise Unauthenticated("invalid token")
            kid = str(header.get("kid", ""))
            key = self._keys.get(kid)
            if key is None:
                raise Unauthenticated("invalid token") if kid in self._retired else UnknownKey("invalid token")
            retires = self._retires.get(kid)
            if retires is not None and now.timestamp() >= retires:
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
