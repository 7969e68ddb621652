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
from typing import Any

import msgspec
from litestar import Request

from sessiongate import meters
from sessiongate.addresses import client_address
from sessiongate.core.audit_store import (
    KINDS,
    AuditEvent,
    AuditFilter,
    AuditPage,
    AuditStore,
    Detail,
    Kind,
    NewEvent,
)
from sessiongate.core.models import Session
from sessiongate.storage.audit_store import SqlAuditStore
from sessiongate.storage.runner import StatementRunner

__all__ = (
    "KINDS",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "Detail",
    "Kind",
    "NewEvent",
    "current_request",
)

log = logging.getLogger("sessiongate.audit")


class AuditLog:
    """Record, list and sweep audit events, kept by an :class:`~sessiongate.core.audit_store.AuditStore`.

    Args:
        runner: Where the statements run.
        clock: "Now".
    """

    def __init__(self, runner: StatementRunner, clock: Callable[[], datetime]) -> None:
        self.runner = runner
        self.clock = clock
        self.store: AuditStore = SqlAuditStore(runner)

    async def record(self, event: NewEvent) -> AuditEvent:
        """Write ``event`` (committed when this returns), then log it."""
        row = self.row(event)
        await self.store.insert(row)
        return self.logged(row)

    def row(self, event: NewEvent) -> dict[str, Any]:
        """The row ``event`` is stored as, for a caller that writes it with a change of its own (the session store
        writes a create's event with its session); :meth:`logged` once that is committed."""
        return self.store.row(event, now=self.clock())

    def logged(self, row: dict[str, Any]) -> AuditEvent:
        """Log the event ``row`` holds, once it is committed; the event, as listed."""
        recorded = self.store.event(row)
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
        return await self.store.list(where, limit=limit, after=after)

    async def sweep(self, *, retention: timedelta, batch: int) -> int:
        """Delete up to ``batch`` events older than ``retention``; how many went."""
        return await self.store.delete_before(self.clock() - retention, batch=batch)


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
