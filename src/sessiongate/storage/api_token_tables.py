"""The table of the gateway's API tokens (migration 0009)."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import String, Table
from sqlalchemy.orm import Mapped, mapped_column

from sessiongate.core.api_token_store import MAX_NAME

__all__ = ("API_TOKENS", "ApiTokenRecord")


class ApiTokenRecord(UUIDv7AuditBase):
    """An API credential of the gateway (migration 0009). Revoked rows stay, so a listing shows what was revoked."""

    __tablename__ = "sg_gateway_token"

    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


API_TOKENS = cast("Table", ApiTokenRecord.__table__)
