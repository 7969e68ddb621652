"""``AuditStore`` over the statement runner: one statement per call, on SQLite and PostgreSQL alike.

The table and the row of a new event are ``storage.audit_table``'s, beside the sessions', so that the session and
refresh stores write the events of their changes in the same transaction as the changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select

from sessiongate.core.audit_store import AuditEvent, AuditFilter, AuditPage, NewEvent
from sessiongate.core.keyset import encode_cursor
from sessiongate.storage.audit_table import AUDIT, LIMITS, event_row
from sessiongate.storage.runner import StatementRunner

__all__ = ("SqlAuditStore",)

A = AUDIT
_COLUMNS = [c for c in A.c if c.name not in {"sa_orm_sentinel", "updated_at"}]
_INSERT = insert(A)


class SqlAuditStore:
    """:class:`~sessiongate.core.audit_store.AuditStore` over the shared statement runner.

    Args:
        runner: Where the statements run (on SQLite, an event joins the writer's group commit: no transaction of its
            own).
    """

    def __init__(self, runner: StatementRunner) -> None:
        self.runner = runner

    def row(self, event: NewEvent, *, now: datetime) -> dict[str, Any]:
        """The row ``event`` is stored as (``audit_table.event_row``)."""
        fields = {name: getattr(event, name) for name in LIMITS}
        return event_row(event.kind, fields, dict(event.detail), now)

    def event(self, row: Mapping[str, Any]) -> AuditEvent:
        """The event ``row`` holds, as listed."""
        return _event(_Row(row))

    async def insert(self, row: dict[str, Any]) -> None:
        """Write ``row``: one insert, committed when this returns."""
        await self.runner.write(_INSERT.values(row))

    async def list(self, where: AuditFilter, *, limit: int, after: uuid.UUID | None = None) -> AuditPage:
        """Up to ``limit`` events matching ``where``, newest first, after the event ``after`` names: one read of
        ``limit + 1`` rows, the last only telling whether a next page exists."""
        conditions = _conditions(where)
        if after is not None:
            conditions.append(A.c.id < after)
        stmt = select(*_COLUMNS).where(*conditions).order_by(A.c.id.desc()).limit(limit + 1)
        rows = await self.runner.read(stmt)
        more = len(rows) > limit
        items = [_event(row) for row in rows[:limit]]
        return AuditPage(items=items, next_cursor=encode_cursor(uuid.UUID(items[-1].id)) if more else None)

    async def delete_before(self, before: datetime, *, batch: int) -> int:
        """Delete up to ``batch`` events older than ``before``, the oldest first (by the ``created_at`` index)."""
        older = select(A.c.id).where(A.c.created_at < before).order_by(A.c.created_at).limit(batch)
        return (await self.runner.write(delete(A).where(A.c.id.in_(older.scalar_subquery())))).rowcount


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
    """A row of ``event_row`` read as a database row is: by attribute."""

    def __init__(self, values: Mapping[str, Any]) -> None:
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
