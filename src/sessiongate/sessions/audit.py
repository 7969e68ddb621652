"""Audit events: who did what to which session, kept in the database for a while and each written as a log line.

An event names its kind, who made it happen (``actor``: ``user`` — a dialect's login, create or logout —,
``admin-token:<name>``, ``api-token:<name>``, ``cli``, ``network-admin`` — amity's admin token —, ``password-change``,
``takeover`` — another login on an exclusive device —, ``session-cap`` — a login past its dialect's cap on a
principal's live sessions —, ``theft-detection``, ``gateway`` — a half-made login undone),
and the tenant, dialect, principal, session, client address and user agent it concerns, as far as they are known;
never a secret (``detail`` holds only counts, names — a login as presented — and reasons; no password or token).

:meth:`AuditLog.record` writes the row before it returns, so an event of a change the caller then acknowledges is
never lost; the log line (logger ``sessiongate.audit``, the event as its structured fields) follows the write. Events
older than the retention are deleted by the app's sweeper, like ended sessions. Listings are paged by keyset on the
event's id (a UUIDv7): newest first, stable while events are added or swept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import msgspec
from litestar import Request
from sqlalchemy import ColumnElement, delete, insert, select

from sessiongate import meters
from sessiongate.addresses import client_address
from sessiongate.core.keyset import encode_cursor
from sessiongate.core.models import Session
from sessiongate.storage.audit_table import AUDIT, LIMITS, AuditEventRecord, event_row
from sessiongate.storage.runner import StatementRunner

__all__ = (
    "KINDS",
    "AuditEvent",
    "AuditEventRecord",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "Detail",
    "Kind",
    "NewEvent",
    "current_request",
)

log = logging.getLogger("sessiongate.audit")

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
A = AUDIT
_COLUMNS = [c for c in A.c if c.name not in {"sa_orm_sentinel", "updated_at"}]


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


class AuditLog:
    """Record, list and sweep audit events.

    Args:
        runner: Where the statements run.
        clock: "Now".
    """

    def __init__(self, runner: StatementRunner, clock: Callable[[], datetime]) -> None:
        self.runner = runner
        self.clock = clock

    async def record(self, event: NewEvent) -> AuditEvent:
        """Write ``event`` (committed when this returns), then log it."""
        row = self.row(event)
        await self.runner.write(insert(A).values(row))
        return self.logged(row)

    def row(self, event: NewEvent) -> dict[str, Any]:
        """The row ``event`` is stored as, for a caller that writes it with a change of its own (the session store
        writes a create's event with its session); :meth:`logged` once that is committed."""
        fields = {name: getattr(event, name) for name in LIMITS}
        return event_row(event.kind, fields, dict(event.detail), self.clock())

    def logged(self, row: dict[str, Any]) -> AuditEvent:
        """Log the event ``row`` holds, once it is committed; the event, as listed."""
        recorded = _event(_Row(row))
        log.info("audit %s", recorded.kind, extra={"audit": msgspec.to_builtins(recorded)})
        return recorded

    async def note(self, kind: Kind, *, actor: str, session: Session | None = None, **about: Any) -> AuditEvent:
        """Record an event of the request being served (a dialect's login, create, logout...): its dialect, tenant,
        client address and user agent are read from :mod:`sessiongate.meters`, the session's from ``session``;
        ``about`` adds or overrides members of :class:`NewEvent`.

        What is guaranteed: the event is committed before this returns (an error, not a silence, when it cannot be),
        so a caller that awaits it before answering never acknowledges an unrecorded change. It costs no transaction
        of its own on SQLite: the shared runner's writer commits it in the group of writes waiting with it. On
        PostgreSQL it is one more autocommitted statement.
        """
        fields: dict[str, Any] = current_request()
        if session is not None:
            fields |= {
                "tenant": session.tenant,
                "dialect": session.dialect,
                "principal_id": session.principal_id,
                "session_id": session.id,
            }
        return await self.record(NewEvent(kind=kind, actor=actor, **(fields | about)))

    async def list(self, where: AuditFilter, *, limit: int, after: uuid.UUID | None = None) -> AuditPage:
        """Up to ``limit`` events matching ``where``, newest first, after the event ``after`` names (keyset)."""
        conditions = _conditions(where)
        if after is not None:
            conditions.append(A.c.id < after)
        stmt = select(*_COLUMNS).where(*conditions).order_by(A.c.id.desc()).limit(limit + 1)
        rows = await self.runner.read(stmt)
        more = len(rows) > limit
        items = [_event(row) for row in rows[:limit]]
        return AuditPage(items=items, next_cursor=encode_cursor(uuid.UUID(items[-1].id)) if more else None)

    async def sweep(self, *, retention: timedelta, batch: int) -> int:
        """Delete up to ``batch`` events older than ``retention``; how many went."""
        older = select(A.c.id).where(A.c.created_at < self.clock() - retention).order_by(A.c.created_at).limit(batch)
        return (await self.runner.write(delete(A).where(A.c.id.in_(older.scalar_subquery())))).rowcount


def current_request() -> dict[str, Any]:
    """The dialect, tenant, client address and user agent of the request being served, as far as known (nothing
    outside a request: a command, the sweeper)."""
    notes = meters.notes().get()
    if notes is None or notes.scope.get("type") != "http":
        return {}
    request: Request[Any, Any, Any] = Request(notes.scope)
    services = request.app.state.get("services")
    trust = bool(getattr(getattr(services, "settings", None), "trust_forwarded", False))
    dialect = meters.dialect()
    return {
        "dialect": None if dialect == meters.NO_DIALECT else dialect,
        "tenant": notes.tenant,
        "client_address": client_address(request, trust_forwarded=trust),
        "user_agent": request.headers.get("user-agent"),
    }


def _conditions(where: AuditFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    equal = {
        A.c.kind: where.kind,
        A.c.actor: where.actor,
        A.c.tenant: where.tenant,
        A.c.dialect: where.dialect,
        A.c.principal_id: where.principal_id,
        A.c.session_id: where.session_id,
    }
    found.extend(column == value for column, value in equal.items() if value is not None)
    if where.after is not None:
        found.append(A.c.created_at >= where.after)
    if where.before is not None:
        found.append(A.c.created_at < where.before)
    return found


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=str(row.id),
        at=row.created_at,
        kind=row.kind,
        actor=row.actor,
        tenant=row.tenant,
        dialect=row.dialect,
        principal_id=row.principal_id,
        session_id=row.session_id,
        client_address=row.client_address,
        user_agent=row.user_agent,
        detail=row.detail or {},
    )
