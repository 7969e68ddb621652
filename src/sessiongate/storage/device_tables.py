"""The device table (migration 0003): the devices operators provision for PORTOS logins."""

from __future__ import annotations

from typing import Any, cast

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import JsonB
from sqlalchemy import String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sessiongate.core.device_store import MAX_DESCRIPTION, MAX_NAME
from sessiongate.core.tenant_store import MAX_TENANT_NAME

__all__ = ("DEVICES", "DeviceRecord")


class DeviceRecord(UUIDv7AuditBase):
    """One provisioned device of a tenant (migration 0003)."""

    __tablename__ = "sg_device"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),)

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT_NAME))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    env: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(MAX_DESCRIPTION))
    preferences: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)
    settings: Mapped[dict[str, str]] = mapped_column(JsonB, default=dict)


DEVICES = cast("Table", DeviceRecord.__table__)
