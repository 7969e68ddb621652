"""PORTOS's JSON, byte for byte (seed 002 "Sessions", S2 JWT Bearer Authentication, S4 Error models)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = (
    "AuthResult",
    "Device",
    "Identity",
    "Login",
    "MemberError",
    "ProblemDetails",
    "QueryResult",
    "Refresh",
    "RefreshTokenResult",
    "Resource",
    "Session",
    "User",
    "UserProfileContext",
)


class Login(msgspec.Struct, kw_only=True):
    """S2 documents the login body in PascalCase; member names bind case-insensitively (decision D2)."""

    user_name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] = msgspec.field(name="UserName")
    device_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)] = msgspec.field(name="DeviceName")
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = msgspec.field(default=None, name="Password")


class Refresh(msgspec.Struct, kw_only=True):
    token_id: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)] = msgspec.field(name="tokenId")
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] = msgspec.field(name="refreshToken")


class User(msgspec.Struct, kw_only=True):
    id: str  # S2: 24 hex digits, ObjectId-like
    is_virtual: bool = msgspec.field(name="isVirtual")
    name: str
    user_name: str = msgspec.field(name="userName")
    feature_name: str | None = msgspec.field(name="featureName")
    rights: list[str]


class Device(msgspec.Struct, kw_only=True):
    name: str
    env_name: str = msgspec.field(name="envName")
    description: str | None
    preferences: dict[str, Any]
    settings: dict[str, str]


class AuthResult(msgspec.Struct, kw_only=True):
    token_id: str = msgspec.field(name="tokenId")
    refresh_token: str = msgspec.field(name="refreshToken")
    user: User
    device: Device


class UserProfileContext(msgspec.Struct, kw_only=True):
    user: User
    device: Device


class RefreshTokenResult(msgspec.Struct, kw_only=True):
    token_id: str = msgspec.field(name="tokenId")
    refresh_token: str = msgspec.field(name="refreshToken")
    expires_at: str = msgspec.field(name="expiresAt")


class Identity(msgspec.Struct, kw_only=True):
    user_name: str = msgspec.field(name="userName")
    device_name: str = msgspec.field(name="deviceName")
    env_name: str = msgspec.field(name="envName")
    authentication_type: str = msgspec.field(name="authenticationType")


class Session(msgspec.Struct, kw_only=True):
    session_id: str = msgspec.field(name="sessionId")
    identity: Identity
    started_at: str = msgspec.field(name="startedAt")  # ISO-8601 UTC, trailing zeros of the fraction trimmed
    expires_at: str = msgspec.field(name="expiresAt")
    last_access_at: str = msgspec.field(name="lastAccessAt")
    version: int = msgspec.field(name="_v")  # S1: resource version


class QueryResult(msgspec.Struct, kw_only=True):
    items: list[Session] | msgspec.UnsetType = msgspec.UNSET  # S1: absent when $count=true
    count: int
    total_count: int = msgspec.field(name="totalCount")


class MemberError(msgspec.Struct, kw_only=True):
    member_name: str = msgspec.field(name="memberName")
    message: str
    code: str | msgspec.UnsetType = msgspec.UNSET


class Resource(msgspec.Struct, kw_only=True):
    name: str
    id: str
    version: int | msgspec.UnsetType = msgspec.UNSET


class ProblemDetails(msgspec.Struct, kw_only=True):
    """S4: RFC 7807 problem details; ``errors`` makes it ``PortosValidationProblemDetails`` (400)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    trace_id: str = msgspec.field(name="traceId")
    error_code: int | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="errorCode")
    resource: Resource | msgspec.UnsetType = msgspec.UNSET
    errors: list[MemberError] | msgspec.UnsetType = msgspec.UNSET
