"""SAYMON's JSON, byte for byte (seed 003 "Create Session ID", and the S2 to S7 pages named in the spec)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ("CreateSession", "Error", "User")


class CreateSession(msgspec.Struct, kw_only=True):
    """Either ``login`` and ``password`` or ``auth-token``; unknown members are ignored (a Node server's habit).

    Absent and empty members are told apart from wrong types only by the mapping, which words both as
    SAYMON does ("Mandatory ... parameter is absent/empty.").
    """

    login: str | msgspec.UnsetType = msgspec.UNSET
    password: str | msgspec.UnsetType = msgspec.UNSET
    auth_token: str | msgspec.UnsetType = msgspec.field(default=msgspec.UNSET, name="auth-token")  # S1, S6


class User(msgspec.Struct, kw_only=True):
    """The ``User`` model as S5's sample shows it, in the sample's member order."""

    id: str  # 24 hex digits, a MongoDB ObjectId in the vendor's product
    login: str
    group: str | None
    authentication_token: str | None = msgspec.field(name="authenticationToken")
    status: int
    event_filter: list[dict[str, Any]] = msgspec.field(name="eventFilter")  # EventFilter objects
    permissions: list[str]
    contacts: list[Any]


class Error(msgspec.Struct, kw_only=True):
    """restify's error body (S7); for authentication failures ``message`` is itself a JSON document."""

    code: str
    message: str
