"""Refresh-token families in SQL: hash-only rows, one family per login, atomic rotation, reuse detection.

Presenting a token rotates it: one conditional ``UPDATE … WHERE digest = :d AND rotated_at IS NULL`` claims it, so
of two concurrent rotations of the same token exactly one wins, and in the same transaction the session is extended
and the successor stored. A token that claims nothing is looked up to say why; a rotated one presented after the
grace window can only be a copy, so its whole family and its session are revoked, and the audit events saying so
are written in that same transaction (a revoke is never stored without them, nor they without it).
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from uuid_utils.compat import uuid7

from sessiongate.core.models import Session
from sessiongate.core.store import Rotation, StoredRefreshToken
from sessiongate.storage.audit_table import AUDIT
from sessiongate.storage.driver_query import lookup
from sessiongate.storage.refresh_tables import RefreshTokenRecord
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.store import SESSION_COLUMNS, session_from_row
from sessiongate.storage.tables import SessionRecord

__all__ = ("SqlRefreshStore",)

R = cast("Table", RefreshTokenRecord.__table__)
S = cast("Table", SessionRecord.__table__)
# Built once: a statement's cache key is memoised on it, and a rotation runs on the single writer's thread.
_LIVE = (S.c.revoked_at.is_(None), S.c.expires_at > bindparam("now"))
_CLAIM = (
    update(R)
    .where(R.c.digest == bindparam("presented"), R.c.rotated_at.is_(None))
    .where(R.c.revoked_at.is_(None), R.c.expires_at > bindparam("now"))
    # Only a token whose session is live is claimed: one of an ended session stays as it was (session_gone), never
    # left rotated without a successor, which would take it for a stolen copy once the grace is over.
    .where(select(S.c.id).where(S.c.id == R.c.session_id, *_LIVE).exists())
    .values(rotated_at=bindparam("now"), updated_at=bindparam("now"))
    .returning(R.c.family_id, R.c.session_id)
)
_CLAIM_OF_SESSION = _CLAIM.where(R.c.session_id == bindparam("expected"))
_SUCCESSOR = insert(R).values(
    id=bindparam("id"),
    family_id=bindparam("family_id"),
    session_id=bindparam("session_id"),
    digest=bindparam("digest"),
    expires_at=bindparam("expires_at"),
    rotated_at=None,
    revoked_at=None,
    created_at=bindparam("now"),
    updated_at=bindparam("now"),
)
_LIVE_SESSION = select(*SESSION_COLUMNS).where(S.c.id == bindparam("sid"), *_LIVE)
_EXTEND = (
    update(S)
    .where(S.c.id == bindparam("sid"), *_LIVE)
    .values(expires_at=bindparam("until"), last_seen_at=bindparam("now"), updated_at=bindparam("now"))
    .values(version=S.c.version + 1)
    .returning(*SESSION_COLUMNS)
)
_EXTEND_SEEN = _EXTEND.where(S.c.version == bindparam("seen_version"))
_BY_DIGEST = select(R.c.session_id, R.c.digest, R.c.created_at, R.c.expires_at, R.c.rotated_at, R.c.revoked_at).where(
    R.c.digest == bindparam("presented")
)


class SqlRefreshStore:
    """:class:`~sessiongate.core.store.RefreshStore` over the shared statement runner, on SQLite and PostgreSQL alike.

    Args:
        runner: Where statements run; a rotation is one transaction of it.
    """

    def __init__(self, runner: StatementRunner) -> None:
        self.runner = runner

    async def issue(
        self, session_id: str, *, digest: str, now: datetime, expires_at: datetime, family_id: str | None = None
    ) -> None:
        """Store a new token's digest for ``session_id``, in a new family unless ``family_id`` names one."""
        values = {
            "id": uuid7(),
            "family_id": family_id or str(uuid7()),
            "session_id": uuid.UUID(session_id),
            "digest": digest,
            "expires_at": expires_at,
            "rotated_at": None,
            "revoked_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.runner.write(insert(R).values(values))

    async def rotate(
        self,
        digests: Sequence[str],
        *,
        successor: str,
        now: datetime,
        grace: float,
        expiry: Callable[[Session], datetime] | None,
        session_id: str | None,
        reuse_events: Callable[[str, Session | None], list[dict[str, Any]]],
        seen: Session | None = None,
    ) -> Rotation:
        """Claim the token stored under one of ``digests`` (tried in order), extend its session and store
        ``successor``, in one transaction; or say why not, revoking the family and its session on a reuse.

        Args:
            digests: The presented token's digests, under the current digest key first.
            successor: The digest of the token that replaces it.
            now: The current time.
            grace: Seconds after a rotation during which the rotated token is a lost race, not a copy.
            expiry: The session's new ``expires_at``, given the live session as stored; ``None`` leaves it as is.
            session_id: When given, the token must belong to this session (else it is unknown).
            reuse_events: The audit rows of a reuse, given the session's id and the session as revoked (``None``
                when its row is gone); written with the revoke.
            seen: The token's session as the caller read it: while it is still that version, it is extended from it
                in one statement instead of being read again.
        """
        expected = uuid.UUID(session_id) if session_id is not None else None
        claim = _CLAIM if expected is None else _CLAIM_OF_SESSION
        claimed: dict[str, Any] = {"now": now} if expected is None else {"now": now, "expected": expected}

        def work(conn: Connection) -> Rotation:
            for digest in digests:
                if (won := conn.execute(claim, claimed | {"presented": digest}).first()) is not None:
                    break
            else:
                return _why_not(conn, digests, now=now, grace=grace, expected=expected, reuse_events=reuse_events)
            session = _extended(conn, won.session_id, now=now, expiry=expiry, seen=seen)
            if session is None:  # ended since the claim read it (PostgreSQL, READ COMMITTED): undo the claim
                raise _SessionGone
            conn.execute(
                _SUCCESSOR,
                {
                    "id": uuid7(),
                    "family_id": won.family_id,
                    "session_id": won.session_id,
                    "digest": successor,
                    "expires_at": session.expires_at,
                    "now": now,
                },
            )
            return Rotation(outcome="rotated", session=session, session_id=session.id)

        try:
            return await self.runner.transaction(work)
        except _SessionGone:
            return Rotation(outcome="session_gone")

    async def by_digest(self, digest: str) -> StoredRefreshToken | None:
        """The token stored under ``digest``, in whatever state."""
        rows = await lookup(_BY_DIGEST, self.runner, {"presented": digest})  # introspection asks every opaque token
        if not rows:
            return None
        row = rows[0]
        sid = row["session_id"]
        return StoredRefreshToken(
            session_id=str(sid if isinstance(sid, uuid.UUID) else uuid.UUID(str(sid))),
            digest=row["digest"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            rotated_at=row["rotated_at"],
            revoked_at=row["revoked_at"],
        )

    async def delete_expired(self, *, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` expired tokens (their sessions are over too); how many went."""
        victims = select(R.c.id).where(R.c.expires_at <= now).order_by(R.c.expires_at).limit(batch).scalar_subquery()
        return (await self.runner.write(delete(R).where(R.c.id.in_(victims)))).rowcount


class _SessionGone(Exception):
    """A claimed token's session ended before it was extended: the claim is undone with the transaction."""


def _extended(
    conn: Connection,
    session_id: uuid.UUID,
    *,
    now: datetime,
    expiry: Callable[[Session], datetime] | None,
    seen: Session | None,
) -> Session | None:
    """The live session, its ``expires_at`` set to what ``expiry`` makes of it (and its use recorded).

    From ``seen`` when the stored row is still that version (one statement); else read first, then extended.
    """
    sid = {"sid": session_id, "now": now}
    if expiry is not None and seen is not None and seen.id == str(session_id):
        row = conn.execute(_EXTEND_SEEN, sid | {"until": expiry(seen), "seen_version": seen.version}).first()
        if row is not None:
            return session_from_row(row)
    row = conn.execute(_LIVE_SESSION, sid).first()
    if row is None or expiry is None:
        return None if row is None else session_from_row(row)
    row = conn.execute(_EXTEND, sid | {"until": expiry(session_from_row(row))}).first()
    return None if row is None else session_from_row(row)


def _why_not(
    conn: Connection,
    digests: Sequence[str],
    *,
    now: datetime,
    grace: float,
    expected: uuid.UUID | None,
    reuse_events: Callable[[str, Session | None], list[dict[str, Any]]],
) -> Rotation:
    row = conn.execute(
        select(R.c.family_id, R.c.session_id, R.c.digest, R.c.expires_at, R.c.rotated_at, R.c.revoked_at).where(
            R.c.digest.in_(digests)
        )
    ).first()
    # The database found it by equality; the digests are compared again in constant time all the same.
    if row is None or not any(hmac.compare_digest(row.digest, digest) for digest in digests):
        return Rotation(outcome="unknown")
    if expected is not None and row.session_id != expected:
        return Rotation(outcome="unknown")
    if row.revoked_at is not None:
        return Rotation(outcome="revoked")
    if row.expires_at <= now:
        return Rotation(outcome="expired")
    if row.rotated_at is None:  # claimable but for its session, which has ended (or is gone)
        return Rotation(outcome="session_gone")
    if now - row.rotated_at <= timedelta(seconds=grace):
        return Rotation(outcome="raced", session_id=str(row.session_id))
    # Rotated long enough ago that no honest client still holds it: a copy is in use. End the login.
    conn.execute(
        update(R).where(R.c.family_id == row.family_id, R.c.revoked_at.is_(None)).values(revoked_at=now, updated_at=now)
    )
    revoked = conn.execute(
        update(S)
        .where(S.c.id == row.session_id, S.c.revoked_at.is_(None))
        .values(revoked_at=now, updated_at=now, version=S.c.version + 1)
        .returning(*SESSION_COLUMNS)
    ).first()
    # Ended before: named as stored, if it still is.
    ended = revoked or conn.execute(select(*SESSION_COLUMNS).where(S.c.id == row.session_id)).first()
    sid = str(row.session_id)
    events = reuse_events(sid, None if ended is None else session_from_row(ended))
    if events:
        conn.execute(insert(AUDIT), events)
    return Rotation(outcome="reused", session_id=sid, sessions_revoked=int(revoked is not None), events=events)
