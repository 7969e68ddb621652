"""``DialectOptions``: the options every dialect has, and the type variable a dialect's own options Struct binds."""

from __future__ import annotations

import msgspec
from typing_extensions import TypeVar

from sessiongate.core.models import CapAction, SessionCap

__all__ = ("DialectOptions", "OptionsT_co")


class DialectOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Options every dialect has. Subclass to add a dialect's own (``SESSIONGATE_<NAME>__<OPTION>``)."""

    prefix: str = ""
    """Path prefix for this dialect's routes (default: the vendor's own paths, at the root)."""
    tenant: str = "default"
    """The tenant whose sessions this dialect creates and sees (amity picks tenants by API key instead)."""
    max_sessions_per_principal: int | None = None
    """Most live sessions one principal may hold in this dialect and tenant, the new one included (unset: no cap).
    Held in the create's own transaction, so concurrent logins in any number of processes never exceed it."""
    on_session_cap: CapAction = "evict_oldest"
    """What a create past ``max_sessions_per_principal`` does: ``evict_oldest`` revokes the principal's oldest live
    sessions (each an audit event by ``session-cap``) so that the cap holds with the new one; ``refuse`` creates
    nothing, and the dialect answers its refusal (its spec's decisions say how)."""

    def __post_init__(self) -> None:
        if self.prefix and (not self.prefix.startswith("/") or self.prefix.endswith("/")):
            msg = f"prefix must start with '/' and not end with one, got {self.prefix!r}"
            raise ValueError(msg)
        most = self.max_sessions_per_principal
        if most is not None and (isinstance(most, bool) or most < 1):
            msg = f"max_sessions_per_principal must be a whole number of at least 1 (unset: no cap), got {most!r}"
            raise ValueError(msg)

    def session_cap(self) -> SessionCap | None:
        """The cap these options set on a principal's live sessions, or ``None`` for none."""
        most = self.max_sessions_per_principal
        return None if most is None else SessionCap(most=most, action=self.on_session_cap)


OptionsT_co = TypeVar("OptionsT_co", bound=DialectOptions, default=DialectOptions, covariant=True)
"""A dialect's options Struct. Its default keeps a plain ``DialectPlugin`` (a handler's ``dialect`` dependency, the
registry) typed without naming a dialect's own options; covariant, so a ``DialectPlugin[ZelfOptions]`` is one wherever a
plain one is asked for (``options`` is set once, when the dialect is made)."""
