"""Tenants ("networks") chosen by API key, their server keys and admin tokens, and the short-lived auth tokens of
secure tenants.

Keys and auth tokens are secrets: they are drawn from ``secrets``, shown once, and kept only as keyed digests
(:class:`~sessiongate.tokens.opaque.Digester`); a lookup goes by digest and is confirmed in constant time. An auth
token is single use: the one conditional ``UPDATE`` that consumes it succeeds for exactly one caller.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from sessiongate import meters
from sessiongate.core.errors import Conflict, InvalidRequest, NotFound
from sessiongate.core.models import IssuedToken
from sessiongate.storage.identity_tables import principals
from sessiongate.storage.runner import AsyncEngineRunner, StatementRunner
from sessiongate.tokens.opaque import Digester

__all__ = (
    "AUTH_TOKEN_TTL",
    "KEY_KINDS",
    "MAX_TENANT_NAME",
    "NETWORK_REALM",
    "AddedAdminToken",
    "AddedKeys",
    "KeyInfo",
    "KeyKind",
    "KeyState",
    "Tenant",
    "TenantAuthTokenRecord",
    "TenantKeyRecord",
    "TenantRecord",
    "TenantService",
)

MAX_TENANT_NAME = 64  # = sg_session.tenant
AUTH_TOKEN_TTL = 600.0
"""Seconds an auth token can be exchanged for a session (Amity: 10 minutes)."""
_SWEEP_BATCH = 100
LAST_USE_EVERY = timedelta(seconds=60)
"""A key's ``last_used_at`` is written at most this often: a listing's figure, never worth a write per request."""
KeyKind = Literal["api", "server", "admin"]
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)
KeyState = Literal["live", "expired", "revoked"]
NETWORK_REALM = "amity"
"""The realm of the principals that registrations with a tenant's API key make: the only ones they reach."""
_KEY_LENGTHS = (16, 150)  # what an imported key may measure


class TenantRecord(UUIDv7AuditBase):
    """A tenant. ``secure`` tenants accept a session only with an auth token minted with a server key."""

    __tablename__ = "sg_tenant"

    name: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), unique=True)
    secure: Mapped[bool] = mapped_column(Boolean, default=False)


class TenantKeyRecord(UUIDv7AuditBase):
    """An API key (public, in client apps), a server key or an admin token (secrets, on the tenant's backend)."""

    __tablename__ = "sg_tenant_key"
    __table_args__ = (Index("ix_sg_tenant_key_tenant", "tenant"),)

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), ForeignKey("sg_tenant.name", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(8))
    # Migration 0012: a key ends when revoked or at its expiry; its last use trails by at most LAST_USE_EVERY.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class TenantAuthTokenRecord(UUIDv7AuditBase):
    """An auth token a secure tenant's backend minted for one principal; usable once, until ``expires_at``."""

    __tablename__ = "sg_tenant_auth_token"
    __table_args__ = (Index("ix_sg_tenant_auth_token_expires", "expires_at"),)

    tenant: Mapped[str] = mapped_column(String(MAX_TENANT_NAME), ForeignKey("sg_tenant.name", ondelete="CASCADE"))
    principal_id: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


PRINCIPALS = principals
TENANTS = cast("Table", TenantRecord.__table__)
KEYS = cast("Table", TenantKeyRecord.__table__)
AUTH_TOKENS = cast("Table", TenantAuthTokenRecord.__table__)


class Tenant(msgspec.Struct, frozen=True, kw_only=True):
    """A tenant as the gateway knows it."""

    name: str
    secure: bool
    created_at: datetime


class AddedKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Keys just created: the only time their values are known. ``server_key`` only for secure tenants; ``shared``
    counts the principals an operator provisioned in the tenant, which the network shares it with."""

    tenant: Tenant
    api_key: str
    server_key: str | None
    shared: int = 0
    keys: tuple[KeyInfo, ...] = ()
    """The keys as listed (ids, last characters), API key first."""


class AddedAdminToken(msgspec.Struct, frozen=True, kw_only=True):
    """An admin token just created: its value, known only now, and the key as listed."""

    value: str
    key: KeyInfo


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


class TenantService:
    """Create tenants and keys, find the tenant of a key, mint and consume auth tokens.

    Args:
        engine: The gateway's engine (administration runs one transaction on it).
        digester: Keys the digests of keys and tokens (the gateway's, so every process agrees).
        clock: "Now".
        runner: Where the request-path statements run; the engine when not given.

    A key is read from the database on every request that presents it (one indexed read), never remembered by a
    process: a key revoked or expired by any process, the CLI or the admin API is refused on the very next request in
    every process.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        digester: Digester,
        clock: Callable[[], datetime],
        runner: StatementRunner | None = None,
    ) -> None:
        self.engine = engine
        self.digester = digester
        self.clock = clock
        self.runner = runner or AsyncEngineRunner(engine)

    async def add_keys(
        self,
        tenant: str,
        *,
        secure: bool = False,
        api_key: str | None = None,
        server_key: str | None = None,
        share_tenant: bool = False,
    ) -> AddedKeys:
        """Create an API key for ``tenant`` (creating the tenant if need be), and a server key when it is secure.

        ``secure`` makes the tenant secure (it never makes one insecure). Given key values are imported instead of
        drawn, so clients already carrying a vendor's key keep working; all of it is one transaction.

        A tenant holding principals an operator provisioned (the ones other dialects log in) is refused a first key
        unless ``share_tenant``: registrations would never reach them, but their ids and logins would be closed to
        the network's users, and listings would show both side by side. Once it has a key it is a network, shared
        knowingly, and takes more.

        Raises:
            InvalidRequest: a bad tenant name or key value, or a server key for a tenant that is not secure.
            Conflict: the tenant holds provisioned principals and has no key yet, and ``share_tenant`` is not set.
        """
        _check_tenant_name(tenant)
        for name, value in (("api_key", api_key), ("server_key", server_key)):
            _check_imported(name, value)
        if api_key is not None and api_key == server_key:
            raise InvalidRequest("server_key must differ from api_key", field="server_key")
        now = self.clock()
        insert_fn = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        async with self.engine.begin() as conn:
            provisioned = select(func.count()).where(PRINCIPALS.c.tenant == tenant, PRINCIPALS.c.realm != NETWORK_REALM)
            shared = int((await conn.execute(provisioned)).scalar_one())
            has_keys = (await conn.execute(select(KEYS.c.id).where(KEYS.c.tenant == tenant).limit(1))).first()
            if shared and has_keys is None and not share_tenant:
                raise Conflict(
                    f"tenant {tenant!r} holds {_principals(shared)} provisioned with `users add`: an amity network "
                    "there would share their namespace (registrations never reach them, but can use none of their "
                    "ids or logins, and admins' listings show both). Give the network a tenant of its own, or pass "
                    "--share-tenant to share this one knowingly",
                    field="tenant",
                )
            await conn.execute(
                insert_fn(TENANTS)
                .values(id=uuid7(), name=tenant, secure=secure, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            if secure:
                await conn.execute(update(TENANTS).where(TENANTS.c.name == tenant).values(secure=True, updated_at=now))
            row = (await conn.execute(select(TENANTS).where(TENANTS.c.name == tenant))).one()
            record = Tenant(name=row.name, secure=row.secure, created_at=row.created_at)
            if server_key is not None and not record.secure:
                raise InvalidRequest("a server key is only for a secure tenant", field="server_key")
            api = api_key or secrets.token_hex(24)
            server = (server_key or new_key()) if record.secure else None
            rows: list[tuple[KeyKind, str]] = [("api", api)]
            if server is not None:
                rows.append(("server", server))
            made = [self._key_row(tenant, kind, value, now) for kind, value in rows]
            await _insert_keys(conn, made, "api_key" if api_key is not None else "server_key")
        keys = tuple(_made_info(row, secure=record.secure) for row in made)
        return AddedKeys(tenant=record, api_key=api, server_key=server, shared=shared, keys=keys)

    async def is_network(self, tenant: str) -> bool:
        """Whether ``tenant`` holds an API key, so that registrations make principals of their own in it."""
        return bool(await self.runner.read(select(KEYS.c.id).where(KEYS.c.tenant == tenant).limit(1)))

    async def add_admin_token(self, tenant: str, *, token: str | None = None) -> AddedAdminToken:
        """A new admin token for an existing tenant (what Amity's console issues as a network's admin token).

        It lets the tenant's own backend revoke any of its users' sessions; like a server key it is a secret, shown
        once and kept as a keyed digest. A given ``token`` is imported instead of drawn, so backends already
        carrying the vendor's admin token keep working.

        Raises:
            InvalidRequest: no such tenant, or a given token of a bad length.
        """
        _check_tenant_name(tenant)
        _check_imported("admin_token", token)
        value = token or new_key()
        now = self.clock()
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(TENANTS.c.secure).where(TENANTS.c.name == tenant))).first()
            if found is None:
                raise InvalidRequest(f"no network {tenant!r}: create it with `keys add --tenant` first", field="tenant")
            row = self._key_row(tenant, "admin", value, now)
            await _insert_keys(conn, [row], "admin_token")
        return AddedAdminToken(value=value, key=_made_info(row, secure=bool(found.secure)))

    async def list_keys(self) -> list[KeyInfo]:
        """Every key of every tenant, by tenant and age."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_KEY_INFO.order_by(KEYS.c.tenant, KEYS.c.created_at, KEYS.c.id))).all()
        return [_key_info(r) for r in rows]

    async def page_keys(
        self, *, tenant: str | None = None, kind: str | None = None, limit: int, after: uuid.UUID | None = None
    ) -> tuple[list[KeyInfo], bool]:
        """Up to ``limit`` keys, newest first, after the key with id ``after`` (keyset: stable while keys come and
        go), and whether more follow."""
        stmt = _KEY_INFO.order_by(KEYS.c.id.desc()).limit(limit + 1)
        if tenant is not None:
            stmt = stmt.where(KEYS.c.tenant == tenant)
        if kind is not None:
            stmt = stmt.where(KEYS.c.kind == kind)
        if after is not None:
            stmt = stmt.where(KEYS.c.id < after)
        rows = await self.runner.read(stmt)
        return [_key_info(r) for r in rows[:limit]], len(rows) > limit

    async def revoke_key(self, key_id: str) -> tuple[KeyInfo, bool]:
        """End a key now, and whether this call ended it (again: nothing changes). Every process refuses it from the
        next request on.

        Raises:
            NotFound: no key has that id.
        """
        now = self.clock()
        changed = await self._end(key_id, KEYS.c.revoked_at.is_(None), revoked_at=now, updated_at=now)
        return await self.key(key_id), changed

    async def expire_key(self, key_id: str, at: datetime | None = None) -> KeyInfo:
        """Make a key expire at ``at`` (now when not given; a later time sets a deadline, which may be moved).

        Raises:
            NotFound: no key has that id.
        """
        now = self.clock()
        await self._end(key_id, true(), expires_at=at or now, updated_at=now)
        return await self.key(key_id)

    async def _end(self, key_id: str, condition: ColumnElement[bool], **values: datetime) -> bool:
        row_id = _key_id(key_id)
        result = await self.runner.write(update(KEYS).where(KEYS.c.id == row_id, condition).values(**values))
        return result.rowcount == 1

    async def key(self, key_id: str) -> KeyInfo:
        """One key, as listed.

        Raises:
            NotFound: no key has that id.
        """
        rows = await self.runner.read(_KEY_INFO.where(KEYS.c.id == _key_id(key_id)))
        if not rows:
            raise NotFound("no such key", field="key_id")
        return _key_info(rows[0])

    async def by_key(self, key: str, kind: KeyKind) -> Tenant | None:
        """The tenant holding ``key`` of ``kind``, or ``None``: one indexed read (or a recent answer), confirmed in
        constant time. The request being served is noted as that tenant's (its access log line names it)."""
        tenant = await self._by_key(key, kind)
        if tenant is not None:
            meters.note_tenant(tenant.name)
        return tenant

    async def _by_key(self, key: str, kind: KeyKind) -> Tenant | None:
        if not key or len(key) > 256:
            return None
        stmt = (
            select(
                TENANTS.c.name,
                TENANTS.c.secure,
                TENANTS.c.created_at,
                KEYS.c.id,
                KEYS.c.digest,
                KEYS.c.kind,
                KEYS.c.revoked_at,
                KEYS.c.expires_at,
                KEYS.c.last_used_at,
            )
            .join(TENANTS, TENANTS.c.name == KEYS.c.tenant)
            .where(KEYS.c.digest == bindparam("presented"))
        )
        rows = await self.digester.find(
            key,
            lambda candidate: self.runner.read(stmt, {"presented": candidate}),
            lambda old, new: self.runner.write(update(KEYS).where(KEYS.c.digest == old).values(digest=new)),
        )
        if not rows or not self.digester.matches(key, rows[0].digest):
            return None
        row, now = rows[0], self.clock()
        if row.kind != kind or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USE_EVERY:
            await self.runner.write(update(KEYS).where(KEYS.c.id == row.id).values(last_used_at=now))
        return Tenant(name=row.name, secure=row.secure, created_at=row.created_at)

    async def issue_auth_token(self, tenant: Tenant, principal_id: str, *, ttl: float = AUTH_TOKEN_TTL) -> IssuedToken:
        """A single-use token that lets ``principal_id`` open a session in ``tenant`` within ``ttl`` seconds.

        Expired tokens are cleared out in small batches on the way, so the table stays small.
        """
        now = self.clock()
        value = secrets.token_hex(21)
        expires = now + timedelta(seconds=ttl)
        await self.runner.write(
            insert(AUTH_TOKENS).values(
                id=uuid7(),
                tenant=tenant.name,
                principal_id=principal_id,
                digest=self.digester.digest(value),
                expires_at=expires,
                used_at=None,
                created_at=now,
                updated_at=now,
            )
        )
        stale = select(AUTH_TOKENS.c.id).where(AUTH_TOKENS.c.expires_at <= now).limit(_SWEEP_BATCH).scalar_subquery()
        await self.runner.write(delete(AUTH_TOKENS).where(AUTH_TOKENS.c.id.in_(stale)))
        return IssuedToken(kind="opaque", value=value, expires_at=expires)

    async def consume_auth_token(self, token: str, *, tenant: str, principal_id: str) -> bool:
        """Use up an auth token: ``True`` once for an unused, unexpired token of this tenant and principal.

        One conditional ``UPDATE``: of two requests racing with the same token, exactly one sees a changed row.
        """
        if not token or len(token) > 256:
            return False
        now = self.clock()
        stmt = (
            update(AUTH_TOKENS)
            .where(
                AUTH_TOKENS.c.digest == bindparam("presented"),
                AUTH_TOKENS.c.tenant == tenant,
                AUTH_TOKENS.c.principal_id == principal_id,
                AUTH_TOKENS.c.used_at.is_(None),
                AUTH_TOKENS.c.expires_at > now,
            )
            .values(used_at=now, updated_at=now)
        )

        async def consume(digest: str) -> bool:
            return (await self.runner.write(stmt, {"presented": digest})).rowcount == 1

        return await self.digester.find(token, consume)

    def _key_row(self, tenant: str, kind: KeyKind, value: str, now: datetime) -> dict[str, Any]:
        return {
            "id": uuid7(),
            "tenant": tenant,
            "kind": kind,
            "digest": self.digester.digest(value),
            "hint": value[-4:],
            "created_at": now,
            "updated_at": now,
        }


_KEY_INFO = select(
    KEYS.c.id,
    KEYS.c.tenant,
    KEYS.c.kind,
    KEYS.c.hint,
    KEYS.c.created_at,
    KEYS.c.expires_at,
    KEYS.c.revoked_at,
    KEYS.c.last_used_at,
    TENANTS.c.secure,
).join(TENANTS, TENANTS.c.name == KEYS.c.tenant)


def _key_info(r: Any) -> KeyInfo:
    return KeyInfo(
        id=str(r.id),
        tenant=r.tenant,
        secure=r.secure,
        kind=r.kind,
        hint=r.hint,
        created_at=r.created_at,
        expires_at=r.expires_at,
        revoked_at=r.revoked_at,
        last_used_at=r.last_used_at,
    )


async def _insert_keys(conn: AsyncConnection, rows: list[dict[str, Any]], field: str) -> None:
    """Insert key rows; an imported value some key already has is refused (its digest is unique). The caller's
    transaction then rolls back whole: nothing of the request is left written.

    Raises:
        Conflict: a value already in use.
    """
    try:
        await conn.execute(insert(KEYS), rows)
    except IntegrityError:
        raise Conflict(f"{field}: a key with this value already exists", field=field) from None


def _made_info(row: dict[str, Any], *, secure: bool) -> KeyInfo:
    return KeyInfo(
        id=str(row["id"]),
        tenant=row["tenant"],
        secure=secure,
        kind=row["kind"],
        hint=row["hint"],
        created_at=row["created_at"],
    )


def _key_id(key_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(key_id)
    except ValueError:
        raise NotFound("no such key", field="key_id") from None


def new_key() -> str:
    """A fresh server key or admin token: 48 URL-safe characters, never a dot (so never taken for a JWT)."""
    return secrets.token_urlsafe(36)


def _principals(count: int) -> str:
    return f"{count} principal{'' if count == 1 else 's'}"


def _check_tenant_name(tenant: str) -> None:
    if not 0 < len(tenant) <= MAX_TENANT_NAME or not tenant.isprintable() or tenant != tenant.strip():
        raise InvalidRequest(f"tenant name must be 1 to {MAX_TENANT_NAME} printable characters", field="tenant")


def _check_imported(name: str, value: str | None) -> None:
    # Its last characters are stored as its hint, so a NUL (which PostgreSQL's text cannot hold) or a control
    # character never gets that far; the vendors' keys are visible ASCII.
    low, high = _KEY_LENGTHS
    if value is not None and (
        not low <= len(value) <= high or not value.isascii() or not value.isprintable() or " " in value
    ):
        raise InvalidRequest(f"{name} must be {low} to {high} visible ASCII characters", field=name)
