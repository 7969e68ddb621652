"""One error hierarchy with stable codes; dialects give each its vendor's status and body."""

from __future__ import annotations

from typing import ClassVar

__all__ = (
    "AccountDisabled",
    "AccountLocked",
    "Conflict",
    "Forbidden",
    "GatewayError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RefreshRaced",
    "RefreshTokenReused",
    "SessionExpired",
    "SessionLimitReached",
    "SessionRevoked",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMediaType",
)


class GatewayError(Exception):
    """A failure a client can be told about.

    Attributes:
        code: Stable machine name of the failure; dialects switch on it, never on the message.
        status: The HTTP status a dialect uses unless its vendor documents another.
        message: Human text, safe to show: never contains a secret.
        field: The request member at fault, when there is one.
    """

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str = "", *, field: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.field = field
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    """The request is malformed or a member fails validation."""

    code = "invalid_request"
    status = 400


class Unauthenticated(GatewayError):
    """No credential, or one the gateway does not accept."""

    code = "unauthenticated"
    status = 401


class SessionExpired(Unauthenticated):
    """The credential names a session whose time is up."""

    code = "session_expired"


class SessionRevoked(Unauthenticated):
    """The credential names a session that was ended."""

    code = "session_revoked"


class RefreshTokenReused(SessionRevoked):
    """A rotated refresh token came back after the grace window; its session and its login's tokens were revoked."""

    code = "refresh_token_reused"


class Forbidden(GatewayError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"
    status = 403


class NotFound(GatewayError):
    """No such resource (or not one the caller may see)."""

    code = "not_found"
    status = 404


class MethodNotAllowed(GatewayError):
    """The path exists but not with this method."""

    code = "method_not_allowed"
    status = 405


class Conflict(GatewayError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409


class SessionLimitReached(Conflict):
    """A create past the principal's cap on live sessions, under a dialect set to refuse it (``on_session_cap``)."""

    code = "session_limit_reached"


class RefreshRaced(Conflict):
    """The refresh token was rotated a moment ago by another request with the same token; nothing was revoked.

    Attributes:
        session_id: The session the token belongs to (the caller proved it holds the token).
    """

    code = "refresh_raced"

    def __init__(self, message: str = "refresh token already used", *, session_id: str) -> None:
        super().__init__(message)
        self.session_id = session_id


class PayloadTooLarge(GatewayError):
    """The request body is over the configured limit."""

    code = "payload_too_large"
    status = 413


class UnsupportedMediaType(GatewayError):
    """The request body is not in a media type the route reads."""

    code = "unsupported_media_type"
    status = 415


class AccountLocked(GatewayError):
    """Too many failed logins for this principal; it is locked for a while."""

    code = "account_locked"
    status = 423


class AccountDisabled(Forbidden):
    """The principal is disabled by an operator."""

    code = "account_disabled"


class RateLimited(GatewayError):
    """Too many attempts; try again later."""

    code = "rate_limited"
    status = 429


class Unavailable(GatewayError):
    """A dependency (the database) cannot be reached."""

    code = "unavailable"
    status = 503
