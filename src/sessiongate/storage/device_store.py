"""``DeviceStore`` on SQLAlchemy Core: the ``sg_device`` table through the statement runner, one statement a call."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from uuid_utils.compat import uuid7

from sessiongate.core.device_store import RegisteredDevice
from sessiongate.storage.device_tables import DEVICES as D
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.text import holds_nul

__all__ = ("SqlDeviceStore",)


class SqlDeviceStore:
    """:class:`~sessiongate.core.device_store.DeviceStore` on SQLite and PostgreSQL alike.

    Args:
        runner: Where statements run (the gateway's shared runner).
    """

    def __init__(self, runner: StatementRunner) -> None:
        self.runner = runner

    async def add(
        self,
        *,
        tenant: str,
        name: str,
        env: str,
        description: str | None,
        settings: Mapping[str, str],
        now: datetime,
    ) -> RegisteredDevice | None:
        """One ``INSERT``; the unique (tenant, name) index refuses a second device of a name, however many processes
        add it at once."""
        values: dict[str, Any] = {
            "id": uuid7(),
            "tenant": tenant,
            "name": name,
            "env": env,
            "description": description,
            "preferences": {},
            "settings": dict(settings),
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.runner.write(insert(D).values(values))
        except IntegrityError:
            return None
        return _device(values)

    async def get(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """One read by the unique (tenant, name) index."""
        if holds_nul(name):
            return None
        rows = await self.runner.read(select(D).where(D.c.tenant == tenant, D.c.name == name))
        return _device(rows[0]._mapping) if rows else None

    async def list(self, *, tenant: str) -> builtins.list[RegisteredDevice]:
        """One read."""
        rows = await self.runner.read(select(D).where(D.c.tenant == tenant).order_by(D.c.name))
        return [_device(r._mapping) for r in rows]

    async def page(
        self, *, tenant: str, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[RegisteredDevice], bool]:
        """One read of ``limit + 1`` rows down the primary key."""
        if holds_nul(tenant):
            return [], False
        stmt = select(D).where(D.c.tenant == tenant).order_by(D.c.id.desc()).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(D.c.id < after)
        rows = await self.runner.read(stmt)
        return [_device(r._mapping) for r in rows[:limit]], len(rows) > limit

    async def remove(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """One ``DELETE … RETURNING``."""
        if holds_nul(name):
            return None
        outcome = await self.runner.write(delete(D).where(D.c.tenant == tenant, D.c.name == name).returning(*D.c))
        return _device(outcome.rows[0]._mapping) if outcome.rows else None


def _device(values: Mapping[Any, Any]) -> RegisteredDevice:
    return RegisteredDevice(
        id=str(values["id"]),
        tenant=values["tenant"],
        name=values["name"],
        env=values["env"],
        description=values["description"],
        preferences=dict(values["preferences"] or {}),
        settings=dict(values["settings"] or {}),
        created_at=values["created_at"],
    )
