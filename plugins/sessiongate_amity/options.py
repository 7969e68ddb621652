"""``AmityOptions``: the dialect's settings (``SESSIONGATE_AMITY__<OPTION>``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from sessiongate.dialect import DialectOptions

__all__ = ("AmityOptions",)


class AmityOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """amity's options. Tenants come from API keys, so the inherited ``tenant`` option is not used."""

    lifetime: Annotated[int, msgspec.Meta(gt=0)] = 30 * 86400
    """Seconds from registration to expiry of an access token: 30 days (S2, S6). Tokens do not slide."""
    renewal_grace: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0
    """Seconds a renewed token (or the same user's previous token on the device) keeps working, so requests the
    client already has in flight with it still succeed."""
    last_cache_purge: Annotated[datetime, msgspec.Meta(tz=True)] = datetime(1970, 1, 1, tzinfo=UTC)
    """``lastCachePurge`` as sent to clients; move it forward to make the SDKs drop what they cached before."""
    touch_interval: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """A token's use is recorded (``last_seen_at``) at most once per this many seconds."""
