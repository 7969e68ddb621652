"""The tenant tables (migrations 0004 and 0012): tenants, their keys, and the auth tokens of secure tenants."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from sessiongate.core.tenant_store import MAX_TENANT_NAME

__all__ = (
    "AUTH_TOKENS",
    "KEYS",
    "TENANTS",
    "TenantAuthTokenRecord",
    "TenantKeyRecord",
    "TenantRecord",
)


class TenantRecord(UUIDv7AuditBase):
    """A tenant. ``secure`` tenants accept a session only with an auth token minted with a server key."""

    __tablename__ = "sg_tenant"

    name: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), unique=True)
    secure: Mapped[bool] = mapped_column(Boolean, default=False)


class TenantKeyRecord(UUIDv7AuditBase):
    """An API key (public, in client apps), a server key or an admin token (secrets, on the tenant's backend)."""

    __tablename__ = "sg_tenant_key"
    __table_args__ = (Index("ix_sg_tenant_key_tenant", "tenant"),)

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), ForeignKey("sg_tenant.name", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    # Migration 0012: a key ends when revoked or at its expiry; its last use trails by at most a minute
    # (sessiongate.identity.tenants.LAST_USE_EVERY).
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class TenantAuthTokenRecord(UUIDv7AuditBase):
    """An auth token a secure tenant's backend minted for one principal; usable once, until ``expires_at``."""

    __tablename__ = "sg_tenant_auth_token"
    __table_args__ = (Index("ix_sg_tenant_auth_token_expires", "expires_at"),)

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), ForeignKey("sg_tenant.name", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


TENANTS = cast("Table", TenantRecord.__table__)
KEYS = cast("Table", TenantKeyRecord.__table__)
AUTH_TOKENS = cast("Table", TenantAuthTokenRecord.__table__)
