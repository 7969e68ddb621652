"""ISSP wire ⇄ core: the create body, the ``sessionCookie`` value, the success bodies and the error body."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from sessiongate.dialect import (
    EPOCH,
    GatewayError,
    InvalidRequest,
    SessionExpired,
    Unauthenticated,
    Unavailable,
    encode_cookie_value,
)
from sessiongate.dialect import models as core
from sessiongate_issp import wire

__all__ = (
    "COOKIE_EXPIRED",
    "COOKIE_REQUIRED",
    "REQUEST_ERROR",
    "SESSION_DELETED",
    "SESSION_EXPIRED",
    "SESSION_ID_REQUIRED",
    "SESSION_VALID",
    "USER_ID_REQUIRED",
    "VALIDATE_ERROR",
    "cookie_in",
    "cookie_out",
    "create_in",
    "created_out",
    "error_out",
    "iso",
    "object_id",
    "user_id_in",
    "validated_out",
)

# The seed's tables, word for word.
USER_ID_REQUIRED = "Invalid request: user ID is required in the request body."
REQUEST_ERROR = "There was an error with the request."
COOKIE_REQUIRED = "Invalid request: session cookie is required."
COOKIE_EXPIRED = "Invalid request: session cookie is expired. Please create a new session."
VALIDATE_ERROR = "There was an error validating the session."
SESSION_ID_REQUIRED = "Invalid request: session ID is required."
SESSION_VALID = "Session is not expired"
SESSION_DELETED = "Session deleted."
# Not in the seed: the vendor's code answers 403 with this when the stored session has run out.
SESSION_EXPIRED = "Session is expired"
_SPECIFIC = frozenset({USER_ID_REQUIRED, COOKIE_REQUIRED, COOKIE_EXPIRED, SESSION_ID_REQUIRED})
# wire.CookieOut's JSON around its three strings, in its order, after "j:", percent-encoded: encoding goes a character
# at a time, so the cookie is these and its strings' encoded JSON, put together.
_COOKIE_OPEN, _COOKIE_EXPIRES, _COOKIE_DOMAIN, _COOKIE_CLOSE = (
    encode_cookie_value(text) for text in ('j:{"sessionId":', ',"expires":', ',"domain":', "}")
)


def user_id_in(body: wire.CreateSession) -> str:
    """The user id, from ``userId`` (the vendor's code) or else ``userID`` (the seed).

    Raises:
        InvalidRequest: neither member is there, or one that is holds ``null`` or ``""`` (the vendor's ``!userId``).
    """
    present = [v for v in (body.user_id, body.user_id_doc) if v is not msgspec.UNSET]
    if not present or not all(present):
        raise InvalidRequest(USER_ID_REQUIRED, field="userId")
    user_id = present[0]
    assert isinstance(user_id, str)
    return user_id


def create_in(principal: core.Principal, *, tenant: str, client_address: str) -> core.NewSession:
    """A new session for the user, carrying what validate shows of it (decision 13), so validate reads one row."""
    role = "Admin" if any(r.lower() == "admin" for r in principal.roles) else "User"
    return core.NewSession(
        tenant=tenant,
        dialect="issp",
        principal_id=principal.id,
        subject=principal.login,
        client_address=client_address,
        attributes={"email": principal.email or principal.login, "role": role},
    )


def created_out(session: core.Session, secret: str) -> wire.CreateSessionResponse:
    """The stored document under the seed's ``text`` key; ``sessionId`` is the cookie's bearer secret."""
    return wire.CreateSessionResponse(
        text=wire.SessionRow(
            user_id=session.principal_id or "",
            session_id=secret,
            session_expiry=iso(session.expires_at),
            id=object_id(session),
            version=session.version - 1,  # Mongoose starts at 0; the gateway's rows at 1
        )
    )


def validated_out(session: core.Session) -> wire.ValidateSessionResponse:
    """``Session is not expired`` with the user's e-mail (or login), id and role (``Admin`` or ``User``)."""
    attributes = session.attributes
    user = wire.User(
        email=str(attributes.get("email", "")),
        user_id=session.principal_id or "",
        role=str(attributes.get("role", "User")),
    )
    return wire.ValidateSessionResponse(message=SESSION_VALID, data=user)


def object_id(session: core.Session) -> str:
    """``_id``: 24 hex digits shaped like an ObjectId (creation seconds, then a digest of the public id)."""
    seconds = int(session.created_at.timestamp())
    return f"{seconds:08x}" + hashlib.sha256(session.id.encode()).hexdigest()[:16]


def iso(when: datetime) -> str:
    """JavaScript's ``toISOString()``: UTC, milliseconds, ``Z``."""
    # isoformat rather than strftime: several times faster, and validate writes one per answer; without timespec,
    # faster still. It writes six digits of fraction, cut to three here, or none when there is none.
    when = when.astimezone(UTC)
    text = when.isoformat()
    return text[:23] + "Z" if when.microsecond else text[:19] + ".000Z"


def cookie_out(secret: str, *, expires_at: datetime | None, domain: str) -> str:
    """The cookie value Express writes for the object: ``j:`` + JSON, percent-encoded.

    ``expires_at=None`` gives the deleted form: the 1970 expiry and no session id (decision 8).
    """
    if expires_at is None:
        secret, expires_at = "", EPOCH
    # Of an ISO date only the colons are encoded, and none of its characters is escaped in JSON.
    expires = iso(expires_at).replace(":", "%3A")
    return (
        f"{_COOKIE_OPEN}{_encoded_json_string(secret)}{_COOKIE_EXPIRES}%22{expires}%22"
        f"{_COOKIE_DOMAIN}{_encoded_json_string(domain)}{_COOKIE_CLOSE}"
    )


def _encoded_json_string(text: str) -> str:
    # Text that encoding leaves alone (a secret, a host name: the same length tells) holds nothing JSON escapes.
    if len(encoded := encode_cookie_value(text)) == len(text):
        return f"%22{encoded}%22"
    return encode_cookie_value(msgspec.json.encode(text).decode())


def cookie_in(raw: str | None, *, now: datetime | None) -> str:
    """The session id in a presented ``sessionCookie`` (already percent-decoded), checked in the vendor's order.

    ``now`` given: the cookie's own ``expires`` is checked too (validate does, delete does not).

    Raises:
        InvalidRequest: with the seed's sentence and its 400 (decision 7): no cookie, no readable ``sessionId`` in
            it, or an ``expires`` before ``now``.
    """
    if not raw:
        raise InvalidRequest(COOKIE_REQUIRED)
    try:
        # cookie-parser reads "j:"-prefixed values as JSON; a plain JSON object is accepted too (decision 7).
        cookie = msgspec.json.decode(raw.removeprefix("j:"), type=wire.CookieIn)
    except msgspec.MsgspecError:
        # cookie-parser leaves anything else a string, whose sessionId is undefined.
        raise InvalidRequest(SESSION_ID_REQUIRED) from None
    if not isinstance(cookie.session_id, str) or not cookie.session_id:
        raise InvalidRequest(SESSION_ID_REQUIRED)
    if now is not None and (expires := _instant(cookie.expires)) is not None and expires < now:
        raise InvalidRequest(COOKIE_EXPIRED)
    return cookie.session_id


def _instant(value: object) -> datetime | None:
    # An unreadable date compares false in JavaScript, so the vendor let it through; so does the gateway.
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def error_out(error: GatewayError, *, validating: bool) -> tuple[int, wire.Message]:
    """The status and ``{"message"}`` body of a failure (decisions 9, 10, 14 and 15).

    The seed's specific messages are kept; a session whose stored expiry has passed is the code's 403; anything
    else gets the route's catch-all sentence from the seed, with the status of what went wrong. A session id that
    names no live session gets the seed's 400, where the vendor's model failed it like a database error (500).
    """
    if isinstance(error, SessionExpired):
        return 403, wire.Message(message=SESSION_EXPIRED)
    message = error.message if error.message in _SPECIFIC else VALIDATE_ERROR if validating else REQUEST_ERROR
    if isinstance(error, Unavailable):  # the seed's own case of its 500: "unexpected database error" (decision 15)
        return 500, wire.Message(message=message)
    return 400 if isinstance(error, Unauthenticated) else error.status, wire.Message(message=message)
