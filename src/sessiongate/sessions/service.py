"""The session service: the one thing dialect handlers call."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from sessiongate import meters
from sessiongate.core.errors import (
    Conflict,
    NotFound,
    RefreshRaced,
    RefreshTokenReused,
    SessionExpired,
    SessionLimitReached,
    SessionRevoked,
    Unauthenticated,
)
from sessiongate.core.models import ExpiryPolicy, IssuedToken, NewSession, Page, Session, SessionCap, SessionQuery
from sessiongate.core.store import (
    DialectWrites,
    RefreshStore,
    Rotation,
    SessionStore,
    StoredRefreshToken,
    reuse_key_digest,
)
from sessiongate.sessions.audit import AuditLog, NewEvent, current_request
from sessiongate.tokens.jwt import KeyRing
from sessiongate.tokens.opaque import Digester, new_secret

__all__ = ("Clock", "Created", "Refreshed", "SessionService", "utc_now")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class Created(msgspec.Struct, frozen=True, kw_only=True):
    """The result of a create: the session, its bearer secret when one was minted, and whether it was reused."""

    session: Session
    secret: str | None
    reused: bool

    @property
    def token_issued_at(self) -> datetime | None:
        """The ``iat`` of a JWT answering this create (``SessionService.issue_jwt``): a new session's ``created_at``,
        the instant the answer names as its start even when the second turns before the signing; ``None`` (now) for
        a reused one."""
        return None if self.reused else self.session.created_at


class Refreshed(msgspec.Struct, frozen=True, kw_only=True):
    """The result of a refresh: the session as extended, and the refresh token that replaces the one presented
    (shown once: only its digest is stored)."""

    session: Session
    refresh_token: str


class SessionService:
    """Create, resolve, list, get, revoke and sweep sessions of every dialect, over one store.

    Args:
        store: Where sessions live.
        keys: The JWT key ring.
        digester: Keys the digests of bearer secrets.
        clock: Returns "now"; tests pass a fake one so expiry is tested without sleeping.

    ``audit``, when set (the app sets it), records each session created, and each one ended by a takeover, by the
    session cap or by a call naming an ``actor``; the event is written before the call returns (:meth:`AuditLog.note`).

    ``caps`` holds each dialect's cap on a principal's live sessions (its ``max_sessions_per_principal`` and
    ``on_session_cap`` options; the app sets it); a dialect without one is uncapped.

    ``refresh_tokens`` keeps the refresh tokens of :meth:`issue_refresh` and :meth:`refresh` (the app sets it).
    """

    def __init__(self, store: SessionStore, keys: KeyRing, digester: Digester, clock: Clock = utc_now) -> None:
        self.store = store
        self.keys = keys
        self.digester = digester
        self.clock = clock
        self.audit: AuditLog | None = None
        self.caps: dict[str, SessionCap] = {}
        self.refresh_tokens: RefreshStore | None = None

    def now(self) -> datetime:
        """The service's idea of the current time."""
        return self.clock()

    async def create(
        self,
        new: NewSession,
        policy: ExpiryPolicy,
        *,
        with_secret: bool = False,
        also_write: DialectWrites | None = None,
    ) -> Created:
        """Create a session (or return the live one with the same ``reuse_key``, unchanged).

        Under the dialect's cap (:attr:`caps`), the principal's oldest live sessions past it are revoked with the
        insert, each an audit event by ``session-cap``, or the create is refused.

        Args:
            new: Who and what the session is for.
            policy: The dialect's expiry policy.
            with_secret: Mint an opaque bearer secret for the session; only its digest is stored.
            also_write: The dialect's own rows to keep with the new session: given the session as created, the
                statements on the dialect's tables (SQLAlchemy Core) written in the session's own transaction, so
                both are committed or neither (a failing one fails the create). Not called for a reused session.

        Raises:
            SessionLimitReached: the dialect's cap refuses, and the principal already holds as many live sessions.
        """
        meters.note_tenant(new.tenant)
        await self._refuse_early(new, policy)
        return await self._create(new, policy, with_secret=with_secret, also_write=also_write)

    async def _create(
        self,
        new: NewSession,
        policy: ExpiryPolicy,
        *,
        with_secret: bool = False,
        spared: Sequence[str] = (),
        also_write: DialectWrites | None = None,
    ) -> Created:
        """:meth:`create`, its cap refusing only what came in concurrently since :meth:`_refuse_early`; ``spared``:
        sessions the new one succeeds, left to end within a grace period, which the cap does not count."""
        meters.note_tenant(new.tenant)
        now = self.clock()
        secret = new_secret() if with_secret else None
        digest = self.digester.digest(secret) if secret else None
        absolute = now + timedelta(seconds=policy.absolute) if policy.absolute else None
        expires = _capped(now + timedelta(seconds=policy.ttl), absolute)
        cap = self._cap(new)
        evicted: list[Session] = []
        audit_row: dict[str, Any] | None = None
        if cap is None:
            if self.audit is not None:  # written with the session: one round trip, and never one without the other
                audit_row = self.audit.row(self._created_event(new))
            session, reused = await self.store.insert(
                new,
                now=now,
                expires_at=expires,
                absolute_expires_at=absolute,
                token_digest=digest,
                audit=audit_row,
                also_write=also_write,
            )
        else:
            session, reused, evicted = await self.store.insert_capped(
                new,
                now=now,
                expires_at=expires,
                absolute_expires_at=absolute,
                token_digest=digest,
                cap=cap,
                idle=policy.idle,
                spared=spared,
                also_write=also_write,
            )
        if reused and secret is not None:
            # The reused session's old secret cannot be shown again: bind the new one instead.
            await self.store.set_token_digest(session.id, self.digester.digest(secret))
        if not reused:
            meters.SESSIONS_CREATED.labels(meters.dialect()).inc()
            if audit_row is not None and self.audit is not None:
                self.audit.logged(audit_row | {"session_id": session.id})
            elif self.audit is not None:
                await self.audit.note("session.created", actor="user", session=session)
        _revoked(len(evicted))
        for ended in evicted:
            if self.audit is not None:
                detail = {"cap": cap.most if cap is not None else None, "by_session_id": session.id}
                await self.audit.note("session.revoked", actor="session-cap", session=ended, detail=detail)
        return Created(session=session, secret=secret, reused=reused)

    @staticmethod
    def _created_event(new: NewSession) -> NewEvent:
        """The ``session.created`` event of ``new``, as :meth:`AuditLog.note` would make it once stored."""
        about = current_request() | {"tenant": new.tenant, "dialect": new.dialect, "principal_id": new.principal_id}
        return NewEvent(kind="session.created", actor="user", **about)

    def _cap(self, new: NewSession) -> SessionCap | None:
        """The cap ``new``'s dialect holds its principal to; none for a session of no principal and no device."""
        return self.caps.get(new.dialect) if new.principal_id is not None or new.device.id is not None else None

    async def _refuse_early(self, new: NewSession, policy: ExpiryPolicy, spared: Sequence[str] = ()) -> None:
        """Refuse a create the cap will refuse before anything is written: a refused login changes nothing, not even
        a device's session a takeover would end first, and costs one read, not a transaction undone.

        The count leaves out the holder of ``new.reuse_key`` (a takeover ends it; a plain create returns it). Only a
        concurrent login of the same principal can slip between this and the insert, whose own check, in its
        transaction, still holds the cap.

        Raises:
            SessionLimitReached: the cap refuses, and the principal already holds as many other live sessions.
        """
        cap = self._cap(new)
        if cap is None or cap.action != "refuse":
            return
        if await self.store.count_live(new, now=self.clock(), idle=policy.idle, spared=spared) >= cap.most:
            raise SessionLimitReached("session limit reached")

    async def replace(
        self,
        new: NewSession,
        policy: ExpiryPolicy,
        *,
        with_secret: bool = False,
        also_write: DialectWrites | None = None,
    ) -> Created:
        """End the live session holding ``new.reuse_key`` (if any) and create a fresh one.

        ``also_write``: the dialect's own rows to keep with the new session, as in :meth:`create`. A failing one fails
        the create; the holder ended before it stays ended, as when the insert itself fails.

        Raises:
            SessionLimitReached: the dialect's cap refuses; then nothing was ended either.
        """
        await self._refuse_early(new, policy)
        if new.reuse_key is not None:
            ended = await self.store.revoke_reuse_key(reuse_key_digest(new.reuse_key), now=self.clock())
            _revoked(len(ended))
            for holder in ended:  # the device's session, whoever held it, is taken over
                if self.audit is not None:
                    await self.audit.note("session.revoked", actor="takeover", session=holder)
        return await self._create(new, policy, with_secret=with_secret, also_write=also_write)

    async def retire(self, reuse_key: str, *, principal_id: str | None, grace: float) -> int:
        """Take ``reuse_key`` from its live holder (see :meth:`_retire`); how many gave the key up."""
        return len(await self._retire(reuse_key, principal_id=principal_id, grace=grace))

    async def _retire(self, reuse_key: str, *, principal_id: str | None, grace: float) -> list[Session]:
        """Take ``reuse_key`` from its live holder, which no longer blocks a new session under that key.

        A holder of another principal is revoked at once, and so is every other live session its principal has on
        the same device in the same dialect: earlier ones the key passed on from, still in their grace period, end
        with the device changing hands. A holder of ``principal_id`` keeps working for at most ``grace`` seconds
        more, so requests it already has in flight still succeed. Returns those that gave the key up.
        """
        now = self.clock()
        until = now + timedelta(seconds=grace)
        released = await self.store.release_reuse_key(
            reuse_key_digest(reuse_key), now=now, principal_id=principal_id, until=until
        )
        for holder in released:
            if holder.revoked_at is not None:
                _revoked(1)
                if self.audit is not None:
                    await self.audit.note("session.revoked", actor="takeover", session=holder)
            if holder.revoked_at is not None and holder.principal_id is not None and holder.device.id is not None:
                ended = await self.store.revoke_for_principal(
                    holder.tenant, holder.principal_id, now=now, dialect=holder.dialect, device_id=holder.device.id
                )
                _revoked(ended)
                if ended and self.audit is not None:  # its principal's earlier sessions on the device
                    await self.audit.note(
                        "session.revoked",
                        actor="takeover",
                        tenant=holder.tenant,
                        dialect=holder.dialect,
                        principal_id=holder.principal_id,
                        detail={"revoked": ended},
                    )
        return released

    async def hand_over(
        self,
        new: NewSession,
        policy: ExpiryPolicy,
        *,
        grace: float = 0.0,
        spared: Sequence[str] = (),
        also_write: DialectWrites | None = None,
    ) -> Created:
        """Create a session that takes ``new.reuse_key`` over from its live holder (see :meth:`retire`).

        Unlike :meth:`create`, never returns another session. The insert is tried first, so a key nobody holds
        costs one statement; a live holder is retired and the insert tried again (a few times, should concurrent
        requests keep taking the key). A holder of the same principal, left its grace period, is the new session's
        predecessor, and the session cap does not count it (nor ``spared``). ``also_write``: the dialect's own rows
        to keep with the new session, as in :meth:`create`; written once, with the insert that creates it (an insert
        that finds the key held writes none).

        Raises:
            Conflict: the key kept being taken by concurrent requests.
            SessionLimitReached: the dialect's cap refuses (see :meth:`create`); then the key was not taken over.
        """
        succeeded = list(spared)
        await self._refuse_early(new, policy, succeeded)
        for _ in range(3):
            created = await self._create(new, policy, spared=succeeded, also_write=also_write)
            if not created.reused or new.reuse_key is None:
                return created
            released = await self._retire(new.reuse_key, principal_id=new.principal_id, grace=grace)
            succeeded += [holder.id for holder in released if holder.revoked_at is None]
        raise Conflict("the session key is being taken over concurrently")

    async def issue_refresh(self, session: Session, *, mint: Callable[[], str] = new_secret) -> str:
        """A refresh token for ``session``, the first of its login's family; it expires with the session.

        Args:
            session: A session just created.
            mint: Makes the secret (a dialect's own format); the default is 32 random bytes, URL-safe base64.

        Returns:
            The secret, which only the caller ever sees; the database keeps its keyed digest.
        """
        secret = mint()
        await self._refresh_store().issue(
            session.id, digest=self.digester.digest(secret), now=self.clock(), expires_at=session.expires_at
        )
        return secret

    async def refresh(
        self,
        token: str,
        policy: ExpiryPolicy | None,
        *,
        grace: float,
        session_id: str | None = None,
        mint: Callable[[], str] = new_secret,
        seen: Session | None = None,
    ) -> Refreshed:
        """Exchange a refresh token for its successor and extend its session, in one transaction.

        The token is single-use. Of concurrent refreshes with it exactly one wins; a loser within ``grace`` seconds
        of the winner is told it lost the race (the client refreshed twice). A rotated token presented after that
        can only be a copy: the whole login (the token's family and its session) is revoked, with its audit events.

        Args:
            token: The refresh token as presented.
            policy: The dialect's expiry policy: the session then lives ``policy.ttl`` from now, never past its
                absolute end (the stored one, or the policy's from its creation); ``None`` leaves its expiry as is.
            grace: Seconds after a rotation during which the rotated token is a lost race, not a theft.
            session_id: When given, the token must belong to this session (else it is unknown).
            mint: Makes the successor (a dialect's own format).
            seen: The token's session as the caller just read it (portos reads it to check the caller's JWT): the
                store extends it from that row while it is still that version, saving a read on the writer.

        Raises:
            Unauthenticated: the token is unknown, or belongs to another session.
            SessionExpired: the token has expired.
            SessionRevoked: the token or its session was revoked (or the session is gone).
            RefreshRaced: the token was rotated within the last ``grace`` seconds.
            RefreshTokenReused: the token was rotated earlier; its family and session are now revoked.
        """
        now = self.clock()
        successor = mint()
        rotation = await self._refresh_store().rotate(
            self.digester.digests(token),
            successor=self.digester.digest(successor),
            now=now,
            grace=grace,
            expiry=None if policy is None else _extension(policy, now),
            session_id=session_id,
            reuse_events=self._reuse_events,
            seen=seen,
        )
        if rotation.outcome == "rotated" and rotation.session is not None:
            return Refreshed(session=rotation.session, refresh_token=successor)
        if rotation.outcome == "reused":
            meters.REFRESH_REUSE.labels(meters.dialect()).inc()
            _revoked(rotation.sessions_revoked)
            if self.audit is not None:
                for row in rotation.events:
                    self.audit.logged(row)
        raise _refused(rotation)

    async def refresh_token(self, token: str) -> tuple[StoredRefreshToken, Session] | None:
        """The refresh token ``token`` is and its session, if a refresh would accept it now (not rotated, revoked or
        expired, and its session live); ``None`` otherwise. Nothing is changed (introspection asks this)."""
        store = self._refresh_store()
        stored = await self.digester.find(token, store.by_digest)
        now = self.clock()
        if stored is None or not self.digester.matches(token, stored.digest):
            return None
        if stored.rotated_at is not None or stored.revoked_at is not None or stored.expires_at <= now:
            return None
        session = await self.store.by_id(stored.session_id)
        return None if session is None or not session.is_live(now) else (stored, session)

    def _reuse_events(self, session_id: str, session: Session | None) -> list[dict[str, Any]]:
        """The audit rows of a reused refresh token: the reuse, and the revoke it made (by ``theft-detection``)."""
        if self.audit is None:
            return []
        about = current_request() | {"session_id": session_id}
        if session is not None:
            about |= {"tenant": session.tenant, "dialect": session.dialect, "principal_id": session.principal_id}
        return [
            self.audit.row(NewEvent(kind=kind, actor="theft-detection", **about))
            for kind in ("refresh.reuse_detected", "session.revoked")
        ]

    def _refresh_store(self) -> RefreshStore:
        if self.refresh_tokens is None:
            raise RuntimeError("this session service keeps no refresh tokens (SessionService.refresh_tokens)")
        return self.refresh_tokens

    def issue_jwt(
        self, session: Session, claims: Mapping[str, Any], *, issued_at: datetime | None = None
    ) -> IssuedToken:
        """A JWT for ``session`` carrying ``claims``; it expires with the session.

        ``issued_at`` (``iat``) is now unless given: a dialect answering a create gives ``Created.token_issued_at``,
        so the token's ``iat`` is the instant its answer names (zelf's ``activatedAt``, amity's ``issuedAt``).
        """
        value = self.keys.encode(claims, issued_at=issued_at or self.clock(), expires_at=session.expires_at)
        return IssuedToken(kind="jwt", value=value, expires_at=session.expires_at)

    async def resolve_jwt(
        self,
        token: str,
        policy: ExpiryPolicy,
        *,
        session_claim: str,
        tenant: str | None = "default",
        dialect: str | None = None,
    ) -> tuple[Session, dict[str, Any]]:
        """The live session a JWT names, after the sliding/idle rules; and the token's claims.

        Args:
            token: The JWT as the client sent it.
            policy: The expiry policy to apply (and slide by).
            session_claim: The claim holding the session id.
            tenant: The tenant the session must belong to; ``None`` accepts the session's own tenant (for a
                dialect whose bearer routes carry nothing else naming one; the caller then reads ``session.tenant``).
            dialect: When given, the session must have been created by this dialect; checked before the
                session is touched, as in :meth:`resolve_secret` (the key ring is shared by every dialect).

        Raises:
            Unauthenticated: bad token, or no such session in this tenant (or dialect).
            SessionExpired: the token or the session has expired.
            SessionRevoked: the session was ended.
        """
        claims = await self.keys.verify(token, now=self.clock())
        session_id = claims.get(session_claim)
        if not isinstance(session_id, str):
            raise Unauthenticated("invalid token")
        session = await self.store.by_id(session_id)
        if session is None or (tenant is not None and session.tenant != tenant):
            raise SessionRevoked("session not found")
        if dialect is not None and session.dialect != dialect:
            raise Unauthenticated("invalid token")
        return await self._use(session, policy), claims

    async def resolve_secret(
        self, secret: str, policy: ExpiryPolicy, *, tenant: str = "default", dialect: str | None = None
    ) -> Session:
        """The live session an opaque bearer secret belongs to, after the sliding/idle rules.

        Args:
            secret: The bearer secret as the client sent it.
            policy: The expiry policy to apply (and slide by).
            tenant: The tenant the session must belong to.
            dialect: When given, the session must have been created by this dialect; checked before the
                session is touched, so another dialect's secret is neither accepted nor slid by this policy.

        Raises:
            Unauthenticated: unknown secret, or one of another tenant (or dialect).
            SessionExpired: the session has expired.
            SessionRevoked: the session was ended.
        """
        found = await self.digester.find(secret, self.store.by_digest, self.store.replace_token_digest)
        if found is None or not self.digester.matches(secret, found[1]) or found[0].tenant != tenant:
            raise Unauthenticated("invalid session")
        if dialect is not None and found[0].dialect != dialect:
            raise Unauthenticated("invalid session")
        return await self._use(found[0], policy)

    async def _use(self, session: Session, policy: ExpiryPolicy) -> Session:
        meters.note_tenant(session.tenant)  # the request is this tenant's (its access log line says so)
        now = self.clock()
        if session.revoked_at is not None:
            raise SessionRevoked("session revoked")
        absolute = _absolute_end(session, policy)
        if now >= session.expires_at or (absolute is not None and now >= absolute):
            raise SessionExpired("session expired")
        since_use = (now - session.last_seen_at).total_seconds()
        if policy.idle is not None and since_use >= policy.idle:
            raise SessionExpired("session idle too long")
        if since_use < policy.touch_interval:
            return session
        expires = session.expires_at
        if policy.sliding:
            expires = _capped(now + timedelta(seconds=policy.ttl), absolute)
        touched = await self.store.touch(session.id, now=now, expires_at=expires)
        if touched is None:
            raise SessionRevoked("session revoked")
        return touched

    async def get(self, session_id: str, *, tenant: str = "default") -> Session:
        """A live session by its public id.

        Raises:
            NotFound: no live session with that id in this tenant.
        """
        session = await self.store.by_id(session_id)
        if session is None or session.tenant != tenant or not session.is_live(self.clock()):
            raise NotFound("session not found")
        return session

    async def list(self, query: SessionQuery) -> Page[Session]:
        """Live sessions matching ``query``."""
        return await self.store.list(query, now=self.clock())

    async def revoke(
        self,
        session_id: str,
        *,
        tenant: str = "default",
        actor: str | None = None,
        also_write: DialectWrites | None = None,
    ) -> Session:
        """End a live session; its credentials stop working at once in every dialect. With ``actor`` (``"user"``
        for a dialect's logout), the revoke is an audit event by it (a caller recording its own event passes none).

        ``also_write``: the dialect's own rows to change with the end (forget a session's note): given the session as
        revoked, statements written in the revoke's transaction, so both are committed or neither.

        Raises:
            NotFound: no live session with that id in this tenant.
        """
        await self.get(session_id, tenant=tenant)
        revoked = await self.store.revoke(session_id, now=self.clock(), also_write=also_write)
        if revoked is None:
            raise NotFound("session not found")
        _revoked(1)
        if actor is not None and self.audit is not None:
            await self.audit.note("session.revoked", actor=actor, session=revoked)
        return revoked

    async def shorten(self, session_id: str, *, tenant: str = "default", within: float) -> Session:
        """Make a live session end within ``within`` seconds (never later than it would have): a replaced credential
        keeps working just long enough for the requests already sent with it.

        Raises:
            NotFound: no live session with that id in this tenant.
        """
        session = await self.get(session_id, tenant=tenant)
        now = self.clock()
        touched = await self.store.touch(
            session.id, now=now, expires_at=_capped(now + timedelta(seconds=within), session.expires_at)
        )
        if touched is None:
            raise NotFound("session not found")
        return touched

    async def revoke_all_for_principal(
        self,
        principal_id: str,
        *,
        tenant: str = "default",
        except_id: str | None = None,
        dialect: str | None = None,
        device_id: str | None = None,
        actor: str | None = None,
    ) -> int:
        """End every live session of a principal, but ``except_id`` (only those of ``dialect`` on ``device_id`` when
        given); how many ended. With ``actor``, ending any is one audit event by it, saying how many."""
        ended = await self.store.revoke_for_principal(
            tenant, principal_id, now=self.clock(), except_id=except_id, dialect=dialect, device_id=device_id
        )
        _revoked(ended)
        if ended and actor is not None and self.audit is not None:
            detail: dict[str, str | int | bool | None] = {"revoked": ended, "except_session_id": except_id}
            about: dict[str, Any] = {"tenant": tenant, "principal_id": principal_id, "detail": detail}
            if dialect is not None:
                about["dialect"] = dialect
            await self.audit.note("session.revoked", actor=actor, **about)
        return ended

    async def sweep_expired(self, *, batch: int = 500) -> int:
        """Delete one batch of expired or revoked sessions; how many were deleted."""
        return await self.store.delete_expired(now=self.clock(), batch=batch)

    async def sweep_expired_refresh_tokens(self, *, batch: int = 500) -> int:
        """Delete one batch of refresh tokens past their expiry; how many were deleted (none kept: none)."""
        if self.refresh_tokens is None:
            return 0
        return await self.refresh_tokens.delete_expired(now=self.clock(), batch=batch)


def _revoked(count: int) -> None:
    if count > 0:
        meters.SESSIONS_REVOKED.labels(meters.dialect()).inc(count)


def _capped(when: datetime, cap: datetime | None) -> datetime:
    return when if cap is None or when <= cap else cap


def _absolute_end(session: Session, policy: ExpiryPolicy) -> datetime | None:
    """When ``session`` ends however it is used: as stored, or, for one stored before its dialect's policy had an
    absolute cap, by the policy's cap from its creation, so none slides or refreshes forever."""
    if session.absolute_expires_at is None and policy.absolute is not None:
        return session.created_at + timedelta(seconds=policy.absolute)
    return session.absolute_expires_at


def _extension(policy: ExpiryPolicy, now: datetime) -> Callable[[Session], datetime]:
    """A refreshed session's new expiry: ``policy.ttl`` from ``now``, never past its absolute end."""

    def until(session: Session) -> datetime:
        return _capped(now + timedelta(seconds=policy.ttl), _absolute_end(session, policy))

    return until


def _refused(rotation: Rotation) -> Exception:
    """The error a refresh that rotated nothing answers, by why."""
    if rotation.outcome == "raced":
        return RefreshRaced(session_id=rotation.session_id or "")
    if rotation.outcome == "reused":
        return RefreshTokenReused("refresh token reused")
    if rotation.outcome == "expired":
        return SessionExpired("refresh token expired")
    if rotation.outcome in {"revoked", "session_gone"}:
        return SessionRevoked("session revoked")
    return Unauthenticated("invalid refresh token")
