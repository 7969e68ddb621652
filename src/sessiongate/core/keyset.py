"""The admin API's page cursors: the id (a UUIDv7) of the last row of a page, opaque to callers."""

from __future__ import annotations

import base64
import re
import uuid

from sessiongate.core.errors import InvalidRequest

__all__ = ("decode_cursor", "encode_cursor")

_CURSOR = re.compile(r"[A-Za-z0-9_-]{22}")


def encode_cursor(last_id: uuid.UUID) -> str:
    """The opaque cursor of the page after the row with id ``last_id``."""
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> uuid.UUID:
    """The id a cursor ends after: 22 URL-safe base64 characters (a position any such value names is accepted).

    Raises:
        InvalidRequest: not a cursor of that shape.
    """
    if not _CURSOR.fullmatch(cursor):
        raise InvalidRequest("cursor is not one this API gave", field="cursor")
    return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=="))
