"""memo's JSON, as its spec (``openapi.yaml``) writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

__all__ = ("CreateSession", "Created", "Error", "Memo")

NOTE_MAX = 500
"""The longest note, in characters (the column is ``VARCHAR(500)``)."""


class CreateSession(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /memo/sessions``."""

    subject: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    note: Annotated[str, msgspec.Meta(max_length=NOTE_MAX)] = ""


class Created(msgspec.Struct, kw_only=True, rename="camel"):
    """A new session: its id, its bearer token (shown once), its note and when it ends."""

    id: str
    token: str
    note: str
    expires_at: datetime


class Memo(msgspec.Struct, kw_only=True, rename="camel"):
    """The session a bearer token names, with its note."""

    id: str
    subject: str
    note: str
    expires_at: datetime


class Error(msgspec.Struct, kw_only=True):
    """The body of every failure: ``{"error": "<message>"}``."""

    error: str
