"""saymon's options (``SESSIONGATE_SAYMON__<OPTION>``)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from sessiongate.dialect import DialectOptions

__all__ = ("SaymonOptions",)


class SaymonOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """saymon's options. SAYMON publishes no session lifetime, so both are gateway choices (decision D4)."""

    idle_timeout: Annotated[int, msgspec.Meta(gt=0)] = 86400
    """Seconds a session lives without use; every authenticated use starts the count again."""
    max_lifetime: Annotated[int, msgspec.Meta(gt=0)] = 7 * 86400
    """Seconds after login at which a session ends however often it is used, and when the ``sid`` cookie expires:
    7 days, within ASVS V3.3.2's 30 days at level 1 (an idle timeout of a day is already past level 2's)."""
