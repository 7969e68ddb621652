"""zelf's options (``SESSIONGATE_ZELF__<OPTION>``)."""

from __future__ import annotations

from sessiongate.dialect import DialectOptions

__all__ = ("ZelfOptions",)


class ZelfOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """zelf's options."""

    lifetime: int = 600
    """Seconds from activation to expiry (the vendor's Mongo TTL index: 600 s). Sessions do not slide."""
