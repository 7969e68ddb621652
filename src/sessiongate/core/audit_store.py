"""Audit events as the gateway speaks of them, and the storage seam of the audit log (``sessiongate.sessions.audit``);
``sessiongate.storage.audit_store`` implements it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol, get_args

import msgspec

__all__ = ("KINDS", "AuditEvent", "AuditFilter", "AuditPage", "AuditStore", "Detail", "Kind", "NewEvent")

Kind = Literal[
    "login.succeeded",
    "login.failed",
    "principal.locked",
    "session.created",
    "session.revoked",
    "refresh.reuse_detected",
    "api_key.created",
    "api_key.revoked",
    "api_key.expired",
    "admin_token.created",
    "admin_token.revoked",
    "principal.created",
    "principal.disabled",
    "principal.enabled",
    "principal.password_set",
    "principal.deleted",
    "device.created",
    "device.removed",
    "auth_token.created",
    "auth_token.revoked",
]
"""What happened. ``session.revoked`` says by whom in ``actor`` (and how many, for a principal's, in ``detail``)."""
KINDS: tuple[Kind, ...] = get_args(Kind)


Detail = dict[str, str | int | bool | None]
"""What an event adds (counts, names, reasons): never a secret."""


class NewEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event to record."""

    kind: Kind
    actor: str
    tenant: str | None = None
    dialect: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    client_address: str | None = None
    user_agent: str | None = None
    detail: Detail = msgspec.field(default_factory=dict)


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded event, as listed."""

    id: str
    at: datetime
    kind: str
    actor: str
    tenant: str | None
    dialect: str | None
    principal_id: str | None
    session_id: str | None
    client_address: str | None
    user_agent: str | None
    detail: dict[str, Any]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of events, newest first, and the cursor of the next (``None`` on the last)."""

    items: list[AuditEvent]
    next_cursor: str | None


class AuditFilter(msgspec.Struct, frozen=True, kw_only=True):
    """What a listing is narrowed to; every condition given must hold."""

    kind: str | None = None
    actor: str | None = None
    tenant: str | None = None
    dialect: str | None = None
    principal_id: str | None = None
    session_id: str | None = None
    after: datetime | None = None
    before: datetime | None = None


class AuditStore(Protocol):
    """What the audit log needs from a database.

    An event is stored as a row (a plain ``dict``) that :meth:`row` makes and only stores read: :meth:`insert` writes
    it alone, and the other stores write it with a change of their own, in the same transaction (``SessionStore.insert``
    a create's event with its session, ``RefreshStore.rotate`` a reuse's events with its revoke).
    """

    def row(self, event: NewEvent, *, now: datetime) -> dict[str, Any]:
        """The row ``event`` is stored as, happening at ``now``, with a new id (a UUIDv7, so ids order by time): its
        text cut to the column widths and freed of NUL characters, never refused for its length."""
        ...

    def event(self, row: Mapping[str, Any]) -> AuditEvent:
        """The event a row of :meth:`row` holds, as :meth:`list` lists it once written."""
        ...

    async def insert(self, row: dict[str, Any]) -> None:
        """Write the event ``row`` holds: committed when this returns (one statement)."""
        ...

    async def list(self, where: AuditFilter, *, limit: int, after: uuid.UUID | None = None) -> AuditPage:
        """Up to ``limit`` events matching ``where``, newest first, after the event ``after`` names (keyset on the
        id: stable while events are added or deleted); the cursor of the next page when there are more."""
        ...

    async def delete_before(self, before: datetime, *, batch: int) -> int:
        """Delete up to ``batch`` of the events that happened before ``before``, the oldest first; how many went."""
        ...
