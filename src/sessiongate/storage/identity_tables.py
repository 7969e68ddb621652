"""The identity tables (migration 0002): principals, their auth tokens, and login failures for throttling.

Migration 0007 gave principals their realm: who made them, and so which dialects may log them in. The column sizes
and the gateway's realm are the identity store's contract, so they are defined with it
(``sessiongate.core.identity_store``).
"""

from __future__ import annotations

from datetime import datetime
from typing import cast
from uuid import UUID

from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from sessiongate.core.identity_store import (
    GATEWAY_REALM,
    MAX_DISPLAY_NAME,
    MAX_EMAIL,
    MAX_LOGIN,
    MAX_PUBLIC_ID,
    MAX_REALM,
    MAX_TENANT,
)

__all__ = (
    "AuthTokenRecord",
    "LoginFailureRecord",
    "PrincipalRecord",
    "auth_tokens",
    "login_failures",
    "principals",
)


class PrincipalRecord(UUIDv7AuditBase):
    """Someone sessions belong to. ``public_id`` is the id dialects show and sessions carry; ``id`` stays inside.

    Ids and logins are unique in a tenant across realms, so the principal id a session carries names one principal.
    """

    __tablename__ = "sg_principal"
    __table_args__ = (
        UniqueConstraint("tenant", "login", name="uq_sg_principal_tenant_login"),
        UniqueConstraint("tenant", "public_id", name="uq_sg_principal_tenant_public_id"),
        # The sweep of principals a realm's registrations made and no longer use (migration 0007).
        Index("ix_sg_principal_realm_used", "realm", "last_used_at"),
    )

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT))
    public_id: Mapped[str] = mapped_column(String(MAX_PUBLIC_ID))
    login: Mapped[str] = mapped_column(String(MAX_LOGIN))
    email: Mapped[str | None] = mapped_column(String(MAX_EMAIL))
    display_name: Mapped[str | None] = mapped_column(String(MAX_DISPLAY_NAME))
    roles: Mapped[list[str]] = mapped_column(JsonB, default=list)
    permissions: Mapped[list[str]] = mapped_column(JsonB, default=list)
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    realm: Mapped[str] = mapped_column(String(MAX_REALM), default=GATEWAY_REALM, server_default=GATEWAY_REALM)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class AuthTokenRecord(UUIDv7AuditBase):
    """A long-lived credential of one principal (SAYMON's ``auth-token``); only its keyed digest is kept."""

    __tablename__ = "sg_auth_token"
    __table_args__ = (Index("ix_sg_auth_token_principal", "principal_id"),)

    principal_id: Mapped[UUID] = mapped_column(GUID(length=16), ForeignKey("sg_principal.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class LoginFailureRecord(UUIDv7AuditBase):
    """Recent failed logins under one throttle key (a login, or a client address, of a tenant).

    ``key`` is a keyed digest of what it counts, so neither logins nor addresses are kept in clear here. Rows live in
    the database so every gateway process counts the same failures.
    """

    __tablename__ = "sg_login_failure"
    __table_args__ = (Index("ix_sg_login_failure_window", "window_started_at"),)

    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


principals = cast("Table", PrincipalRecord.__table__)
auth_tokens = cast("Table", AuthTokenRecord.__table__)
login_failures = cast("Table", LoginFailureRecord.__table__)
