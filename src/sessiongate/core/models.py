"""The shared msgspec model layer: every dialect maps its wire format onto these Structs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import msgspec

__all__ = (
    "CapAction",
    "Device",
    "ExpiryPolicy",
    "FilterOp",
    "FilterValue",
    "IssuedToken",
    "NewSession",
    "Page",
    "PageRequest",
    "Principal",
    "Session",
    "SessionCap",
    "SessionFilter",
    "SessionQuery",
    "SortField",
    "SortKey",
    "TokenKind",
)

T = TypeVar("T")
TokenKind = Literal["opaque", "jwt", "refresh"]
CapAction = Literal["evict_oldest", "refuse"]


# Device, Session and Principal are untracked by the cyclic collector (gc=False): the read caches keep thousands of
# them, which its full passes scanned with the GIL held (10-60 ms stalls under a production mix). None can be part of
# a cycle: their fields are text, numbers, datetimes, tuples of text, a Device, and JSON-like attributes read from
# the database, none of which refers back to a struct.
class Device(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the session runs on, as far as the dialect says."""

    id: str | None = None
    name: str | None = None
    kind: str | None = None
    model: str | None = None
    sdk_version: str | None = None
    env: str | None = None


class ExpiryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long a dialect's sessions live.

    ``ttl`` counts from creation, or from the last use when ``sliding`` is set; ``idle`` ends a session
    that has not been used for that long; ``absolute`` caps the whole life however it slides.
    """

    ttl: float
    """Seconds a session lives from creation (or from its last use when sliding)."""
    sliding: bool = False
    """Whether each successful resolve pushes ``expires_at`` forward by ``ttl``."""
    idle: float | None = None
    """Seconds without use after which the session ends, or ``None`` for no idle limit."""
    absolute: float | None = None
    """Seconds after creation after which the session ends whatever else happened."""
    touch_interval: float = 60.0
    """Write ``last_seen_at`` (and slide) at most once per this many seconds, to spare the database."""


class SessionCap(msgspec.Struct, frozen=True, kw_only=True):
    """How many live sessions one principal may hold in one dialect and tenant, and what a create past that does.

    A session with no principal (zelf's) counts under its device id; one with neither is never capped.
    """

    most: int
    """Live sessions (not revoked, not expired, not idle too long) a principal may hold, the new one included."""
    action: CapAction = "evict_oldest"
    """``evict_oldest``: the oldest live ones (by creation) are revoked with the create, so ``most`` remain;
    ``refuse``: nothing is created (``SessionLimitReached``)."""


class Session(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A session as the gateway knows it. ``id`` is public and never a secret."""

    id: str
    tenant: str
    dialect: str
    principal_id: str | None
    subject: str | None
    client_address: str | None
    device: Device
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    absolute_expires_at: datetime | None
    revoked_at: datetime | None
    version: int
    attributes: dict[str, Any]

    def is_live(self, now: datetime) -> bool:
        """Whether the session may still be used at ``now``."""
        return self.revoked_at is None and now < self.expires_at


class NewSession(msgspec.Struct, frozen=True, kw_only=True):
    """What a dialect asks the service to create.

    ``reuse_key`` names "the same client asking again": while a live session with the same key exists,
    create returns it unchanged instead of minting another (zelf's documented behaviour).
    """

    tenant: str = "default"
    dialect: str
    principal_id: str | None = None
    subject: str | None = None
    client_address: str | None = None
    device: Device = Device()
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    reuse_key: str | None = None


class IssuedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A credential shown to the client once; only its digest is kept."""

    kind: TokenKind
    value: str
    expires_at: datetime


class Principal(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Someone (a person, a device, a service) sessions belong to.

    ``realm`` says who made it: ``gateway`` for an operator, or the dialect whose clients create their principals
    themselves (``amity``); such a dialect reaches only its own realm. ``last_used_at`` is when that dialect last
    used it (trailing by up to a day), ``None`` for an operator's.
    """

    id: str
    tenant: str
    login: str
    email: str | None = None
    display_name: str | None = None
    roles: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()
    created_at: datetime
    updated_at: datetime
    disabled: bool = False
    realm: str = "gateway"
    last_used_at: datetime | None = None


class PageRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Offset paging."""

    skip: int = 0
    take: int = 50


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    """One page of a listing; ``total`` is the count of every match, or ``None`` when not asked for."""

    items: list[T]
    total: int | None
    skip: int
    take: int


SortField = Literal[
    "id",
    "tenant",
    "dialect",
    "principal_id",
    "subject",
    "device_id",
    "device_name",
    "device_env",
    "device_kind",
    "created_at",
    "last_seen_at",
    "expires_at",
    "version",
    "principal_login",
]
"""Session fields a listing can sort and filter on. ``principal_login`` is the login of the session's principal (null
when it has none, or it is gone): the name its user goes by, whatever the session itself records as its subject."""
FilterOp = Literal["eq", "neq", "in", "like", "gt", "ge", "lt", "le"]
FilterValue = str | int | datetime
"""A filter or keyset value: ``str`` for text fields (and ``id``), ``int`` for ``version``, an aware ``datetime``
for the ``*_at`` fields."""


class SortKey(msgspec.Struct, frozen=True, kw_only=True):
    """One sort key of a listing.

    Attributes:
        field: The field to order by.
        descending: Largest first. Nulls count as the smallest value in both directions (first ascending, last
            descending), on every database.
        fallbacks: Where ``field`` is null, the first non-null of these fields instead (SQL ``COALESCE``), so one
            key can order by "the device name, else its id, else the dialect".
    """

    field: SortField
    descending: bool = False
    fallbacks: tuple[SortField, ...] = ()


class SessionFilter(msgspec.Struct, frozen=True, kw_only=True):
    """One condition of a listing; ``in`` takes several values, every other operator one.

    ``like`` matches a pattern in which ``*`` stands for any run of characters, case-insensitively. On ``id`` the
    text compared (by ``like``, and by the comparisons when a value is not a complete id) is the id as 32 lowercase
    hex digits; a complete id in either form compares as an id. ``fallbacks`` work as in :class:`SortKey`.
    """

    field: SortField
    op: FilterOp
    values: tuple[FilterValue, ...]
    fallbacks: tuple[SortField, ...] = ()


class SessionQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What to list: live sessions of a tenant, optionally of one principal, filtered, sorted and paged.

    Rows are ordered by ``sort`` (by default: oldest first, ``created_at``) and then by ``id`` in the direction of
    the last key, a total order, so pages never overlap or skip a row.

    Attributes:
        after: Keyset paging: the values of the sort keys (of the default order when ``sort`` is empty) and then
            the id of the last row already seen; the page starts after that row and ``page.skip`` counts from
            there. ``None`` pages by offset alone.
    """

    tenant: str = "default"
    principal_id: str | None = None
    filters: tuple[SessionFilter, ...] = ()
    sort: tuple[SortKey, ...] = ()
    page: PageRequest = PageRequest()
    count_only: bool = False
    with_total: bool = True
    after: tuple[FilterValue | None, ...] | None = None
