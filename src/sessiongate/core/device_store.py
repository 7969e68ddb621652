"""The storage seam of provisioned devices; ``sessiongate.storage.device_store`` implements it."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import msgspec

__all__ = ("MAX_DESCRIPTION", "MAX_NAME", "DeviceStore", "RegisteredDevice")

MAX_NAME = 128
"""A device name's most characters (= ``sg_device.name``)."""
MAX_DESCRIPTION = 256
"""A description's most characters (= ``sg_device.description``)."""


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


class DeviceStore(Protocol):
    """What the device service needs from a database. Text holding NUL, which no database stores alike, names no
    device: a lookup by it finds nothing."""

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
        a device of that name."""
        ...

    async def get(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """The tenant's device called ``name``, or ``None``."""
        ...

    async def list(self, *, tenant: str) -> builtins.list[RegisteredDevice]:
        """Every device of a tenant, by name."""
        ...

    async def page(
        self, *, tenant: str, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[RegisteredDevice], bool]:
        """Up to ``limit`` devices of a tenant, newest first, with ids below ``after`` (keyset), and whether more
        follow."""
        ...

    async def remove(self, *, tenant: str, name: str) -> RegisteredDevice | None:
        """Delete the tenant's device called ``name``, answered as it was; ``None`` when there was none."""
        ...
