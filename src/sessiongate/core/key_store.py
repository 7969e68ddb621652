"""The storage seam of the key ring (``sessiongate.tokens.keys``); ``sessiongate.storage.key_store`` implements it.

The store keeps values as it is given them: what a value means (a key in clear, or one encrypted under the master
key), which names form the ring and when a key signs are the key ring's to decide, not the store's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

__all__ = ("KeyMaterialStore", "StoredKey")


class StoredKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key kept in the database, shared by every gateway process."""

    name: str
    value: str
    """As stored: the key in clear, or encrypted under the master key (``tokens.keys.ENCRYPTED``)."""
    activates_at: datetime | None
    """When a rotated-in key starts signing (or digesting); ``None``: from its creation."""
    retires_at: datetime | None
    """When the key stops verifying (or being tried); ``None``: not before it is retired."""


class KeyMaterialStore(Protocol):
    """What the key ring needs from a database: every call is one short transaction, and none keeps anything
    (each process reads the ring again every ``key_refresh_interval``, ARCHITECTURE rule 5)."""

    async def keys(self) -> list[StoredKey]:
        """Every key kept, in no particular order (one read)."""
        ...

    async def add(
        self,
        name: str,
        value: str,
        *,
        now: datetime,
        activates_at: datetime | None = None,
        retiring: Sequence[str] = (),
        retires_at: datetime | None = None,
    ) -> bool:
        """Keep ``value`` under ``name`` unless a key has that name already (then nothing changes); whether it was
        kept. Processes adding the same name at once agree: exactly one of them keeps its value.

        In the same transaction, when it was kept and ``retires_at`` is given, the keys named in ``retiring`` retire
        at ``retires_at``, each unless it retires sooner already: a rotation never stores its new key without the
        retirement of those it replaces, nor those without it.
        """
        ...

    async def retire(self, name: str, *, now: datetime) -> None:
        """Retire the key ``name`` at ``now``, unless it retires sooner already (or there is none)."""
        ...

    async def names(self) -> list[str]:
        """The name of every key kept, in order."""
        ...

    async def value(self, name: str) -> str:
        """The value kept under ``name``, as stored.

        Raises:
            KeyError: no key has that name.
        """
        ...

    async def replace_value(self, name: str, *, old: str, new: str, now: datetime) -> bool:
        """Store ``new`` under ``name`` if ``old`` is still what is stored (compare and set); whether it was."""
        ...
