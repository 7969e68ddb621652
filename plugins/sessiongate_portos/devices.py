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
from typing import Literal, get_args

from sessiongate.dialect import Conflict, DialectStorage, InvalidRequest, NotFound
from sessiongate_portos.device_store import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_TENANT,
    DeviceStore,
    RegisteredDevice,
    holds_nul,
)

__all__ = (
    "ENVIRONMENTS",
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "MAX_SETTINGS",
    "MAX_SETTING_KEY",
    "MAX_SETTING_VALUE",
    "NUL_REFUSED",
    "SALE_ENVIRONMENTS",
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
MAX_SETTINGS = 100
MAX_SETTING_KEY = 128
MAX_SETTING_VALUE = 1024
"""A device's settings: at most this many, keys and values at most this long (a JSON column has no width of its own,
so these bound what one ``devices add`` can store)."""
NUL_REFUSED = "text must not contain NUL characters"
"""The refusal of text holding NUL, worded as the gateway's own refusals of it."""
_DOT_SEGMENTS = frozenset({".", ".."})
_LINE_BREAKS = frozenset("\t\n\r")


def check_new_device(
    *, tenant: str, name: str, env: str, description: str | None = None, settings: Mapping[str, str] | None = None
) -> None:
    """Refuse a device that could not be stored alike on every database, or named by the admin API's paths.

    ``devices add`` and the admin API both come here (through :meth:`Devices.add`), so they refuse the same devices.
    A name is 1 to :data:`MAX_NAME` printable characters (``str.isprintable``: no control, format, private-use,
    unassigned or separator character but the space), not padded with spaces, and never ``.``, ``..`` or holding
    ``/``: it is one path segment of ``/admin/devices/{name}``, and clients resolve dot segments away (RFC 3986
    5.2.4) while a ``/`` (even sent as ``%2F``) splits the segment, so no URL could name such a device. The tenant
    is a tenant name (printable, unpadded, 1 to :data:`MAX_TENANT`); the description printable and at most
    :data:`MAX_DESCRIPTION` characters; settings' keys printable, their values text without NUL, lone surrogates or
    control characters but tab and line breaks. The widths are the columns': PostgreSQL refuses a longer value where
    SQLite stores it, and neither may see text holding NUL.

    Raises:
        InvalidRequest: the first of these a device breaks, naming its field.
    """
    if not _printable(tenant, MAX_TENANT):
        raise InvalidRequest(f"tenant must be 1 to {MAX_TENANT} printable characters, unpadded", field="tenant")
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
        storage: The dialect's door to its own tables (``ctx.storage``).
    """

    def __init__(self, storage: DialectStorage) -> None:
        self.store = DeviceStore(storage)

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
        device = await self.store.add(
            tenant=tenant, name=name, env=env, description=description, settings=settings or {}, now=now
        )
        if device is None:
            raise Conflict(f"device {name!r} already exists")
        return device

    async def get(self, *, tenant: str, name: str) -> RegisteredDevice:
        """The device called ``name``.

        Raises:
            NotFound: no such device in the tenant.
        """
        device = await self.store.get(tenant=tenant, name=name)
        if device is None:
            raise NotFound(f"device {name!r} not found")
        return device

    async def list(self, *, tenant: str) -> list[RegisteredDevice]:
        """Every device of a tenant, by name."""
        return await self.store.list(tenant=tenant)

    async def page(
        self, *, tenant: str, limit: int, after: uuid.UUID | None = None
    ) -> tuple[builtins.list[RegisteredDevice], bool]:
        """Up to ``limit`` devices of a tenant, newest first, after the device whose id is ``after`` (keyset), and
        whether more follow."""
        return await self.store.page(tenant=tenant, limit=limit, after=after)

    async def remove(self, *, tenant: str, name: str) -> RegisteredDevice:
        """Remove a device, and answer it as it was; its live sessions end on their own schedule.

        Raises:
            NotFound: no such device in the tenant.
        """
        device = await self.store.remove(tenant=tenant, name=name)
        if device is None:
            raise NotFound(f"device {name!r} not found")
        return device
