"""memo's own table, ``memo_note``: one note per session, created by the dialect's migration branch
(``migrations/memo_0001_notes.py``).

Only statements are made here (SQLAlchemy Core); the gateway runs them: a note is written with its session, in the
session's transaction (``also_write`` of ``SessionService.create``), forgotten with its end (of ``revoke``), and read
through ``ctx.storage``. So no session is ever kept without its note, and none that memo ends keeps it.
"""

from __future__ import annotations

import sqlalchemy as sa

from sessiongate.dialect import Session

__all__ = ("forget", "keep", "of", "table")

metadata = sa.MetaData()
table = sa.Table(
    "memo_note",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
)
"""What the migration creates (the migration spells it out itself, as migrations do: it must not change later)."""


def keep(session: Session, note: str) -> sa.Insert:
    """Keep ``note`` for the session."""
    return sa.insert(table).values(session_id=session.id, tenant=session.tenant, note=note)


def of(session: Session) -> sa.Select[tuple[str]]:
    """The session's note (no row: it has none)."""
    return sa.select(table.c.note).where(table.c.session_id == session.id, table.c.tenant == session.tenant)


def forget(session: Session) -> sa.Delete:
    """Forget the session's note."""
    return sa.delete(table).where(table.c.session_id == session.id, table.c.tenant == session.tenant)
