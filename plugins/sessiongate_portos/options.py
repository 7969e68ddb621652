"""``PortosOptions``: the dialect's settings (``SESSIONGATE_PORTOS__<OPTION>``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from sessiongate.dialect import DialectOptions

__all__ = ("PortosOptions",)


class PortosOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """portos's options."""

    lifetime: Annotated[int, msgspec.Meta(gt=0)] = 43200
    """Seconds from login (or from the last refresh) to expiry: 12 hours, as in both samples of S1."""
    max_lifetime: Annotated[int, msgspec.Meta(gt=0)] = 7 * 86400
    """Seconds after login at which a session ends however often it is refreshed: 7 days (14 lifetimes), within
    ASVS V3.3.2's 30 days at level 1, so a device logged in for a week of shifts logs in again."""
    touch_interval: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """``lastAccessAt`` (and ``_v``) are written at most once per this many seconds of use."""
    refresh_grace: Annotated[float, msgspec.Meta(ge=0, le=300)] = 10.0
    """Seconds after a refresh during which its old refresh token gets 409 instead of revoking the session."""
