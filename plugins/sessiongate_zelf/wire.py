"""Zelf's JSON, byte for byte (seed 000 "Create a session" and the newer "2. Create a session" page)."""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = ("CreateSession", "CreateSessionResponse", "Error", "SessionData")


class CreateSession(msgspec.Struct, kw_only=True):
    """Unknown members are ignored, as the vendor's Koa server passes them through."""

    identifier: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    kill_session: bool = msgspec.field(default=False, name="killSession")


class SessionData(msgspec.Struct, kw_only=True):
    token: str
    activated_at: int = msgspec.field(name="activatedAt")  # Unix seconds, newer docs
    expires_at: int = msgspec.field(name="expiresAt")


class CreateSessionResponse(msgspec.Struct, kw_only=True):
    data: SessionData


class Error(msgspec.Struct, kw_only=True):
    error: str
