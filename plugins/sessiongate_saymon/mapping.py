"""SAYMON wire ⇄ core, and restify's error body."""

from __future__ import annotations

import hashlib
import re

import msgspec

from sessiongate.dialect import GatewayError, InvalidRequest, SessionExpired, SessionRevoked, Unauthenticated
from sessiongate.dialect import models as core
from sessiongate_saymon import wire

__all__ = (
    "INVALID_CREDENTIALS",
    "INVALID_TOKEN",
    "NOT_LOGGED_IN",
    "SESSION_EXPIRED",
    "create_in",
    "credentials_in",
    "error_out",
    "error_status",
    "user_out",
)

# S7, "401 Unauthorized": the four documented reasons, each the inner message of an errorCode-3 document.
NOT_LOGGED_IN = "Not logged in."
SESSION_EXPIRED = "Session expired."
INVALID_CREDENTIALS = "Invalid login or password."
INVALID_TOKEN = "Invalid API token."  # noqa: S105 - a message, not a secret
_AUTH_MESSAGES = frozenset({NOT_LOGGED_IN, SESSION_EXPIRED, INVALID_CREDENTIALS, INVALID_TOKEN})
BOTH_SHAPES = 'Send either "login" and "password" or "auth-token", not both.'
INVALID_JSON = "Invalid JSON: the request body is not a valid JSON document."

# restify-errors codes, which the vendor's S7 samples use (BadRequest, InvalidContent, Unauthorized, ...).
_CODES = {
    "invalid_request": "BadRequest",
    "forbidden": "Forbidden",
    "cross_site_request": "Forbidden",
    "account_disabled": "Forbidden",
    "not_found": "ResourceNotFound",
    "method_not_allowed": "MethodNotAllowed",
    "conflict": "Conflict",
    "session_limit_reached": "Conflict",
    "payload_too_large": "PayloadTooLarge",
    "unsupported_media_type": "UnsupportedMediaType",
    # SAYMON documents no throttling: restify-errors' codes for 423 and 429 (decision 11).
    "account_locked": "Locked",
    "rate_limited": "TooManyRequests",
    "unavailable": "ServiceUnavailable",
}
# Fixed wording for failures whose core message is not in SAYMON's style (or could name too much).
_MESSAGES = {
    "account_disabled": "Account is disabled.",
    "cross_site_request": "Cross-site request refused.",
    "not_found": "Resource not found.",
    "method_not_allowed": "Method not allowed.",
    "payload_too_large": "Request body is too large.",
    "unsupported_media_type": "Content-Type must be application/json or application/x-www-form-urlencoded.",
    "account_locked": "Account locked after too many failed logins. Try again later.",
    "rate_limited": "Too many failed logins. Try again later.",
    "session_limit_reached": "Too many sessions for this user. Log out of another session first.",
    "unavailable": "Service unavailable.",
    "internal": "Internal error.",
}
_OBJECT_ID = re.compile(r"[0-9a-f]{24}")
ACTIVE = 2  # S5's sample value for a working account; the vendor documents no other


def credentials_in(body: wire.CreateSession) -> tuple[str, str] | str:
    """``(login, password)`` or the auth token: exactly one of the spec's two ``oneOf`` shapes (decision D2).

    Raises:
        InvalidRequest: a member is present but empty, neither shape is complete, or both are.
    """
    for name, value in (("login", body.login), ("password", body.password), ("auth-token", body.auth_token)):
        if value == "":
            raise InvalidRequest(_mandatory(name), field=name)
    pair = (body.login, body.password)
    token = body.auth_token
    if isinstance(pair[0], str) and isinstance(pair[1], str):
        if isinstance(token, str):
            raise InvalidRequest(BOTH_SHAPES)
        return pair[0], pair[1]
    if isinstance(token, str):
        return token
    missing = "password" if isinstance(pair[0], str) else "login"
    raise InvalidRequest(_mandatory(missing), field=missing)


def _mandatory(name: str) -> str:
    # S7's own wording for a missing mandatory parameter.
    return f'Mandatory "{name}" parameter is absent/empty.'


def create_in(principal: core.Principal, *, tenant: str, client_address: str, scheme: str) -> core.NewSession:
    """A new session per login: SAYMON never hands an existing session id out again."""
    return core.NewSession(
        tenant=tenant,
        dialect="saymon",
        principal_id=principal.id,
        subject=principal.login,
        client_address=client_address,
        attributes={"auth": scheme},
    )


def user_out(principal: core.Principal) -> wire.User:
    """S5's ``User``; the gateway keeps no group, event filters or contacts, and never shows a token."""
    return wire.User(
        id=object_id(principal.id),
        login=principal.login,
        group=None,
        authentication_token=None,
        status=ACTIVE,
        event_filter=[],
        permissions=list(principal.permissions),
        contacts=[],
    )


def object_id(principal_id: str) -> str:
    """The principal's id as 24 hex digits: kept when it already is one, else a stable digest of it."""
    if _OBJECT_ID.fullmatch(principal_id):
        return principal_id
    return hashlib.sha256(principal_id.encode()).hexdigest()[:24]


def error_out(error: GatewayError) -> wire.Error:
    """``{"code", "message"}``; authentication failures carry S7's ``{"errorCode":3,"message":...}`` string."""
    if isinstance(error, Unauthenticated):
        inner = msgspec.json.encode({"errorCode": 3, "message": (reason := _reason(error))}).decode()
        return wire.Error(code="InvalidCredentials" if reason == INVALID_CREDENTIALS else "Unauthorized", message=inner)
    if isinstance(error, InvalidRequest) and error.message == "invalid JSON body" and error.field is None:
        return wire.Error(code="InvalidContent", message=INVALID_JSON)
    return wire.Error(code=_CODES.get(error.code, "InternalServer"), message=_MESSAGES.get(error.code, error.message))


def error_status(error: GatewayError) -> int:
    """The error's status: a locked account gets 423 and a refused address 429, as the core has them (decision 11)."""
    return error.status


def _reason(error: GatewayError) -> str:
    if error.message in _AUTH_MESSAGES:
        return error.message
    return SESSION_EXPIRED if isinstance(error, SessionExpired | SessionRevoked) else NOT_LOGGED_IN
