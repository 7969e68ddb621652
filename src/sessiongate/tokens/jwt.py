"""HS256 JWTs from a key ring: ``kid`` in the header, ``exp`` always set, a fixed algorithm list."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping, Set
from datetime import datetime
from typing import Any

import jwt
import msgspec
from jwt.algorithms import HMACAlgorithm

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

    __slots__ = ("_active", "_header", "_keys", "_leeway", "_own_headers", "_retired", "_retires", "reload")

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
        self._header = _own_header(active_kid) + b"."
        self._own_headers = {
            _own_header(kid): (kid, key) for kid, key in self._keys.items() if _pyjwt_takes_without_warning(key)
        }

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
        claims = self._own_token_claims(token, now=now)
        if claims is None:
            claims = self._pyjwt_claims(token, now=now)
        # exp, iat and nbf are checked here against the injected clock, not the wall clock PyJWT would use.
        if now.timestamp() >= claims["exp"] + self._leeway:
            raise SessionExpired("token expired")
        for claim in ("iat", "nbf"):
            value = claims.get(claim)
            if value is not None and (not isinstance(value, int | float) or value > now.timestamp() + self._leeway):
                raise Unauthenticated("invalid token")
        return claims

    def _own_token_claims(self, token: str, *, now: datetime) -> dict[str, Any] | None:
        """The claims of a token exactly as this ring writes them, verified; ``None`` for any other token.

        PyJWT's decode of an amity or portos bearer token was a tenth of the gateway's work in issue 17's mix: it parses
        the header twice, checks the key's shape (a JSON parse of it) on every call, and decodes each segment with
        checks built for tokens from anywhere. A token this ring signed has one of a few known headers and canonical
        segments, so it is checked here by comparing bytes: the header is one of the ring's (so its ``alg`` is HS256
        and its key is known), the signature is the one the key makes, compared in constant time, and the payload
        decodes to a JSON object with ``exp`` and ``iat`` that passes PyJWT's other checks (no ``aud``, text in
        ``sub`` and ``jti``). Anything else, valid or not, gets ``None`` and goes to :meth:`_pyjwt_claims`, which
        answers as before: this path only ever accepts what PyJWT accepts, with the same claims (a property test
        holds that).
        """
        head, dot, rest = token.partition(".")
        payload, dot2, signature = rest.partition(".")
        if not (dot and dot2) or not token.isascii():
            return None
        own = self._own_headers.get(head.encode())
        if own is None:
            return None
        kid, key = own
        retires = self._retires.get(kid)
        if retires is not None and now.timestamp() >= retires:
            return None  # refused by the other path, as every token it does not take
        signing_input = token[: len(head) + 1 + len(payload)].encode()
        expected = _b64(hmac.new(key, signing_input, hashlib.sha256).digest())
        if not hmac.compare_digest(signature.encode(), expected):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        except (ValueError, binascii.Error):
            return None
        if _b64(raw) != payload.encode():  # not the canonical form PyJWT insists on
            return None
        try:
            claims = json.loads(raw)  # PyJWT's own parser: the same numbers, duplicates and escapes
        except (ValueError, RecursionError):
            return None
        if not isinstance(claims, dict) or claims.get("exp") is None or claims.get("iat") is None:
            return None
        # PyJWT's other checks with these options: no audience asked for, so a token naming one is refused; a subject
        # or a token id must be text.
        if claims.get("aud") or any(name in claims and not isinstance(claims[name], str) for name in ("sub", "jti")):
            return None
        return claims

    def _pyjwt_claims(self, token: str, *, now: datetime) -> dict[str, Any]:
        """The claims of ``token`` verified by PyJWT, the key chosen by ``kid`` (any token at all)."""
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
        return claims


def _own_header(kid: str) -> bytes:
    return _b64(msgspec.json.encode({"alg": ALGORITHMS[0], "kid": kid, "typ": "JWT"}))


def _pyjwt_takes_without_warning(key: bytes) -> bool:
    """Whether PyJWT verifies with ``key`` silently: not refused as a non-HMAC key, not warned about as short."""
    algorithm = HMACAlgorithm(HMACAlgorithm.SHA256)
    try:
        return algorithm.check_key_length(algorithm.prepare_key(key)) is None
    except jwt.PyJWTError:
        return False


def _b64(data: bytes) -> bytes:
    """Base64url without padding (RFC 7515, section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=")
