"""Refresh tokens: hash-only storage, one family per login, atomic rotation, reuse detection.

A refresh token is a secret shown once; the database keeps its keyed digest. Presenting it rotates it: one
conditional ``UPDATE … WHERE digest = :d AND rotated_at IS NULL`` claims it, so of two concurrent refreshes with
the same token exactly one wins, and in the same transaction the session is extended and the successor token
stored. The loser, arriving within a short grace window, is told it lost the race (the client refreshed twice);
a rotated token presented after the window can only be a copy, so the whole family and its session are revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal, cast

import msgspec
from sqlalchemy import Connection, Executable, Table, bindparam, case, delete, insert, select, update
from uuid_utils.compat import uuid7

from sessiongate import meters
from sessiongate.core.errors import Conflict, SessionExpired, SessionRevoked, Unauthenticated
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.tables import SessionRecord
from sessiongate.tokens.opaque import Digester, new_secret
from sessiongate.tokens.refresh_tables import RefreshTokenRecord

__all__ = ("RefreshRaced", "RefreshTokenReused", "RefreshTokens", "Rotated")

R = cast("Table", RefreshTokenRecord.__table__)
S = cast("Table", SessionRecord.__table__)
Outcome = Literal["unknown", "expired", "revoked", "raced", "reused", "session_gone"]


class RefreshRaced(Conflict):
    """The token was rotated a moment ago by another request with the same token; nothing was revoked.

    Attributes:
        session_id: The session the token belongs to (the caller proved it holds the token).
    """

    code = "refresh_raced"

    def __init__(self, message: str = "refresh token already used", *, session_id: str) -> None:
        super().__init__(message)
        self.session_id = session_id


class RefreshTokenReused(SessionRevoked):
    """A rotated token came back after the grace window; its session and family were revoked."""

    code = "refresh_token_reused"


class Rotated(msgspec.Struct, frozen=True, kw_only=True):
    """A successful rotation: the session it extended, its new expiry, and the successor token (shown once)."""

    session_id: str
    expires_at: datetime
    secret: str


class _Result(msgspec.Struct, frozen=True, kw_only=True):
    """Why a rotation did not happen."""

    outcome: Outcome
    session_id: str | None = None
    sessions_revoked: int = 0
    """How many sessions the outcome revoked (a reuse revokes its login's)."""


class RefreshTokens:
    """Issue and rotate refresh tokens over the shared database.

    Args:
        runner: Where statements run; rotation uses one transaction of it.
        digester: Keys the stored digests (the same key as every other secret of the gateway).
        mint: Makes a new secret; the default is 32 random bytes, URL-safe base64.
        on_reuse: Awaited with the session's id when a reuse revoked it, before the refusal is raised (the audit).
    """

    def __init__(
        self,
        runner: StatementRunner,
        digester: Digester,
        *,
        mint: Callable[[], str] = new_secret,
        on_reuse: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.runner = runner
        self.digester = digester
        self.mint = mint
        self.on_reuse = on_reuse

    async def issue(self, session_id: str, *, now: datetime, expires_at: datetime, family_id: str | None = None) -> str:
        """A new token for ``session_id``, starting a family (a login) unless ``family_id`` names one.

        Returns:
            The secret, which only the caller ever sees.
        """
        secret = self.mint()
        values = {
            "id": uuid7(),
            "family_id": family_id or str(uuid7()),
            "session_id": uuid.UUID(session_id),
            "digest": self.digester.digest(secret),
            "expires_at": expires_at,
            "rotated_at": None,
            "revoked_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.runner.write(insert(R).values(values))
        return secret

    async def rotate(
        self, secret: str, *, now: datetime, grace: float, ttl: float | None, session_id: str | None = None
    ) -> Rotated:
        """Exchange ``secret`` for its successor and extend its session, in one transaction.

        Args:
            secret: The refresh token as presented.
            now: The current time.
            grace: Seconds after a rotation during which the rotated token is answered with :class:`RefreshRaced`
                instead of being treated as stolen.
            ttl: Extend the session to ``now + ttl`` (capped by its absolute expiry); ``None`` leaves it as is.
            session_id: When given, the token must belong to this session (else it is unknown).

        Raises:
            Unauthenticated: the token is unknown, or belongs to another session.
            SessionExpired: the token has expired.
            SessionRevoked: the token or its session was revoked (or the session is gone).
            RefreshRaced: the token was rotated within the last ``grace`` seconds.
            RefreshTokenReused: the token was rotated earlier; its family and session are now revoked.
        """
        # Under the current digest key first; the ring's other keys only if that claims nothing (a token issued before
        # a rotation of the digest key). Its successor is digested under the current key.
        digests = self.digester.digests(secret)
        successor = self.mint()
        expected = uuid.UUID(session_id) if session_id is not None else None

        def work(conn: Connection) -> Rotated | _Result:
            claim = update(R).where(R.c.digest == bindparam("presented"), R.c.rotated_at.is_(None))
            claim = claim.where(R.c.revoked_at.is_(None), R.c.expires_at > now)
            if expected is not None:
                claim = claim.where(R.c.session_id == expected)
            claim = claim.values(rotated_at=now, updated_at=now).returning(R.c.family_id, R.c.session_id)
            for digest in digests:
                if (won := conn.execute(claim, {"presented": digest}).first()) is not None:
                    break
            else:
                return self._why_not(conn, secret, digests, now=now, grace=grace, expected=expected)
            extended = conn.execute(_extend(won.session_id, now=now, ttl=ttl)).first()
            if extended is None:
                return _Result(outcome="session_gone")
            conn.execute(
                insert(R).values(
                    id=uuid7(),
                    family_id=won.family_id,
                    session_id=won.session_id,
                    digest=self.digester.digest(successor),
                    expires_at=extended.expires_at,
                    rotated_at=None,
                    revoked_at=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            return Rotated(session_id=str(won.session_id), expires_at=extended.expires_at, secret=successor)

        result = await self.runner.transaction(work)
        if isinstance(result, Rotated):
            return result
        if result.outcome == "reused":
            dialect = meters.dialect()
            meters.REFRESH_REUSE.labels(dialect).inc()
            meters.SESSIONS_REVOKED.labels(dialect).inc(result.sessions_revoked)
        if result.outcome == "reused" and result.session_id is not None and self.on_reuse is not None:
            await self.on_reuse(result.session_id)
        raise _error(result)

    def _why_not(
        self,
        conn: Connection,
        secret: str,
        digests: list[str],
        *,
        now: datetime,
        grace: float,
        expected: uuid.UUID | None,
    ) -> _Result:
        row = conn.execute(
            select(R.c.family_id, R.c.session_id, R.c.digest, R.c.expires_at, R.c.rotated_at, R.c.revoked_at).where(
                R.c.digest.in_(digests)
            )
        ).first()
        if row is None or not self.digester.matches(secret, row.digest):
            return _Result(outcome="unknown")
        if expected is not None and row.session_id != expected:
            return _Result(outcome="unknown")
        if row.revoked_at is not None:
            return _Result(outcome="revoked")
        if row.expires_at <= now:
            return _Result(outcome="expired")
        if row.rotated_at is not None and now - row.rotated_at <= timedelta(seconds=grace):
            return _Result(outcome="raced", session_id=str(row.session_id))
        # Rotated long enough ago that no honest client still holds it: a copy is in use. End the login.
        conn.execute(
            update(R)
            .where(R.c.family_id == row.family_id, R.c.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now)
        )
        ended = conn.execute(
            update(S)
            .where(S.c.id == row.session_id, S.c.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=S.c.version + 1)
        )
        return _Result(outcome="reused", session_id=str(row.session_id), sessions_revoked=max(ended.rowcount, 0))

    async def sweep_expired(self, *, now: datetime, batch: int = 500) -> int:
        """Delete one batch of expired tokens (their sessions are over too); how many went."""
        victims = select(R.c.id).where(R.c.expires_at <= now).order_by(R.c.expires_at).limit(batch).scalar_subquery()
        return (await self.runner.write(delete(R).where(R.c.id.in_(victims)))).rowcount


def _extend(session_id: uuid.UUID, *, now: datetime, ttl: float | None) -> Executable:
    live = (S.c.id == session_id, S.c.revoked_at.is_(None), S.c.expires_at > now)
    if ttl is None:
        return select(S.c.expires_at).where(*live)
    wanted = now + timedelta(seconds=ttl)
    capped = case(
        (S.c.absolute_expires_at.is_not(None) & (S.c.absolute_expires_at < wanted), S.c.absolute_expires_at),
        else_=wanted,
    )
    return (
        update(S)
        .where(*live)
        .values(expires_at=capped, last_seen_at=now, updated_at=now, version=S.c.version + 1)
        .returning(S.c.expires_at)
    )


def _error(result: _Result) -> Exception:
    if result.outcome == "raced":
        return RefreshRaced(session_id=result.session_id or "")
    if result.outcome == "reused":
        return RefreshTokenReused("refresh token reused")
    if result.outcome == "expired":
        return SessionExpired("refresh token expired")
    if result.outcome in {"revoked", "session_gone"}:
        return SessionRevoked("session revoked")
    return Unauthenticated("invalid refresh token")
