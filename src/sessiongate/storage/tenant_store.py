"""``TenantStore`` on SQLAlchemy Core: tenants, their keys and auth tokens, on SQLite and PostgreSQL alike.

Adding keys is administration: one transaction on the engine. What requests do (find a key's tenant, mint and consume
an auth token) is one statement each through the statement runner.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from uuid_utils.compat import uuid7

from sessiongate.core.tenant_store import NETWORK_REALM, HeldKey, KeyInfo, KeysAdded, KeyTaken, NewKey, Tenant
from sessiongate.storage.engine import Database
from sessiongate.storage.identity_tables import principals
from sessiongate.storage.integrity import is_unique_violation
from sessiongate.storage.runner import AsyncEngineRunner, StatementRunner
from sessiongate.storage.tenant_tables import AUTH_TOKENS, KEYS, TENANTS

__all__ = ("SqlTenantStore",)

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
_HOLDER = (
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


class SqlTenantStore:
    """:class:`~sessiongate.core.tenant_store.TenantStore` in ``sg_tenant``, ``sg_tenant_key`` and
    ``sg_tenant_auth_token``.

    Args:
        engine: The gateway's engine: adding keys is one transaction on it, and listing every key one read.
        runner: Where the other statements run; the engine when not given.
    """

    def __init__(self, engine: Database, runner: StatementRunner | None = None) -> None:
        self.engine = engine
        self.runner = runner or AsyncEngineRunner(engine)

    async def add_keys(
        self,
        tenant: str,
        *,
        secure: bool,
        share_tenant: bool,
        now: datetime,
        keys: Callable[[Tenant], Sequence[NewKey]],
    ) -> KeysAdded:
        """One transaction: the principals outside the network's realm counted, the tenant created (``ON CONFLICT DO
        NOTHING``) and made secure when asked, read back, and the keys inserted."""
        insert_fn = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        async with self.engine.begin() as conn:
            provisioned = select(func.count()).where(principals.c.tenant == tenant, principals.c.realm != NETWORK_REALM)
            shared = int((await conn.execute(provisioned)).scalar_one())
            has_keys = (await conn.execute(select(KEYS.c.id).where(KEYS.c.tenant == tenant).limit(1))).first()
            if shared and has_keys is None and not share_tenant:
                return KeysAdded(shared=shared)
            await conn.execute(
                insert_fn(TENANTS)
                .values(id=uuid7(), name=tenant, secure=secure, created_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            if secure:
                await conn.execute(update(TENANTS).where(TENANTS.c.name == tenant).values(secure=True, updated_at=now))
            row = (await conn.execute(select(TENANTS).where(TENANTS.c.name == tenant))).one()
            record = Tenant(name=row.name, secure=row.secure, created_at=row.created_at)
            made = [_key_row(tenant, key, now) for key in keys(record)]
            await _insert_keys(conn, made)
        return KeysAdded(shared=shared, tenant=record, keys=tuple(_made_info(r, secure=record.secure) for r in made))

    async def add_key(self, tenant: str, key: NewKey, *, now: datetime) -> KeyInfo | None:
        """One transaction: the tenant read, the key inserted."""
        async with self.engine.begin() as conn:
            found = (await conn.execute(select(TENANTS.c.secure).where(TENANTS.c.name == tenant))).first()
            if found is None:
                return None
            row = _key_row(tenant, key, now)
            await _insert_keys(conn, [row])
        return _made_info(row, secure=bool(found.secure))

    async def has_keys(self, tenant: str) -> bool:
        """One indexed read of at most one row."""
        return bool(await self.runner.read(select(KEYS.c.id).where(KEYS.c.tenant == tenant).limit(1)))

    async def list_keys(self) -> builtins.list[KeyInfo]:
        """One read on the engine."""
        async with self.engine.connect() as conn:
            rows = (await conn.execute(_KEY_INFO.order_by(KEYS.c.tenant, KEYS.c.created_at, KEYS.c.id))).all()
        return [_key_info(r) for r in rows]

    async def page_keys(
        self, *, tenant: str | None, kind: str | None, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[KeyInfo], bool]:
        """One read of ``limit + 1`` rows down the primary key (keyset: stable while keys come and go)."""
        stmt = _KEY_INFO.order_by(KEYS.c.id.desc()).limit(limit + 1)
        if tenant is not None:
            stmt = stmt.where(KEYS.c.tenant == tenant)
        if kind is not None:
            stmt = stmt.where(KEYS.c.kind == kind)
        if after is not None:
            stmt = stmt.where(KEYS.c.id < after)
        rows = await self.runner.read(stmt)
        return [_key_info(r) for r in rows[:limit]], len(rows) > limit

    async def key(self, key_id: uuid.UUID) -> KeyInfo | None:
        """One read by primary key."""
        rows = await self.runner.read(_KEY_INFO.where(KEYS.c.id == key_id))
        return _key_info(rows[0]) if rows else None

    async def revoke_key(self, key_id: uuid.UUID, *, now: datetime) -> bool:
        """One conditional ``UPDATE``: of calls racing to revoke a key, one changes it."""
        stmt = update(KEYS).where(KEYS.c.id == key_id, KEYS.c.revoked_at.is_(None))
        return (await self.runner.write(stmt.values(revoked_at=now, updated_at=now))).rowcount == 1

    async def expire_key(self, key_id: uuid.UUID, *, at: datetime, now: datetime) -> bool:
        """One ``UPDATE`` by primary key."""
        stmt = update(KEYS).where(KEYS.c.id == key_id).values(expires_at=at, updated_at=now)
        return (await self.runner.write(stmt)).rowcount == 1

    async def key_holder(self, digest: str) -> HeldKey | None:
        """One indexed read by digest (the key joined to its tenant)."""
        rows = await self.runner.read(_HOLDER, {"presented": digest})
        if not rows:
            return None
        row = rows[0]
        return HeldKey(
            tenant=Tenant(name=row.name, secure=row.secure, created_at=row.created_at),
            key_id=str(row.id),
            kind=row.kind,
            digest=row.digest,
            revoked_at=row.revoked_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
        )

    async def replace_key_digest(self, old: str, new: str) -> None:
        """One ``UPDATE`` where the digest is still ``old``."""
        await self.runner.write(update(KEYS).where(KEYS.c.digest == old).values(digest=new))

    async def note_key_use(self, key_id: str, *, now: datetime) -> None:
        """One ``UPDATE`` by primary key."""
        await self.runner.write(update(KEYS).where(KEYS.c.id == uuid.UUID(key_id)).values(last_used_at=now))

    async def add_auth_token(
        self, *, tenant: str, principal_id: str, digest: str, now: datetime, expires_at: datetime
    ) -> None:
        """One ``INSERT``."""
        await self.runner.write(
            insert(AUTH_TOKENS).values(
                id=uuid7(),
                tenant=tenant,
                principal_id=principal_id,
                digest=digest,
                expires_at=expires_at,
                used_at=None,
                created_at=now,
                updated_at=now,
            )
        )

    async def delete_expired_auth_tokens(self, *, now: datetime, batch: int) -> int:
        """One ``DELETE`` of a batch found through the expiry index."""
        stale = select(AUTH_TOKENS.c.id).where(AUTH_TOKENS.c.expires_at <= now).limit(batch).scalar_subquery()
        return (await self.runner.write(delete(AUTH_TOKENS).where(AUTH_TOKENS.c.id.in_(stale)))).rowcount

    async def consume_auth_token(self, digest: str, *, tenant: str, principal_id: str, now: datetime) -> bool:
        """One conditional ``UPDATE``: of two requests racing with the same token, exactly one sees a changed row."""
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
        return (await self.runner.write(stmt, {"presented": digest})).rowcount == 1


def _key_row(tenant: str, key: NewKey, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "tenant": tenant,
        "kind": key.kind,
        "digest": key.digest,
        "hint": key.hint,
        "created_at": now,
        "updated_at": now,
    }


async def _insert_keys(conn: AsyncConnection, rows: builtins.list[dict[str, Any]]) -> None:
    """Insert key rows; a value some key already has is refused (its digest is unique). The caller's transaction then
    rolls back whole: nothing of the request is left written.

    Raises:
        KeyTaken: a digest already stored.
    """
    try:
        await conn.execute(insert(KEYS), rows)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise KeyTaken from None


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


def _made_info(row: dict[str, Any], *, secure: bool) -> KeyInfo:
    return KeyInfo(
        id=str(row["id"]),
        tenant=row["tenant"],
        secure=secure,
        kind=row["kind"],
        hint=row["hint"],
        created_at=row["created_at"],
    )
