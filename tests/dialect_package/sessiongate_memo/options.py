"""memo's options (``SESSIONGATE_MEMO__<OPTION>``)."""

from __future__ import annotations

from sessiongate.dialect import DialectOptions

__all__ = ("MemoOptions",)


class MemoOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """memo's options (``SESSIONGATE_MEMO__<OPTION>``), beside those every dialect has."""

    lifetime: int = 3600
    """Seconds a session lives from its creation (it does not slide)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.lifetime, bool) or self.lifetime < 1:
            msg = f"lifetime must be a whole number of seconds, at least 1, got {self.lifetime!r}"
            raise ValueError(msg)
