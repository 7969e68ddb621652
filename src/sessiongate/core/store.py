"""The storage seam the service depends on; ``sessiongate.storage`` implements it."""

from __future__ import annotations

import builtins
import hashlib
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from sessiongate.core.models import NewSession, Page, Session, SessionCap, SessionQuery

__all__ = (
    "DialectWrites",
    "RefreshStore",
    "Rotation",
    "SessionState",
    "SessionStore",
    "SessionsFilter",
    "StoredRefreshToken",
    "reuse_key_digest",
)

DialectWrites = Callable[[Session], Sequence[object]]
"""What a dialect writes to its own tables with a change of a session, in the change's transaction: given the session
as the change left it (created, or ended), the statements to run (for the SQL stores, SQLAlchemy Core statements;
opaque here). Called only when the change is made (never for a reused session, nor for one no longer live), and
possibly more than once (a group commit run again): it must only build statements, and do nothing else."""

SessionState = Literal["live", "revoked", "expired"]
"""``revoked`` once ended, else ``expired`` past its expiry, else ``live``."""


class SessionsFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What the admin listing (:meth:`SessionStore.admin_page`) is narrowed to; every condition given must hold."""

    tenant: str | None = None
    dialect: str | None = None
    principal_id: str | None = None
    device_id: str | None = None
    client_address: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    last_seen_after: datetime | None = None
    last_seen_before: datetime | None = None
    state: SessionState | None = None


class SessionStore(Protocol):
    """What the session service needs from a database. Every method is one short transaction."""

    async def insert(
        self,
        new: NewSession,
        *,
        now: datetime,
        expires_at: datetime,
        absolute_expires_at: datetime | None,
        token_digest: str | None,
        audit: dict[str, Any] | None = None,
        also_write: DialectWrites | None = None,
    ) -> tuple[Session, bool]:
        """Insert a session, or return the live one holding ``new.reuse_key``; the bool says it was reused.

        ``audit``: the row of an audit event to write with a new session, in the same transaction, its ``session_id``
        set to the new session's (nothing is written for a reused one). ``also_write``: a dialect's own rows, written
        with a new session in the same transaction (none for a reused one); if one fails, nothing is created."""
        ...

    async def insert_capped(
        self,
        new: NewSession,
        *,
        now: datetime,
        expires_at: datetime,
        absolute_expires_at: datetime | None,
        token_digest: str | None,
        cap: SessionCap,
        idle: float | None = None,
        spared: Sequence[str] = (),
        also_write: DialectWrites | None = None,
    ) -> tuple[Session, bool, list[Session]]:
        """As :meth:`insert`, and in the same transaction, serialized per principal across processes, hold the
        principal to ``cap``: its live sessions but ``spared`` (idle ones ended) beyond the newest ``cap.most``, the
        new one included, are revoked (returned third), or nothing is created. ``also_write`` as in :meth:`insert`.

        Raises:
            SessionLimitReached: ``cap`` refuses, and the principal already held ``cap.most`` live sessions.
        """
        ...

    async def count_live(
        self, new: NewSession, *, now: datetime, idle: float | None = None, spared: Sequence[str] = ()
    ) -> int:
        """How many live sessions ``new``'s principal holds as :meth:`insert_capped` counts them, but ``spared`` and
        the holder of ``new.reuse_key``."""
        ...

    async def by_digest(self, digest: str) -> tuple[Session, str] | None:
        """The session whose token digest is ``digest``, with the stored digest for a constant-time compare."""
        ...

    async def by_id(self, session_id: str) -> Session | None:
        """The session with this public id, live or not."""
        ...

    async def touch(self, session_id: str, *, now: datetime, expires_at: datetime) -> Session | None:
        """Record a use: ``last_seen_at = now``, the new ``expires_at``, ``version + 1``; ``None`` if gone."""
        ...

    async def set_token_digest(self, session_id: str, digest: str) -> None:
        """Bind a new bearer secret to the session (the previous one stops working)."""
        ...

    async def replace_token_digest(self, old: str, new: str) -> None:
        """Store a session's secret under another digest (of the same secret, under another key), if still ``old``."""
        ...

    async def revoke(
        self, session_id: str, *, now: datetime, also_write: DialectWrites | None = None
    ) -> Session | None:
        """Mark one live session revoked; ``None`` if there was no live session with that id.

        ``also_write``: a dialect's own rows, written (or deleted) with the revoke in the same transaction, given the
        session as revoked; if one fails, nothing is revoked. Not called when there was no live session."""
        ...

    async def revoke_for_principal(
        self,
        tenant: str,
        principal_id: str,
        *,
        now: datetime,
        except_id: str | None = None,
        dialect: str | None = None,
        device_id: str | None = None,
    ) -> int:
        """Revoke every live session of a principal (but ``except_id``; only of ``dialect`` on ``device_id`` when
        given); how many were revoked."""
        ...

    async def revoke_reuse_key(self, reuse_key: str, *, now: datetime) -> list[Session]:
        """Revoke the live session holding ``reuse_key``, if any; the sessions revoked, as they now are."""
        ...

    async def release_reuse_key(
        self, reuse_key: str, *, now: datetime, principal_id: str | None, until: datetime
    ) -> list[Session]:
        """Take ``reuse_key`` from its live holder: revoked at ``now``, or, when it belongs to ``principal_id``, left
        to end at ``until`` at the latest; the sessions that gave the key up (none or one), as they now are."""
        ...

    async def list(self, query: SessionQuery, *, now: datetime) -> Page[Session]:
        """Live sessions matching ``query``."""
        ...

    async def admin_page(
        self, where: SessionsFilter, *, now: datetime, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[Session], bool]:
        """Up to ``limit`` sessions of any tenant and dialect matching ``where`` (``state`` as at ``now``; created and
        last-seen bounds inclusive below, exclusive above), newest first, with ids below ``after`` (keyset: stable
        while sessions come and go), and whether more follow."""
        ...

    async def delete_expired(self, *, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` sessions that expired or were revoked before ``now``; how many went."""
        ...


class Rotation(msgspec.Struct, frozen=True, kw_only=True):
    """What presenting a refresh token did (:meth:`RefreshStore.rotate`)."""

    outcome: Literal["rotated", "unknown", "expired", "revoked", "raced", "reused", "session_gone"]
    """``rotated``: claimed, the session extended and the successor stored; anything else: nothing rotated."""
    session: Session | None = None
    """``rotated``: the session as extended."""
    session_id: str | None = None
    """``rotated``, ``raced``, ``reused``: the token's session."""
    sessions_revoked: int = 0
    """``reused``: how many sessions the reuse revoked (none when its session had ended already)."""
    events: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """``reused``: the audit rows written with the revoke, to be logged now they are committed."""


class StoredRefreshToken(msgspec.Struct, frozen=True, kw_only=True):
    """A refresh token as stored (its digest, never the token)."""

    session_id: str
    digest: str
    created_at: datetime
    expires_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class RefreshStore(Protocol):
    """What the session service needs to keep refresh tokens: digests only, in families (one per login)."""

    async def issue(
        self, session_id: str, *, digest: str, now: datetime, expires_at: datetime, family_id: str | None = None
    ) -> None:
        """Store a new token's digest for ``session_id``, in a new family unless ``family_id`` names one."""
        ...

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
        """In one transaction: claim the live token stored under one of ``digests`` (so of concurrent rotations
        exactly one wins), set its live session's ``expires_at`` to ``expiry(session)`` (unless ``None``) and store
        ``successor``'s digest in its family. A token rotated more than ``grace`` seconds ago revokes its family and
        its session, with the audit rows ``reuse_events`` makes. ``session_id``: the token must be that session's.
        ``seen``: the session as the caller read it, which a store may extend from while it is still that version
        (it is a hint: never trusted past the stored row's version)."""
        ...

    async def by_digest(self, digest: str) -> StoredRefreshToken | None:
        """The token stored under ``digest``, rotated, revoked or expired as it may be."""
        ...

    async def delete_expired(self, *, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` expired tokens; how many went."""
        ...


def reuse_key_digest(key: str) -> str:
    """The stored form of a reuse key: fixed length, and no identifier or address in clear."""
    return hashlib.sha256(key.encode()).hexdigest()
