"""Text that every supported database stores alike.

PostgreSQL's ``text`` cannot hold NUL (U+0000) and refuses the whole statement; SQLite stores it. So that a request
gets the same answer on both, text holding NUL never reaches either: a lookup by such text finds nothing (nothing
stored can hold it), and a row that would hold it is refused as the client's mistake. Unpaired surrogates never get
this far: the JSON decoder refuses them, and percent-decoding replaces undecodable bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from sessiongate.core.errors import InvalidRequest

__all__ = ("NUL", "NUL_REFUSED", "holds_nul", "refuse_nul")

_ATOMS = (int, float, datetime, uuid.UUID)  # bool is an int
NUL = "\x00"
NUL_REFUSED = "text must not contain NUL characters"


def holds_nul(value: object) -> bool:
    """Whether ``value`` is text holding NUL, or a JSON-like value (keys included) with such text in it."""
    if isinstance(value, str):
        return NUL in value
    if value is None or isinstance(value, _ATOMS):  # most of a row: no need to ask Mapping's ABC about them
        return False
    if isinstance(value, Mapping):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_nul(item) for item in value)
    return False


def refuse_nul(values: Mapping[str, object]) -> None:
    """Refuse a row whose text holds NUL.

    Raises:
        InvalidRequest: a value (or text inside a JSON value) holds NUL.
    """
    if any(holds_nul(value) for value in values.values()):
        raise InvalidRequest(NUL_REFUSED)
