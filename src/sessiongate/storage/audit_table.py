"""The audit events' table, and the row of a new event: what the session store writes with a session it creates.

:mod:`sessiongate.sessions.audit` records, lists and sweeps events; the table lives here, beside the sessions', so that
a create's event is written by the same statement (PostgreSQL) or in the same transaction (SQLite) as its session.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy import Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

__all__ = ("AUDIT", "LIMITS", "AuditEventRecord", "event_row")

LIMITS = {
    "actor": 160,
    "tenant": 64,
    "dialect": 32,
    "principal_id": 128,
    "session_id": 64,
    "client_address": 64,
    "user_agent": 256,
}
"""Column widths: a longer value is cut, never refused (an event is never lost to a long user agent)."""


class AuditEventRecord(UUIDv7AuditBase):
    """One audit event (migration 0011). ``created_at`` is when it happened."""

    __tablename__ = "sg_audit_event"
    __table_args__ = (Index("ix_sg_audit_event_created", "created_at"),)  # the retention sweep, and time ranges

    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(LIMITS["actor"]))
    tenant: Mapped[str | None] = mapped_column(String(LIMITS["tenant"]))
    dialect: Mapped[str | None] = mapped_column(String(LIMITS["dialect"]))
    principal_id: Mapped[str | None] = mapped_column(String(LIMITS["principal_id"]))
    session_id: Mapped[str | None] = mapped_column(String(LIMITS["session_id"]))
    client_address: Mapped[str | None] = mapped_column(String(LIMITS["client_address"]))
    user_agent: Mapped[str | None] = mapped_column(String(LIMITS["user_agent"]))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


AUDIT = cast("Table", AuditEventRecord.__table__)
ROW_COLUMNS = ("id", "kind", "created_at", "updated_at", "detail", *LIMITS)
"""The columns :func:`event_row` fills, in this order."""


def event_row(kind: str, fields: dict[str, Any], detail: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The row of a new event of ``kind``: ``fields`` (actor, tenant, ...: :data:`LIMITS`' names) cut to their widths
    and freed of NUL characters, as ``detail``'s text values are (PostgreSQL's text cannot hold a NUL)."""
    row: dict[str, Any] = {"id": uuid7(), "kind": kind, "created_at": now, "updated_at": now}
    for name, most in LIMITS.items():
        value = fields.get(name)
        row[name] = _clean(value, most) if value is not None else None
    row["detail"] = {k: _clean(v, 256) if isinstance(v, str) else v for k, v in detail.items()}
    return row


def _clean(value: str, most: int) -> str:
    return value.replace("\x00", "\ufffd")[:most]
