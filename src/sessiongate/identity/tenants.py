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

import msgspec

from sessiongate import meters
from sessiongate.core.errors import Conflict, InvalidRequest, NotFound
from sessiongate.core.models import IssuedToken
from sessiongate.core.tenant_store import (
    KEY_KINDS,
    MAX_TENANT_NAME,
    NETWORK_REALM,
    KeyInfo,
    KeyKind,
    KeyState,
    KeyTaken,
    NewKey,
    Tenant,
    TenantStore,
)
from sessiongate.storage.engine import Database
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.tenant_store import SqlTenantStore
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
    "TenantService",
)

AUTH_TOKEN_TTL = 600.0
"""Seconds an auth token can be exchanged for a session (Amity: 10 minutes)."""
_SWEEP_BATCH = 100
LAST_USE_EVERY = timedelta(seconds=60)
"""A key's ``last_used_at`` is written at most this often: a listing's figure, never worth a write per request."""
_KEY_LENGTHS = (16, 150)  # what an imported key may measure


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
        engine: Database,
        digester: Digester,
        clock: Callable[[], datetime],
        runner: StatementRunner | None = None,
    ) -> None:
        self.store: TenantStore = SqlTenantStore(engine, runner)
        self.digester = digester
        self.clock = clock

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
        drawn: dict[KeyKind, str] = {}

        def new_keys(record: Tenant) -> list[NewKey]:
            # Run in the store's transaction, once the tenant is as it will be: raising here undoes all of it.
            if server_key is not None and not record.secure:
                raise InvalidRequest("a server key is only for a secure tenant", field="server_key")
            drawn["api"] = api_key or secrets.token_hex(24)
            if record.secure:
                drawn["server"] = server_key or new_key()
            return [self._new_key(kind, value) for kind, value in drawn.items()]

        try:
            added = await self.store.add_keys(
                tenant, secure=secure, share_tenant=share_tenant, now=self.clock(), keys=new_keys
            )
        except KeyTaken:
            field = "api_key" if api_key is not None else "server_key"
            raise Conflict(f"{field}: a key with this value already exists", field=field) from None
        if added.tenant is None:
            raise Conflict(
                f"tenant {tenant!r} holds {_principals(added.shared)} provisioned with `users add`: an amity network "
                "there would share their namespace (registrations never reach them, but can use none of their "
                "ids or logins, and admins' listings show both). Give the network a tenant of its own, or pass "
                "--share-tenant to share this one knowingly",
                field="tenant",
            )
        return AddedKeys(
            tenant=added.tenant,
            api_key=drawn["api"],
            server_key=drawn.get("server"),
            shared=added.shared,
            keys=added.keys,
        )

    async def is_network(self, tenant: str) -> bool:
        """Whether ``tenant`` holds an API key, so that registrations make principals of their own in it."""
        return await self.store.has_keys(tenant)

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
        try:
            info = await self.store.add_key(tenant, self._new_key("admin", value), now=self.clock())
        except KeyTaken:
            raise Conflict("admin_token: a key with this value already exists", field="admin_token") from None
        if info is None:
            raise InvalidRequest(f"no network {tenant!r}: create it with `keys add --tenant` first", field="tenant")
        return AddedAdminToken(value=value, key=info)

    async def list_keys(self) -> list[KeyInfo]:
        """Every key of every tenant, by tenant and age."""
        return await self.store.list_keys()

    async def page_keys(
        self, *, tenant: str | None = None, kind: str | None = None, limit: int, after: uuid.UUID | None = None
    ) -> tuple[list[KeyInfo], bool]:
        """Up to ``limit`` keys, newest first, after the key with id ``after`` (keyset: stable while keys come and
        go), and whether more follow."""
        return await self.store.page_keys(tenant=tenant, kind=kind, limit=limit, after=after)

    async def revoke_key(self, key_id: str) -> tuple[KeyInfo, bool]:
        """End a key now, and whether this call ended it (again: nothing changes). Every process refuses it from the
        next request on.

        Raises:
            NotFound: no key has that id.
        """
        changed = await self.store.revoke_key(_key_id(key_id), now=self.clock())
        return await self.key(key_id), changed

    async def expire_key(self, key_id: str, at: datetime | None = None) -> KeyInfo:
        """Make a key expire at ``at`` (now when not given; a later time sets a deadline, which may be moved).

        Raises:
            NotFound: no key has that id.
        """
        now = self.clock()
        await self.store.expire_key(_key_id(key_id), at=at or now, now=now)
        return await self.key(key_id)

    async def key(self, key_id: str) -> KeyInfo:
        """One key, as listed.

        Raises:
            NotFound: no key has that id.
        """
        found = await self.store.key(_key_id(key_id))
        if found is None:
            raise NotFound("no such key", field="key_id")
        return found

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
        held = await self.digester.find(key, self.store.key_holder, self.store.replace_key_digest)
        if held is None or not self.digester.matches(key, held.digest):
            return None
        now = self.clock()
        if held.kind != kind or held.revoked_at is not None or (held.expires_at is not None and held.expires_at <= now):
            return None
        if held.last_used_at is None or now - held.last_used_at >= LAST_USE_EVERY:
            await self.store.note_key_use(held.key_id, now=now)
        return held.tenant

    async def issue_auth_token(self, tenant: Tenant, principal_id: str, *, ttl: float = AUTH_TOKEN_TTL) -> IssuedToken:
        """A single-use token that lets ``principal_id`` open a session in ``tenant`` within ``ttl`` seconds.

        Expired tokens are cleared out in small batches on the way, so the table stays small.
        """
        now = self.clock()
        value = secrets.token_hex(21)
        expires = now + timedelta(seconds=ttl)
        await self.store.add_auth_token(
            tenant=tenant.name,
            principal_id=principal_id,
            digest=self.digester.digest(value),
            now=now,
            expires_at=expires,
        )
        await self.store.delete_expired_auth_tokens(now=now, batch=_SWEEP_BATCH)
        return IssuedToken(kind="opaque", value=value, expires_at=expires)

    async def consume_auth_token(self, token: str, *, tenant: str, principal_id: str) -> bool:
        """Use up an auth token: ``True`` once for an unused, unexpired token of this tenant and principal.

        One conditional ``UPDATE``: of two requests racing with the same token, exactly one sees a changed row.
        """
        if not token or len(token) > 256:
            return False
        now = self.clock()

        async def consume(digest: str) -> bool:
            return await self.store.consume_auth_token(digest, tenant=tenant, principal_id=principal_id, now=now)

        return await self.digester.find(token, consume)

    def _new_key(self, kind: KeyKind, value: str) -> NewKey:
        return NewKey(kind=kind, digest=self.digester.digest(value), hint=value[-4:])


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
