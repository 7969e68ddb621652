"""Devices that principals log in to (PORTOS): each has a name and an environment, provisioned by operators.

A device in a *sale environment* (a cash register, a PDA) holds at most one live session: a new login there ends
the previous one. :func:`exclusive_key` gives such a device's sessions a common ``NewSession.reuse_key``; the
unique index on that key is what guarantees it, however many gateway processes take logins at once.
"""

from __future__ import annotations

import builtins
import unicodedata
import uuid
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
from sessiongate.identity.tenants import MAX_TENANT_NAME
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.text import NUL_REFUSED, holds_nul

__all__ = (
    "ENVIRONMENTS",
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "MAX_SETTINGS",
    "MAX_SETTING_KEY",
    "MAX_SETTING_VALUE",
    "SALE_ENVIRONMENTS",
    "DeviceRecord",
    "Devices",
    "Environment",
    "RegisteredDevice",
    "check_new_device",
    "exclusive_key",
)

Environment = Literal["BackOffice", "CashRegister", "PDA", "Tool"]
ENVIRONMENTS: tuple[str, ...] = get_args(Environment)
"""The device environments PORTOS documents."""
SALE_ENVIRONMENTS = frozenset({"CashRegister", "PDA"})
"""Environments whose devices hold at most one live session."""
MAX_NAME = 128
"""A device name's most characters (= ``sg_device.name``)."""
MAX_DESCRIPTION = 256
"""A description's most characters (= ``sg_device.description``)."""
MAX_SETTINGS = 100
MAX_SETTING_KEY = 128
MAX_SETTING_VALUE = 1024
"""A device's settings: at most this many, keys and values at most this long (a JSON column has no width of its own,
so these bound what one ``devices add`` can store)."""
_DOT_SEGMENTS = frozenset({".", ".."})
_LINE_BREAKS = frozenset("\t\n\r")


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


def check_new_device(
    *, tenant: str, name: str, env: str, description: str | None = None, settings: Mapping[str, str] | None = None
) -> None:
    """Refuse a device that could not be stored alike on every database, or named by the admin API's paths.

    ``devices add`` and the admin API both come here (through :meth:`Devices.add`), so they refuse the same devices.
    A name is 1 to :data:`MAX_NAME` printable characters (``str.isprintable``: no control, format, private-use,
    unassigned or separator character but the space), not padded with spaces, and never ``.``, ``..`` or holding
    ``/``: it is one path segment of ``/admin/devices/{name}``, and clients resolve dot segments away (RFC 3986
    5.2.4) while a ``/`` (even sent as ``%2F``) splits the segment, so no URL could name such a device. The tenant
    is a tenant name (printable, unpadded, 1 to :data:`~sessiongate.identity.tenants.MAX_TENANT_NAME`); the
    description printable and at most :data:`MAX_DESCRIPTION` characters; settings' keys printable, their values
    text without NUL, lone surrogates or control characters but tab and line breaks. The widths are the columns':
    PostgreSQL refuses a longer value where SQLite stores it, and neither may see text holding NUL.

    Raises:
        InvalidRequest: the first of these a device breaks, naming its field.
    """
    if not _printable(tenant, MAX_TENANT_NAME):
        raise InvalidRequest(f"tenant must be 1 to {MAX_TENANT_NAME} printable characters, unpadded", field="tenant")
    if not _printable(name, MAX_NAME):
        raise InvalidRequest(f"device name must be 1 to {MAX_NAME} printable characters, unpadded", field="name")
    if name in _DOT_SEGMENTS or "/" in name:
        raise InvalidRequest("device name cannot be '.' or '..' nor hold '/': no URL path can name it", field="name")
    if env not in ENVIRONMENTS:
        raise InvalidRequest(f"environment must be one of {', '.join(ENVIRONMENTS)}", field="env")
    if description is not None and not (len(description) <= MAX_DESCRIPTION and description.isprintable()):
        raise InvalidRequest(f"description must be at most {MAX_DESCRIPTION} printable characters", field="description")
    values = settings or {}
    if len(values) > MAX_SETTINGS:
        raise InvalidRequest(f"a device has at most {MAX_SETTINGS} settings", field="settings")
    for key, value in values.items():
        if not _printable(key, MAX_SETTING_KEY):
            raise InvalidRequest(
                f"a setting's key must be 1 to {MAX_SETTING_KEY} printable characters, unpadded", field="settings"
            )
        if len(value) > MAX_SETTING_VALUE or not all(_text(c) for c in value):
            raise InvalidRequest(
                f"a setting's value must be at most {MAX_SETTING_VALUE} characters, with no control character but "
                "tab and line breaks",
                field="settings",
            )


def _printable(text: str, most: int) -> bool:
    return 0 < len(text) <= most and text.isprintable() and text == text.strip()


def _text(char: str) -> bool:
    return char in _LINE_BREAKS or unicodedata.category(char) not in {"Cc", "Cs"}


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
            InvalidRequest: a device :func:`check_new_device` refuses.
            Conflict: the tenant already has a device of that name.
        """
        if holds_nul((tenant, name, env, description, settings)):
            raise InvalidRequest(NUL_REFUSED, field="name" if holds_nul(name) else None)
        check_new_device(tenant=tenant, name=name, env=env, description=description, settings=settings)
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

    async def page(
        self, *, tenant: str, limit: int, after: uuid.UUID | None = None
    ) -> tuple[builtins.list[RegisteredDevice], bool]:
        """Up to ``limit`` devices of a tenant, newest first, after the device whose id is ``after`` (keyset), and
        whether more follow."""
        stmt = select(D).where(D.c.tenant == tenant).order_by(D.c.id.desc()).limit(limit + 1)
        if after is not None:
            stmt = stmt.where(D.c.id < after)
        rows = [] if holds_nul(tenant) else await self.runner.read(stmt)
        return [_device(r._mapping) for r in rows[:limit]], len(rows) > limit

    async def remove(self, *, tenant: str, name: str) -> RegisteredDevice:
        """Remove a device, and answer it as it was; its live sessions end on their own schedule.

        Raises:
            NotFound: no such device in the tenant.
        """
        if holds_nul(name):
            raise NotFound(f"device {name!r} not found")
        outcome = await self.runner.write(delete(D).where(D.c.tenant == tenant, D.c.name == name).returning(*D.c))
        if not outcome.rows:
            raise NotFound(f"device {name!r} not found")
        return _device(outcome.rows[0]._mapping)


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
