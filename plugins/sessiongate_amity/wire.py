"""Amity's JSON, byte for byte (seed 004 "Register a session"; dossier S2 for the other routes)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = (
    "ChatSettings",
    "DeviceInfo",
    "Error",
    "Mention",
    "RegisterSession",
    "RevokeRequest",
    "Session",
    "Success",
    "TokenRequest",
    "User",
    "Verified",
)

NO_NUL = "^[^\\u0000]*$"  # PostgreSQL text cannot hold NUL: such members are refused on every database
UserId = Annotated[str, msgspec.Meta(min_length=1, max_length=50, pattern=NO_NUL)]


class DeviceInfo(msgspec.Struct, kw_only=True):
    kind: Literal["ios", "android", "web", "node"] | msgspec.UnsetType = msgspec.UNSET
    # S2 says 100, but the web SDK sends "<navigator.product>#<userAgent>", often longer (decision in the spec).
    model: Annotated[str, msgspec.Meta(max_length=256, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.UNSET
    sdk_version: Annotated[str, msgspec.Meta(max_length=30, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="sdkVersion"
    )


class RegisterSession(msgspec.Struct, kw_only=True):
    """Unknown members are ignored (the vendor's schema does not forbid them)."""

    user_id: UserId = msgspec.field(name="userId")
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=150, pattern=NO_NUL)] = msgspec.field(
        name="deviceId"
    )
    device_info: DeviceInfo | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="deviceInfo")
    display_name: Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="displayName"
    )
    auth_token: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | msgspec.UnsetType = msgspec.field(
        default=msgspec.UNSET, name="authToken"
    )


class User(msgspec.Struct, kw_only=True):
    id: str = msgspec.field(name="_id")  # Mongo-style internal id
    path: str
    user_id: str = msgspec.field(name="userId")
    user_internal_id: str = msgspec.field(name="userInternalId")
    user_public_id: str = msgspec.field(name="userPublicId")
    roles: list[str]
    permissions: list[str]
    display_name: str | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="displayName")
    flag_count: int = msgspec.field(name="flagCount")
    hash_flag: None = msgspec.field(name="hashFlag")
    metadata: dict[str, Any]
    is_global_ban: bool = msgspec.field(name="isGlobalBan")
    is_global_banned: bool = msgspec.field(name="isGlobalBanned")  # what the TypeScript SDK reads
    is_brand: bool = msgspec.field(name="isBrand")
    created_at: str = msgspec.field(name="createdAt")
    updated_at: str = msgspec.field(name="updatedAt")
    is_deleted: bool = msgspec.field(name="isDeleted")


class Session(msgspec.Struct, kw_only=True):
    access_token: str = msgspec.field(name="accessToken")
    refresh_token: str = msgspec.field(name="refreshToken")
    issued_at: str = msgspec.field(name="issuedAt")
    expires_at: str = msgspec.field(name="expiresAt")
    users: list[User]
    roles: list[Any]  # role definitions: the gateway keeps none
    files: list[Any]  # the user's files: the gateway keeps none
    last_cache_purge: str = msgspec.field(name="lastCachePurge")


class Verified(msgspec.Struct, kw_only=True):
    last_cache_purge: str = msgspec.field(name="lastCachePurge")


class Success(msgspec.Struct, kw_only=True):
    success: bool


class RevokeRequest(msgspec.Struct, kw_only=True):
    """S6's form of a revoke: the user in the body (``x-admin-token``); without ``userId``, the caller's own token."""

    user_id: UserId | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="userId")


class TokenRequest(msgspec.Struct, kw_only=True):
    user_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)] = msgspec.field(name="userId")


class Mention(msgspec.Struct, kw_only=True):
    is_allow_mentioned_channel_enabled: bool = msgspec.field(name="isAllowMentionedChannelEnabled")


class MessagePreview(msgspec.Struct, kw_only=True):
    enabled: bool
    is_include_deleted: bool = msgspec.field(name="isIncludeDeleted")


class Marker(msgspec.Struct, kw_only=True):
    enabled: bool


class ChatSettings(msgspec.Struct, kw_only=True):
    enabled: bool
    mention: Mention
    message_preview: MessagePreview = msgspec.field(name="messagePreview")
    marker: Marker


class Error(msgspec.Struct, kw_only=True):
    status: str
    code: int
    message: str
    data: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
