"""portos's devices as stored: the ``sg_device`` table (made, or adopted from the core, by portos's own migration
branch: ``migrations/portos_0001_devices.py``) and the one statement each of its operations is.

The table keeps the name the core gave it (its ``sg_`` prefix is the core's): databases migrated before portos owned
it hold it with their rows, and the branch takes it over as it is. The gateway runs every statement, through
``ctx.storage`` (the statement runner: on SQLite a write joins the writer's group commit); none opens a connection.
Text holding NUL, which no database stores alike, names no device: a lookup by it finds nothing.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from uuid_utils.compat import uuid7

from sessiongate.dialect import DialectStorage, columns, is_unique_violation

__all__ = ("DEVICES", "MAX_DESCRIPTION", "MAX_NAME", "MAX_TENANT", "DeviceStore", "RegisteredDevice", "holds_nul")

MAX_TENANT = 64
"""A tenant name's most characters (= ``sg_device.tenant``, as wide as the core's tenant names)."""
MAX_NAME = 128
"""A device name's most characters (= ``sg_device.name``)."""
MAX_DESCRIPTION = 256
"""A description's most characters (= ``sg_device.description``)."""

metadata = sa.MetaData()
DEVICES = sa.Table(
    "sg_device",
    metadata,
    sa.Column("id", columns.GUID(length=16), primary_key=True),
    sa.Column("tenant", sa.String(MAX_TENANT), nullable=False),
    sa.Column("name", sa.String(MAX_NAME), nullable=False),
    sa.Column("env", sa.String(32), nullable=False),
    sa.Column("description", sa.String(MAX_DESCRIPTION), nullable=True),
    sa.Column("preferences", columns.JsonB, nullable=False),
    sa.Column("settings", columns.JsonB, nullable=False),
    sa.Column("sa_orm_sentinel", sa.Integer, nullable=True),  # the core's tables have it; nothing here writes it
    sa.Column("created_at", columns.DateTimeUTC(timezone=True), nullable=False),
    sa.Column("updated_at", columns.DateTimeUTC(timezone=True), nullable=False),
    sa.UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),
)
"""What the migration makes (it spells the table out itself, as migrations do: it must not change later)."""
D = DEVICES
_BY_NAME = sa.select(D).where(D.c.tenant == sa.bindparam("tenant"), D.c.name == sa.bindparam("name"))


class RegisteredDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A device as the gateway knows it."""

    id: str
    tenant: str
    name: str
    env: str
    description: str | None
    preferences: dict[str, Any]
    settings: dict[str, str]
    created_at: datetime


class DeviceStore:
    """Devices on SQLite and PostgreSQL alike, one statement a call.

    Args:
        storage: The dialect's door to its own tables (``ctx.storage``).
    """

    def __init__(self, storage: DialectStorage) -> None:
        self.storage = storage

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
        """Store a new device (no preferences yet), as stored; ``None`` (nothing written) when the tenant already has
        a device of that name. One ``INSERT``: the unique (tenant, name) index refuses a second device of a name,
        however many processes add it at once."""
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
            await self.storage.write(sa.insert(D).values(values))
        except IntegrityError as exc:
            if not is_unique_violation(exc):  # a refusal of another kind is the caller's error, not a taken name
                raise
            return None
        return _device(values)

    async def get(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """The tenant's device called ``name``, or ``None``: one read by the unique (tenant, name) index."""
        if holds_nul(name):
            return None
        rows = await self.storage.lookup(_BY_NAME, {"tenant": tenant, "name": name})  # every profile asks this
        return _device(rows[0]) if rows else None

    async def list(self, *, tenant: str) -> builtins.list[RegisteredDevice]:
        """Every device of a tenant, by name: one read."""
        rows = await self.storage.read(sa.select(D).where(D.c.tenant == tenant).order_by(D.c.name))
        return [_device(r._mapping) for r in rows]

    async def page(
        self, *, tenant: str, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[RegisteredDevice], bool]:
        """Up to ``limit`` devices of a tenant, newest first, with ids below ``after`` (keyset), and whether more
        follow: one read of ``limit + 1`` rows down the primary key."""
        if holds_nul(tenant):
            return [], False
        stmt = sa.select(D).where(D.c.tenant == tenant).order_by(D.c.id.desc()).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(D.c.id < after)
        rows = await self.storage.read(stmt)
        return [_device(r._mapping) for r in rows[:limit]], len(rows) > limit

    async def remove(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """Delete the tenant's device called ``name``, answered as it was; ``None`` when there was none. One
        ``DELETE … RETURNING``."""
        if holds_nul(name):
            return None
        outcome = await self.storage.write(sa.delete(D).where(D.c.tenant == tenant, D.c.name == name).returning(*D.c))
        return _device(outcome.rows[0]._mapping) if outcome.rows else None


def holds_nul(value: object) -> bool:
    """Whether ``value`` is text holding NUL (U+0000), or a JSON-like value (keys included) with such text in it:
    PostgreSQL's text cannot hold it and SQLite's can, so neither is ever given it."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False


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
