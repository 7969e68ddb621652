"""The identity layer's storage seam: principals with their credentials (password hashes, auth tokens), and the
login-failure counters of the throttle. ``sessiongate.storage`` implements it (``principal_store``,
``throttle_store``); the identity service and the throttle depend only on what is here.

Each method is one statement or one short transaction, the one the identity layer ran itself before the seam, so the
login path costs what it did (ARCHITECTURE rule 5). A database's refusal that means "taken" (a unique login or id) is
answered as a result, never as the driver's exception; an outage still raises what the driver raised, which
``storage.outage`` tells apart from a fault.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal, Protocol

import msgspec

from sessiongate.core.models import Principal

__all__ = (
    "GATEWAY_REALM",
    "MAX_DISPLAY_NAME",
    "MAX_EMAIL",
    "MAX_LOGIN",
    "MAX_PUBLIC_ID",
    "MAX_REALM",
    "MAX_TENANT",
    "Charge",
    "KeyKind",
    "Locked",
    "PrincipalDraft",
    "PrincipalStore",
    "StoredPrincipal",
    "ThrottleKey",
    "ThrottlePolicy",
    "ThrottleStore",
    "TokenHolder",
    "Upserted",
)

MAX_TENANT = 64
MAX_PUBLIC_ID = 128  # = sg_session.principal_id, which holds it
MAX_LOGIN = 256
MAX_EMAIL = 320
MAX_DISPLAY_NAME = 256
MAX_REALM = 16
GATEWAY_REALM = "gateway"
"""The realm of principals an operator provisions (``users add``, the start-up admin): the ones dialects log in by
password, auth token or id. A dialect whose clients create principals themselves (amity's registrations) keeps its
own in a realm named after it, which nothing else reaches."""

KeyKind = Literal["login", "address"]


# -- principals and their credentials -----------------------------------------------------------------------------


class PrincipalDraft(msgspec.Struct, frozen=True, kw_only=True):
    """A principal to store, its members checked by the service; the store draws the row's own id."""

    tenant: str
    public_id: str
    login: str
    email: str | None
    display_name: str | None
    roles: list[str]
    permissions: list[str]
    password_hash: str | None
    realm: str
    last_used_at: datetime | None
    created_at: datetime
    """Also its ``updated_at``; a new principal is never disabled."""


class StoredPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """A principal as stored, with what only the identity layer and the admin API see."""

    principal: Principal
    row_id: uuid.UUID
    """The row's own id (a UUIDv7, never shown): the admin listing's order and cursor, a rehash's target."""
    password_hash: str | None
    """Its argon2id hash; ``None`` for a principal that cannot log in by password."""


class TokenHolder(msgspec.Struct, frozen=True, kw_only=True):
    """The principal an auth token belongs to, and the token as stored."""

    principal: Principal
    token_id: uuid.UUID
    digest: str
    """The stored digest, for a constant-time compare with the presented one."""
    last_used_at: datetime | None
    """The token's last recorded use (not the principal's)."""


class Upserted(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`PrincipalStore.upsert` did."""

    outcome: Literal["created", "updated", "other_realm", "login_taken"]
    """``other_realm``: the public id belongs to a principal of another realm, left as it was; ``login_taken``: a new
    principal's login belongs to another principal of the tenant; nothing was stored either way."""
    principal: Principal | None = None
    """``created``, ``updated``: the principal as it now is."""


class PrincipalStore(Protocol):
    """What the identity service (and the admin API, through it) needs from a database about principals.

    Principals are named by tenant and login, or by tenant and public id; both are unique in a tenant across realms.
    Every method is one statement, or one short transaction where it says so.
    """

    async def insert(self, draft: PrincipalDraft) -> Principal | None:
        """Store a new principal; ``None``, storing nothing, when its login or its public id is taken in its tenant."""
        ...

    async def insert_if_absent(self, draft: PrincipalDraft) -> Principal | None:
        """Store a new principal unless its login or id is taken in its tenant (then ``None``), by one statement, so
        callers racing in any number of processes store it once."""
        ...

    async def upsert(self, draft: PrincipalDraft) -> Upserted:
        """Store the principal of ``draft.public_id``, or, when one of ``draft.realm`` holds that id already, set its
        display name (unless ``draft.display_name`` is ``None``), ``updated_at`` and ``last_used_at`` to the draft's;
        its login never changes. One statement."""
        ...

    async def get(self, *, tenant: str, public_id: str, realm: str | None = None) -> Principal | None:
        """The principal with this public id (in ``realm``, when given)."""
        ...

    async def by_login(self, *, tenant: str, login: str) -> Principal | None:
        """The principal with this login."""
        ...

    async def logins(self, *, tenant: str, public_ids: Sequence[str]) -> dict[str, str]:
        """The logins of those of ``public_ids`` that exist in ``tenant``, by public id (one read)."""
        ...

    async def list_all(self, *, tenant: str | None = None) -> list[Principal]:
        """Every principal (of one tenant, when given), by tenant and login."""
        ...

    async def credentials(self, *, tenant: str, login: str) -> StoredPrincipal | None:
        """The principal with this login and its password hash: the one read of a password login."""
        ...

    async def stored(self, *, tenant: str, public_id: str) -> StoredPrincipal | None:
        """The principal with this public id as stored."""
        ...

    async def page(
        self, *, tenant: str | None, realm: str | None, before: uuid.UUID | None, limit: int
    ) -> list[StoredPrincipal]:
        """Up to ``limit`` principals (of ``tenant`` and ``realm``, when given), newest first by row id; with
        ``before``, only those whose row id is lower (the page after the row with that id)."""
        ...

    async def record_use(self, *, tenant: str, public_id: str, realm: str, now: datetime) -> None:
        """Set the ``last_used_at`` of the principal of ``realm`` with this public id to ``now`` (its ``updated_at`` is
        the table's own stamp of the change)."""
        ...

    async def delete_unused(self, *, realm: str, idle: timedelta, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` principals of ``realm``, least recently used first, that are not disabled, were last
        used more than ``idle`` before ``now`` and hold no live session in any dialect; how many went."""
        ...

    async def set_password_hash(self, *, tenant: str, login: str, password_hash: str, now: datetime) -> str | None:
        """Store a principal's new password hash; its public id, or ``None`` when there is no such login."""
        ...

    async def replace_password_hash(self, row_id: uuid.UUID, *, stored: str, fresh: str) -> None:
        """Store ``fresh`` as the principal's hash only if it is still ``stored`` (an upgrade of the same password
        never overwrites a new password set meanwhile)."""
        ...

    async def set_disabled(self, *, tenant: str, login: str, disabled: bool, now: datetime) -> str | None:
        """Disable or enable a principal; its public id, or ``None`` when there is no such login."""
        ...

    async def delete(self, *, tenant: str, login: str) -> str | None:
        """Delete a principal and its auth tokens; its public id, or ``None`` when there was no such login."""
        ...

    async def add_auth_token(self, *, tenant: str, login: str, digest: str, now: datetime, replace: bool) -> bool:
        """Store a new auth token's digest for the principal with this login, in one transaction with, when
        ``replace``, the deletion of its other tokens; ``False``, storing nothing, when there is no such login."""
        ...

    async def revoke_auth_tokens(self, *, tenant: str, login: str) -> int | None:
        """Delete every auth token of a principal; how many, or ``None`` when there is no such login."""
        ...

    async def token_holder(self, *, tenant: str, digest: str) -> TokenHolder | None:
        """The auth token stored under ``digest`` whose principal is of ``tenant``, with that principal."""
        ...

    async def replace_token_digest(self, old: str, new: str) -> None:
        """Store a token under another digest (of the same token, under another key), if still under ``old``."""
        ...

    async def touch_token(self, token_id: uuid.UUID, *, now: datetime) -> None:
        """Record a use of the token: its ``last_used_at`` (and ``updated_at``) is ``now``."""
        ...


# -- login throttling ---------------------------------------------------------------------------------------------


class ThrottlePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How many failed logins are allowed before further attempts are refused for a while.

    Failures count within a window that starts at the first failure; reaching a maximum locks that key for
    ``lock_seconds``. After the lock (or the window) ends, counting starts again from zero.
    """

    max_principal_failures: int = 5
    """Failed logins of one login (of a tenant) before it is locked (:class:`AccountLocked`)."""
    max_address_failures: int = 20
    """Failed logins from one client address before it is refused (:class:`RateLimited`)."""
    window_seconds: float = 900.0
    """How long failures are remembered, from the first one."""
    lock_seconds: float = 900.0
    """How long a login or an address stays refused once it reached its maximum."""

    def limit(self, kind: KeyKind) -> int:
        """The failures a key of ``kind`` may count before it is locked."""
        return self.max_principal_failures if kind == "login" else self.max_address_failures


class ThrottleKey(msgspec.Struct, frozen=True):
    """One thing failures are counted for: its kind and its stored (digested) key."""

    kind: KeyKind
    key: str


class Charge(msgspec.Struct, frozen=True):
    """A key's state right after a charge: its count, the charge included, and the end of its lock, if any."""

    count: int
    locked_until: datetime | None


class Locked(msgspec.Struct, frozen=True):
    """A key of ``kind`` locked until ``until``."""

    kind: KeyKind
    until: datetime


class ThrottleStore(Protocol):
    """Login-failure counters shared by every process, by key, counted by the database under a
    :class:`ThrottlePolicy` the store is built with. Every count is computed by the database from the stored one
    (never read first), so concurrent charges and failures in any number of processes all count."""

    async def locked(self, keys: Sequence[ThrottleKey], *, now: datetime) -> list[Locked]:
        """The locks in force at ``now`` on any of ``keys`` (one read)."""
        ...

    async def charge(self, key: ThrottleKey, *, now: datetime) -> Charge:
        """Count one attempt under ``key`` and answer the new count (one statement). A window that is over, or a
        lock that has ended, starts the count afresh; the charge that reaches the limit locks the key for the
        policy's ``lock_seconds``; a charge while locked counts above the limit and leaves the lock as it is."""
        ...

    async def refund(self, key: ThrottleKey, *, now: datetime) -> None:
        """Take back one charge under ``key`` (never below zero), and the lock it no longer reaches."""
        ...

    async def clear_and_refund(self, clear: ThrottleKey, refund: ThrottleKey, *, now: datetime) -> None:
        """Forget ``clear`` and :meth:`refund` ``refund``, in one transaction."""
        ...

    async def fail(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        """Count one failure under each key, in one statement; one that reaches its limit locks its key."""
        ...

    async def clear(self, key: ThrottleKey) -> None:
        """Forget the failures under ``key``."""
        ...

    async def sweep(self, *, now: datetime, batch: int) -> int:
        """Delete up to ``batch`` keys whose window and lock are both over at ``now``; how many went."""
        ...
