"""``IsspOptions``: the dialect's settings (``SESSIONGATE_ISSP__<OPTION>``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from sessiongate.dialect import DialectOptions, SameSite

__all__ = ("IsspOptions",)


class IsspOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """issp's options."""

    lifetime: Annotated[int, msgspec.Meta(gt=0)] = 7200
    """Seconds a session lives after its creation or its last successful validate (the vendor's 2 hours)."""
    max_lifetime: Annotated[int, msgspec.Meta(gt=0)] = 43200
    """Seconds after its creation at which a session ends however often it is validated: 12 hours, ASVS V3.3.2's
    re-authentication period at level 2 (the vendor's sessions slid forever)."""
    touch_interval: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """Validates closer together than this many seconds do not slide the session again (one write at most)."""
    cookie_domain: str | None = None
    """``Domain`` attribute of ``sessionCookie`` and its ``domain`` member; default: host-only, named by the Host."""
    same_site: SameSite = "Lax"
    """``SameSite`` of ``sessionCookie``. The vendor's ``None`` (for a dashboard on another site) implies ``Secure``."""
