"""What a credential the gateway issued stands for, without using it: RFC 7662 introspection, RFC 7009 revocation.

Every kind of credential is looked up: a dialect's JWT (zelf's, portos's ``tokenId``, amity's access token), a
session's opaque secret (issp's ``sessionId``, saymon's ``sid``) and a portos refresh token. Each is checked by the
rules of the dialect that issued it, as its own routes check it, but with a policy that never touches the session:
asking about a session neither slides it nor records a use. A session of a dialect that is not enabled is
inactive, as no route could accept it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

import msgspec

from sessiongate.core.errors import GatewayError
from sessiongate.core.models import ExpiryPolicy, Session
from sessiongate.dialects.base import DialectPlugin
from sessiongate.runtime import Services

__all__ = ("Found", "Hint", "find")

Hint = Literal["access_token", "refresh_token"]
_LONGEST = 4096
_SESSION_CLAIMS = ("sid", "session")
"""The claims the dialects' JWTs name their session by (portos and amity ``sid``, zelf ``session``)."""


class Found(msgspec.Struct, frozen=True, kw_only=True):
    """An active credential: the live session it stands for, when it was issued and until when it holds."""

    session: Session
    issued_at: datetime
    expires_at: datetime


async def find(
    token: str, services: Services, dialects: Mapping[str, DialectPlugin], *, hint: str | None = None
) -> Found | None:
    """The active credential ``token`` is, or ``None`` for anything else (unknown, expired, revoked, malformed).

    ``hint`` only orders the lookups of an opaque token (RFC 7662 2.1: the search extends to every kind anyway);
    both lookups are always made, so an answer takes as long whichever kind a token is, or whether it is one.
    """
    if not token or len(token) > _LONGEST or "\x00" in token or not token.isascii():
        return None
    if token.count(".") == 2:  # a JWT; no opaque credential of the gateway holds a dot
        return await _jwt(token, services, dialects)
    secret = await _secret(token, services, dialects)
    refresh = await _refresh(token, services, dialects)
    first, second = (refresh, secret) if hint == "refresh_token" else (secret, refresh)
    return first or second


def untouched(policy: ExpiryPolicy) -> ExpiryPolicy:
    """``policy`` with every rule that ends a session, but no use recorded and no slide (no write)."""
    return msgspec.structs.replace(policy, touch_interval=float("inf"))


async def _jwt(token: str, services: Services, dialects: Mapping[str, DialectPlugin]) -> Found | None:
    sessions = services.sessions
    try:
        claims = await sessions.keys.verify(token, now=sessions.now())
    except GatewayError:
        return None
    claim = next((c for c in _SESSION_CLAIMS if isinstance(claims.get(c), str)), None)
    if claim is None:
        return None
    named = await sessions.store.by_id(claims[claim])
    if named is None or (dialect := dialects.get(named.dialect)) is None:
        return None
    try:
        session, _ = await sessions.resolve_jwt(
            token, untouched(dialect.expiry_policy()), session_claim=claim, tenant=None, dialect=dialect.name
        )
    except GatewayError:
        return None
    issued = _instant(claims.get("iat")) or session.created_at
    expires = min(_instant(claims.get("exp")) or session.expires_at, session.expires_at)
    return Found(session=session, issued_at=issued, expires_at=expires)


async def _secret(token: str, services: Services, dialects: Mapping[str, DialectPlugin]) -> Found | None:
    sessions = services.sessions
    found = await services.digester.find(token, sessions.store.by_digest, sessions.store.replace_token_digest)
    if found is None or not services.digester.matches(token, found[1]):
        return None
    if (dialect := dialects.get(found[0].dialect)) is None:
        return None
    try:
        session = await sessions.resolve_secret(
            token, untouched(dialect.expiry_policy()), tenant=found[0].tenant, dialect=dialect.name
        )
    except GatewayError:
        return None
    return Found(session=session, issued_at=session.created_at, expires_at=session.expires_at)


async def _refresh(token: str, services: Services, dialects: Mapping[str, DialectPlugin]) -> Found | None:
    # Active as long as a refresh would accept it: not rotated, not revoked, not expired, and its session live.
    found = await services.sessions.refresh_token(token)
    if found is None or found[1].dialect not in dialects:
        return None
    stored, session = found
    return Found(session=session, issued_at=stored.created_at, expires_at=min(stored.expires_at, session.expires_at))


def _instant(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None
