"""The ISSP dashboard's JSON, byte for byte (seed 001, "Session /api/session"), and its ``sessionCookie`` value."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

__all__ = (
    "CookieIn",
    "CookieOut",
    "CreateSession",
    "CreateSessionResponse",
    "Message",
    "SessionRow",
    "User",
    "ValidateSessionResponse",
)

UserId = Annotated[str, msgspec.Meta(max_length=128)]  # the gateway's longest principal id


class CreateSession(msgspec.Struct, kw_only=True):
    """Unknown members are ignored, as Express's body parser passes them through.

    An absent, ``null`` or empty id is "not in the body" (the vendor tests ``!userId``), told apart from a
    wrong type only by the mapping.
    """

    user_id: UserId | msgspec.UnsetType | None = msgspec.field(default=msgspec.UNSET, name="userId")  # the code
    user_id_doc: UserId | msgspec.UnsetType | None = msgspec.field(default=msgspec.UNSET, name="userID")  # the seed


class SessionRow(msgspec.Struct, kw_only=True):
    """The stored session document, as the seed's create sample shows it (key order included)."""

    user_id: str = msgspec.field(name="userId")
    session_id: str = msgspec.field(name="sessionId")
    session_expiry: str = msgspec.field(name="sessionExpiry")  # ISO-8601, UTC, milliseconds
    id: str = msgspec.field(name="_id")  # MongoDB ObjectId, 24 hex digits
    version: int = msgspec.field(name="__v")  # Mongoose's version key


class CreateSessionResponse(msgspec.Struct, kw_only=True):
    text: SessionRow  # the seed's wrapper key (the vendor's code later used "user")


class User(msgspec.Struct, kw_only=True):
    email: str
    user_id: str = msgspec.field(name="userId")
    role: str


class ValidateSessionResponse(msgspec.Struct, kw_only=True):
    message: str
    data: User  # the seed's wrapper key (the vendor's code used "user")


class Message(msgspec.Struct, kw_only=True):
    """Every failure, and deleteSession's success."""

    message: str


class CookieOut(msgspec.Struct, kw_only=True):
    """The object Express serialises into ``sessionCookie`` as ``j:`` + JSON."""

    session_id: str = msgspec.field(name="sessionId")
    expires: str
    domain: str


class CookieIn(msgspec.Struct, kw_only=True):
    """What a presented ``sessionCookie`` object may hold; members are checked by the mapping, as the vendor did."""

    session_id: Any = msgspec.field(default=None, name="sessionId")
    expires: Any = None
