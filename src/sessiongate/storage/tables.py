"""The gateway's tables (advanced-alchemy declarative models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7AuditBase, orm_registry
from advanced_alchemy.types import DateTimeUTC, JsonB
from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

__all__ = ("SecretRecord", "SessionRecord", "metadata")

metadata = orm_registry.metadata


class SessionRecord(UUIDv7AuditBase):
    """One session of any dialect. Secrets appear only as keyed digests."""

    __tablename__ = "sg_session"
    # The sweeper's indexes: expired rows by expiry, revoked ones by a partial index holding only them (so it costs
    # a create nothing). The listings' partial indexes of live rows are declared with their queries
    # (storage.store.LISTING_INDEXES).
    __table_args__ = (
        Index("ix_sg_session_expires", "expires_at"),
        Index(
            "ix_sg_session_revoked",
            "revoked_at",
            sqlite_where=text("revoked_at IS NOT NULL"),
            postgresql_where=text("revoked_at IS NOT NULL"),
        ),
    )

    tenant: Mapped[str] = mapped_column(String(64))
    dialect: Mapped[str] = mapped_column(String(32))
    principal_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(256))
    client_address: Mapped[str | None] = mapped_column(String(64))
    token_digest: Mapped[str | None] = mapped_column(String(64), unique=True)
    reuse_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(String(256))
    device_name: Mapped[str | None] = mapped_column(String(256))
    device_kind: Mapped[str | None] = mapped_column(String(32))
    device_model: Mapped[str | None] = mapped_column(String(128))
    device_sdk_version: Mapped[str | None] = mapped_column(String(64))
    device_env: Mapped[str | None] = mapped_column(String(32))
    last_seen_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    absolute_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonB, default=dict)


class SecretRecord(UUIDv7AuditBase):
    """Server-side keys generated when none is configured, shared by every gateway process.

    They sign and key digests. With a master key, ``value`` is the key encrypted under it (``tokens.keys``); without
    one it is the key itself, and this table is as sensitive as the settings.
    """

    __tablename__ = "sg_secret"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    value: Mapped[str] = mapped_column(Text)
