"""memo's own table, ``memo_note``: one note per session, created by the dialect's migration branch
(``migrations/memo_0001_notes.py``) and read and written here with SQLAlchemy Core, on the gateway's engine."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("delete", "put", "read", "table")

metadata = sa.MetaData()
table = sa.Table(
    "memo_note",
    metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("note", sa.String(500), nullable=False),
)
"""What the migration creates (the migration spells it out itself, as migrations do: it must not change later)."""


async def put(engine: AsyncEngine, *, session_id: str, tenant: str, note: str) -> None:
    """Keep ``note`` for the session."""
    async with engine.begin() as conn:
        await conn.execute(sa.insert(table).values(session_id=session_id, tenant=tenant, note=note))


async def read(engine: AsyncEngine, *, session_id: str, tenant: str) -> str:
    """The session's note (empty when it has none)."""
    query = sa.select(table.c.note).where(table.c.session_id == session_id, table.c.tenant == tenant)
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none() or ""


async def delete(engine: AsyncEngine, *, session_id: str, tenant: str) -> None:
    """Forget the session's note."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(table).where(table.c.session_id == session_id, table.c.tenant == tenant))
