"""``KeyMaterialStore`` on the async engine: the key ring's rows of ``sg_secret``, on SQLite and PostgreSQL alike.

The ring is read and changed rarely (a start, a read every ``key_refresh_interval``, a rotation), so it goes through
the engine's own connections rather than the statement runner: a change is a transaction of its own, and a new
key is an insert-if-absent in the dialect's own words (``ON CONFLICT (name) DO NOTHING``), so processes starting or
rotating at once agree on who made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.core.key_store import StoredKey
from sessiongate.storage.tables import SecretRecord

__all__ = ("SqlKeyMaterialStore",)

K = cast("Table", SecretRecord.__table__)
C = K.c
_KEYS = select(C.name, C.value, C.activates_at, C.retires_at)
_NAMES = select(C.name).order_by(C.name)
_VALUE = select(C.value).where(C.name == bindparam("key_name"))
_REPLACE = (
    update(K)
    .where(C.name == bindparam("key_name"), C.value == bindparam("old"))
    .values(value=bindparam("new"), updated_at=bindparam("now"))
)


def _not_sooner(than: Any) -> Any:
    """Keys that do not retire before ``than`` already."""
    return or_(C.retires_at.is_(None), C.retires_at > than)


_RETIRE = (
    update(K)
    .where(C.name == bindparam("key_name"), _not_sooner(bindparam("at")))
    .values(retires_at=bindparam("at"), updated_at=bindparam("at"))
)
_RETIRE_REPLACED = (
    update(K)
    .where(C.name.in_(bindparam("names", expanding=True)), _not_sooner(bindparam("at")))
    .values(retires_at=bindparam("at"), updated_at=bindparam("now"))
)
_INSERTS = {
    "postgresql": postgresql.insert(K).on_conflict_do_nothing(index_elements=["name"]).returning(C.name),
    "sqlite": sqlite.insert(K).on_conflict_do_nothing(index_elements=["name"]).returning(C.name),
}
"""A new key unless one has its name: in each database's words (the name's unique index decides between racers)."""


class SqlKeyMaterialStore:
    """:class:`~sessiongate.core.key_store.KeyMaterialStore` over the shared engine.

    Args:
        engine: The gateway's engine; each call takes one of its connections for one short transaction.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = _INSERTS["postgresql" if engine.dialect.name == "postgresql" else "sqlite"]

    async def keys(self) -> list[StoredKey]:
        """Every key kept (one read)."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_KEYS)).all()
        return [
            StoredKey(name=row.name, value=str(row.value), activates_at=row.activates_at, retires_at=row.retires_at)
            for row in rows
        ]

    async def add(
        self,
        name: str,
        value: str,
        *,
        now: datetime,
        activates_at: datetime | None = None,
        retiring: Sequence[str] = (),
        retires_at: datetime | None = None,
    ) -> bool:
        """Keep ``value`` under ``name`` unless taken, and retire ``retiring`` at ``retires_at`` with it: one
        transaction."""
        kept = {
            "id": uuid7(),
            "name": name,
            "value": value,
            "activates_at": activates_at,
            "created_at": now,
            "updated_at": now,
        }
        async with self.engine.begin() as conn:
            made = (await conn.execute(self._insert, kept)).first() is not None
            if made and retires_at is not None and retiring:
                await conn.execute(_RETIRE_REPLACED, {"names": list(retiring), "at": retires_at, "now": now})
        return made

    async def retire(self, name: str, *, now: datetime) -> None:
        """Retire ``name`` at ``now`` unless it retires sooner already: one update."""
        async with self.engine.begin() as conn:
            await conn.execute(_RETIRE, {"key_name": name, "at": now})

    async def names(self) -> list[str]:
        """Every key's name, in order."""
        async with self.engine.connect() as conn:
            return [str(name) for name in (await conn.execute(_NAMES)).scalars()]

    async def value(self, name: str) -> str:
        """The value stored under ``name``.

        Raises:
            KeyError: no key has that name.
        """
        async with self.engine.connect() as conn:
            stored = (await conn.execute(_VALUE, {"key_name": name})).scalar_one_or_none()
        if stored is None:
            raise KeyError(name)
        return str(stored)

    async def replace_value(self, name: str, *, old: str, new: str, now: datetime) -> bool:
        """Store ``new`` under ``name`` if ``old`` is still stored: one conditional update."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_REPLACE, {"key_name": name, "old": old, "new": new, "now": now})
        return result.rowcount == 1
