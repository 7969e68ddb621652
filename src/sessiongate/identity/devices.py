"""Devices that principals log in to (PORTOS): each has a name and an environment, provisioned by operators.

A device in a *sale environment* (a cash register, a PDA) holds at most one live session: a new login there ends
the previous one. :func:`exclusive_key` gives such a device's sessions a common ``NewSession.reuse_key``; the
unique index on that key is what guarantees it, however many gateway processes take logins at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, cast, get_args

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy import String, Table, UniqueConstraint, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from sessiongate.core.errors import Conflict, InvalidRequest, NotFound
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.text import NUL_REFUSED, holds_nul

__all__ = (
    "ENVIRONMENTS",
    "SALE_ENVIRONMENTS",
    "DeviceRecord",
    "Devices",
    "Environment",
    "RegisteredDevice",
    "exclusive_key",
)

Environment = Literal["BackOffice", "CashRegister", "PDA", "Tool"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
"""The device environments PORTOS documents."""
SALE_ENVIRONMENTS = frozenset({"CashRegister", "PDA"})
"""Environments whose devices hold at most one live session."""
MAX_NAME = 128


class DeviceRecord(UUIDv7AuditBase):
    """One provisioned device of a tenant (migration 0003)."""

    __tablename__ = "sg_device"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),)

    tenant: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    env: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(256))
    preferences: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    settings: Mapped[dict[str, str]] = mapped_column(JsonB, default=dict)


D = cast("Table", DeviceRecord.__table__)


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


def exclusive_key(device: RegisteredDevice) -> str | None:
    """The ``reuse_key`` shared by every session of a sale-environment device; ``None`` for other devices."""
    return f"device|{device.tenant}|{device.id}" if device.env in SALE_ENVIRONMENTS else None


class Devices:
    """Provision, find and remove devices.

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
        now: datetime,
        description: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> RegisteredDevice:
        """Provision a device.

        Raises:
            InvalidRequest: an empty or too long name, or an unknown environment.
            Conflict: the tenant already has a device of that name.
        """
        if not 0 < len(name) <= MAX_NAME:
            raise InvalidRequest(f"device name must be 1 to {MAX_NAME} characters", field="name")
        if holds_nul((name, description, settings)):
            raise InvalidRequest(NUL_REFUSED, field="name" if holds_nul(name) else None)
        if env not in ENVIRONMENTS:
            raise InvalidRequest(f"environment must be one of {', '.join(ENVIRONMENTS)}", field="env")
        values: dict[str, Any] = {
            "id": uuid7(),
            "tenant": tenant,
            "name": name,
            "env": env,
            "description": description,
            "preferences": {},
            "settings": dict(settings or {}),
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.runner.write(insert(D).values(values))
        except IntegrityError as exc:
            raise Conflict(f"device {name!r} already exists") from exc
        return _device(values)

    async def get(self, *, tenant: str, name: str) -> RegisteredDevice:
        """The device called ``name``.

        Raises:
            NotFound: no such device in the tenant.
        """
        rows = (
            [] if holds_nul(name) else await self.runner.read(select(D).where(D.c.tenant == tenant, D.c.name == name))
        )
        if not rows:
            raise NotFound(f"device {name!r} not found")
        return _device(rows[0]._mapping)

    async def list(self, *, tenant: str) -> list[RegisteredDevice]:
        """Every device of a tenant, by name."""
        rows = await self.runner.read(select(D).where(D.c.tenant == tenant).order_by(D.c.name))
        return [_device(r._mapping) for r in rows]

    async def remove(self, *, tenant: str, name: str) -> None:
        """Remove a device; its live sessions end on their own schedule.

        Raises:
            NotFound: no such device in the tenant.
        """
        if holds_nul(name):
            raise NotFound(f"device {name!r} not found")
        outcome = await self.runner.write(delete(D).where(D.c.tenant == tenant, D.c.name == name))
        if outcome.rowcount == 0:
            raise NotFound(f"device {name!r} not found")


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
