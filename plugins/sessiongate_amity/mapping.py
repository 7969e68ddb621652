"""Amity wire ⇄ core, and amity's error body."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec

from sessiongate.dialect import errors
from sessiongate.dialect import models as core
from sessiongate_amity import wire

__all__ = (
    "CHAT_SETTINGS",
    "claims",
    "device_key",
    "error_out",
    "internal_id",
    "iso",
    "register_in",
    "session_out",
    "user_out",
)

MODEL_STORED = 128  # sg_session.device_model
# The gateway runs no chat: every optional feature is off (the SDK only needs the shape, to finish its login).
CHAT_SETTINGS = wire.ChatSettings(
    enabled=True,
    mention=wire.Mention(is_allow_mentioned_channel_enabled=False),
    message_preview=wire.MessagePreview(enabled=False, is_include_deleted=False),
    marker=wire.Marker(enabled=False),
)
# Business codes and texts of S2's global/error.yaml, by the core's error code.
_CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400000, "Bad Request."),
    "unsupported_media_type": (400000, "Unsupported media type."),
    "method_not_allowed": (400000, "Method not allowed."),
    "unauthenticated": (400100, "Unauthorized"),
    "session_expired": (400100, "Unauthorized"),
    "session_revoked": (400100, "Unauthorized"),
    "forbidden": (400300, "Forbidden error."),
    "account_locked": (400300, "Forbidden error."),
    "account_disabled": (400312, "User is global banned."),
    "rate_limited": (400311, "RateLimit Exceed."),
    "not_found": (400400, "Resource Not Found."),
    "conflict": (400900, "Conflict."),
    "session_limit_reached": (400900, "Conflict."),
    "payload_too_large": (500000, "Payload too large."),
}


def internal_id(tenant: str, user_id: str) -> str:
    """The user's ``_id``: stable, 24 hex digits like the vendor's ObjectIds, naming the user in its network only."""
    return hashlib.sha256(f"{tenant}\x00{user_id}".encode()).hexdigest()[:24]


def device_key(tenant: str, device_id: str) -> str:
    """The reuse key every session of one device shares: one user per device (S6)."""
    return f"amity|{tenant}|{device_id}"


def register_in(
    body: wire.RegisterSession,
    *,
    tenant: str,
    client_address: str,
    refresh_digest: str,
    renewed_from: str | None,
) -> core.NewSession:
    """The device's session; ``subject`` is the user's internal id (how ``isPublic=false`` finds it)."""
    info = body.device_info if isinstance(body.device_info, wire.DeviceInfo) else wire.DeviceInfo()
    attributes: dict[str, Any] = {"refresh_token_digest": refresh_digest}
    if renewed_from is not None:
        attributes["renewed_from"] = renewed_from
    return core.NewSession(
        tenant=tenant,
        dialect="amity",
        principal_id=body.user_id,
        subject=internal_id(tenant, body.user_id),
        client_address=client_address,
        device=core.Device(
            id=body.device_id,
            kind=_given(info.kind),
            model=model[:MODEL_STORED] if (model := _given(info.model)) is not None else None,
            sdk_version=_given(info.sdk_version),
        ),
        attributes=attributes,
        reuse_key=device_key(tenant, body.device_id),
    )


def claims(session: core.Session) -> dict[str, str]:
    """D4: ``sub`` the user, ``did`` the device, ``sid`` the session (``iat``/``exp`` added by the key ring)."""
    return {"sub": session.principal_id or "", "did": session.device.id or "", "sid": session.id}


def user_out(principal: core.Principal) -> wire.User:
    """The seed's user object, with what the gateway knows; it keeps no profile (handle, avatar, description)."""
    _id = internal_id(principal.tenant, principal.id)
    network = hashlib.sha256(principal.tenant.encode()).hexdigest()[:24]
    return wire.User(
        id=_id,
        path=f"{network}/user/{_id}",
        user_id=principal.id,
        user_internal_id=_id,
        user_public_id=principal.id,
        roles=list(principal.roles),
        permissions=list(principal.permissions),
        display_name=principal.display_name if principal.display_name is not None else msgspec.UNSET,
        flag_count=0,
        hash_flag=None,
        metadata={},
        is_global_ban=principal.disabled,
        is_global_banned=principal.disabled,
        is_brand=False,
        created_at=iso(principal.created_at),
        updated_at=iso(principal.updated_at),
        is_deleted=False,
    )


def session_out(
    session: core.Session, token: core.IssuedToken, refresh: str, principal: core.Principal, last_cache_purge: datetime
) -> wire.Session:
    """The seed's response: tokens, times (ISO 8601, UTC, milliseconds), the user, and no roles or files."""
    return wire.Session(
        access_token=token.value,
        refresh_token=refresh,
        issued_at=iso(session.created_at),
        expires_at=iso(session.expires_at),
        users=[user_out(principal)],
        roles=[],
        files=[],
        last_cache_purge=iso(last_cache_purge),
    )


def iso(when: datetime) -> str:
    """``2023-11-07T05:31:56.000Z``."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_out(error: errors.GatewayError, *, validation_status: int = 400) -> tuple[int, wire.Error]:
    """The status and ``{"status": "error", "code", "message", "data"?}``; validation failures name the field.

    ``validation_status`` is 422 on the auth-token routes, which S2 documents so (with code 500000).
    """
    if isinstance(error, errors.InvalidRequest):
        code = 500000 if validation_status == 422 else 400000
        data = {"detail": [error.message]}
        return validation_status, wire.Error(status="error", code=code, message=error.message, data=data)
    code, text = _CODES.get(error.code, (400100 if isinstance(error, errors.Unauthenticated) else 500000, ""))
    if isinstance(error, errors.NotFound) and error.field:
        text = f"{error.field} Not Found."  # S2: "userId Not Found.", "Session Not Found."
    elif isinstance(error, errors.Conflict):
        text = error.message
    return error.status, wire.Error(status="error", code=code, message=text or "Unexpected error")


def _given(value: str | msgspec.UnsetType) -> str | None:
    return None if isinstance(value, msgspec.UnsetType) else value
