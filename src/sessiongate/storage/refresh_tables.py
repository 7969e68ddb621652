"""The refresh-token table (migration 0003): one row per token ever issued, only its keyed digest kept."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("RefreshTokenRecord",)


class RefreshTokenRecord(UUIDv7AuditBase):
    """A refresh token of one login (its family).

    Rotation marks the presented row ``rotated_at`` and adds its successor, so a rotated token stays known: that is
    how its reuse is recognised. There is no foreign key to ``sg_session``: a session row can be replaced in place
    (``reuse_key``) or swept, and its refresh tokens must then simply stop working, not block that or move with it.
    """

    __tablename__ = "sg_refresh_token"
    __table_args__ = (
        Index("ix_sg_refresh_token_family", "family_id"),
        Index("ix_sg_refresh_token_expires", "expires_at"),
    )

    family_id: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[UUID] = mapped_column(GUID(length=16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
