"""The storage seam of tenants, their keys and the auth tokens of secure tenants; ``sessiongate.storage.tenant_store``
implements it.

The store keeps digests only: drawing a key, digesting it and confirming a lookup in constant time are the service's
(``sessiongate.identity.tenants``), which hands the store what to keep.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, Protocol, get_args

import msgspec

__all__ = (
    "KEY_KINDS",
    "MAX_TENANT_NAME",
    "NETWORK_REALM",
    "HeldKey",
    "KeyInfo",
    "KeyKind",
    "KeyState",
    "KeyTaken",
    "KeysAdded",
    "NewKey",
    "Tenant",
    "TenantStore",
)

MAX_TENANT_NAME = 64  # = sg_session.tenant
KeyKind = Literal["api", "server", "admin"]
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)
KeyState = Literal["live", "expired", "revoked"]
NETWORK_REALM = "amity"
"""The realm of the principals that registrations with a tenant's API key make: the only ones they reach."""


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant as the gateway knows it."""

    name: str
    secure: bool
    created_at: datetime


class KeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A key as listed: never its value, only its last characters."""

    id: str
    tenant: str
    secure: bool
    kind: KeyKind
    hint: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> KeyState:
        """``revoked`` once revoked, else ``expired`` at or past its expiry, else ``live``: as requests see it."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "live"


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key to store: its keyed digest and last characters, never its value. The store gives it an id."""

    kind: KeyKind
    digest: str
    hint: str


class HeldKey(msgspec.Struct, frozen=True, kw_only=True):
    """What the lookup of a presented key reads: the tenant holding it, and the key's own state, for the service to
    confirm (its digest, in constant time) and judge (its kind, its end)."""

    tenant: Tenant
    key_id: str
    kind: str
    digest: str
    revoked_at: datetime | None
    expires_at: datetime | None
    last_used_at: datetime | None


class KeysAdded(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`TenantStore.add_keys` did."""

    shared: int
    """The principals in the tenant outside :data:`NETWORK_REALM` (provisioned by an operator)."""
    tenant: Tenant | None = None
    """The tenant as it now is; ``None``: refused, nothing written (it holds such principals and no key yet, and
    sharing it was not asked for)."""
    keys: tuple[KeyInfo, ...] = ()
    """The keys stored, as listed, in the order given."""


class KeyTaken(Exception):
    """A key value some key already has (digests are unique): nothing of the call was written."""


class TenantStore(Protocol):
    """What the tenant service needs from a database."""

    async def add_keys(
        self,
        tenant: str,
        *,
        secure: bool,
        share_tenant: bool,
        now: datetime,
        keys: Callable[[Tenant], Sequence[NewKey]],
    ) -> KeysAdded:
        """In one transaction: count the principals of ``tenant`` outside :data:`NETWORK_REALM`, and refuse (nothing
        written) when there are some, the tenant has no key yet and not ``share_tenant``; else create the tenant if
        need be (``secure`` makes it secure, never insecure) and store the keys ``keys`` makes for it as it now is.
        An exception ``keys`` raises undoes everything and reaches the caller.

        Raises:
            KeyTaken: a key's digest is stored already; nothing is written.
        """
        ...

    async def add_key(self, tenant: str, key: NewKey, *, now: datetime) -> KeyInfo | None:
        """Store one more key of an existing tenant, as listed; ``None`` (nothing written) when there is no such
        tenant.

        Raises:
            KeyTaken: its digest is stored already.
        """
        ...

    async def has_keys(self, tenant: str) -> bool:
        """Whether ``tenant`` holds any key (live or not)."""
        ...

    async def list_keys(self) -> builtins.list[KeyInfo]:
        """Every key of every tenant, by tenant, then age (id breaks ties)."""
        ...

    async def page_keys(
        self, *, tenant: str | None, kind: str | None, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[KeyInfo], bool]:
        """Up to ``limit`` keys (of ``tenant``, of ``kind`` when given), newest first, with ids below ``after``
        (keyset), and whether more follow."""
        ...

    async def key(self, key_id: uuid.UUID) -> KeyInfo | None:
        """One key, as listed, or ``None``."""
        ...

    async def revoke_key(self, key_id: uuid.UUID, *, now: datetime) -> bool:
        """Mark a key revoked at ``now`` unless it is already; whether this call did."""
        ...

    async def expire_key(self, key_id: uuid.UUID, *, at: datetime, now: datetime) -> bool:
        """Set a key's expiry to ``at`` (whatever it was); whether there is such a key."""
        ...

    async def key_holder(self, digest: str) -> HeldKey | None:
        """The key stored under ``digest`` and its tenant: one indexed read."""
        ...

    async def replace_key_digest(self, old: str, new: str) -> None:
        """Store a key under another digest (of the same value, under another digest key), where it is still
        ``old``."""
        ...

    async def note_key_use(self, key_id: str, *, now: datetime) -> None:
        """Record a key's last use."""
        ...

    async def add_auth_token(
        self, *, tenant: str, principal_id: str, digest: str, now: datetime, expires_at: datetime
    ) -> None:
        """Store an unused auth token of ``principal_id`` in ``tenant``, usable until ``expires_at``."""
        ...

    async def delete_expired_auth_tokens(self, *, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` auth tokens expired at ``now``; how many went."""
        ...

    async def consume_auth_token(self, digest: str, *, tenant: str, principal_id: str, now: datetime) -> bool:
        """Mark the auth token stored under ``digest`` used, if it is ``tenant``'s and ``principal_id``'s, unused and
        unexpired at ``now``: one conditional write, so of callers racing with one token exactly one gets ``True``."""
        ...
