"""The admin API's reads and changes of sessions, across every dialect and tenant.

Listings are paged by keyset on the session's id (a UUIDv7, so newest first is descending id, read from the primary
key): a page starts strictly after the last id the previous page ended on, so rows created or revoked meanwhile never
make a row appear twice or be skipped. The cursor is that id, opaque to callers.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from msgspec import structs

from sessiongate.core.errors import NotFound
from sessiongate.core.keyset import decode_cursor, encode_cursor
from sessiongate.core.models import Session
from sessiongate.core.store import SessionsFilter, SessionState
from sessiongate.dialects.admin import MAX_LIMIT
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, NewEvent

__all__ = (
    "MAX_LIMIT",
    "STATES",
    "AdminSession",
    "SessionListing",
    "SessionsFilter",
    "decode_cursor",
    "encode_cursor",
    "list_sessions",
    "revoke_principal_sessions",
    "revoke_session",
    "view",
)

State = SessionState
STATES: tuple[State, ...] = ("live", "revoked", "expired")


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    """What a session runs on, as its dialect said."""

    id: str | None
    name: str | None
    kind: str | None
    model: str | None
    sdk_version: str | None
    env: str | None


class AdminSession(msgspec.Struct, frozen=True, kw_only=True):
    """A session as the admin API shows it: never a secret nor a digest, nor the dialect's own attributes."""

    id: str
    tenant: str
    dialect: str
    principal_id: str | None
    subject: str | None
    client_address: str | None
    device: DeviceView
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    absolute_expires_at: datetime | None
    revoked_at: datetime | None
    state: State


class SessionListing(msgspec.Struct, frozen=True, kw_only=True):
    """One page, and the cursor of the next (``None`` on the last)."""

    items: list[AdminSession]
    next_cursor: str | None


def state_of(session: Session, now: datetime) -> State:
    """``revoked`` once ended, else ``expired`` past its expiry, else ``live``."""
    if session.revoked_at is not None:
        return "revoked"
    return "live" if now < session.expires_at else "expired"


def view(session: Session, now: datetime) -> AdminSession:
    """The admin API's picture of ``session`` at ``now``."""
    d = session.device
    return AdminSession(
        id=session.id,
        tenant=session.tenant,
        dialect=session.dialect,
        principal_id=session.principal_id,
        subject=session.subject,
        client_address=session.client_address,
        device=DeviceView(id=d.id, name=d.name, kind=d.kind, model=d.model, sdk_version=d.sdk_version, env=d.env),
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        absolute_expires_at=session.absolute_expires_at,
        revoked_at=session.revoked_at,
        state=state_of(session, now),
    )


async def list_sessions(
    services: Services, where: SessionsFilter, *, limit: int, after: uuid.UUID | None
) -> SessionListing:
    """Up to ``limit`` sessions matching ``where``, newest first, after the row ``after`` names (keyset)."""
    now = services.clock()
    sessions, more = await services.sessions.store.admin_page(where, now=now, limit=limit, after=after)
    items = [view(session, now) for session in sessions]
    last = sessions[-1].id if more and sessions else None
    return SessionListing(items=items, next_cursor=encode_cursor(uuid.UUID(last)) if last is not None else None)


async def revoke_session(services: Services, origin: NewEvent, session_id: str) -> tuple[Session, bool]:
    """End one session in every dialect and process, and whether this call ended it; an event either way.

    Raises:
        NotFound: no stored session has that id.
    """
    session = await services.sessions.store.revoke(session_id, now=services.clock())
    changed = session is not None
    if session is None:
        session = await services.sessions.store.by_id(session_id)
        if session is None:
            raise NotFound("no such session", field="session_id")
    event = structs.replace(
        origin,
        kind="session.revoked",
        tenant=session.tenant,
        dialect=session.dialect,
        principal_id=session.principal_id,
        session_id=session.id,
        detail={"changed": changed},
    )
    await AuditLog(services.runner, services.clock).record(event)
    return session, changed


async def revoke_principal_sessions(
    services: Services, origin: NewEvent, *, tenant: str, principal_id: str, except_session_id: str | None = None
) -> int:
    """End every live session of a principal in every dialect but the one named to keep; how many ended. An event
    either way.

    Raises:
        NotFound: ``except_session_id`` names no session of this principal (nothing is ended then).
    """
    if except_session_id is not None:
        kept = await services.sessions.store.by_id(except_session_id)
        if kept is None or (kept.tenant, kept.principal_id) != (tenant, principal_id):
            raise NotFound("except_session_id names no session of this principal", field="except_session_id")
    count = await services.sessions.revoke_all_for_principal(principal_id, tenant=tenant, except_id=except_session_id)
    event = structs.replace(
        origin,
        kind="session.revoked",
        tenant=tenant,
        principal_id=principal_id,
        detail={"revoked": count, "except_session_id": except_session_id},
    )
    await AuditLog(services.runner, services.clock).record(event)
    return count
