"""``SessionStore`` on SQLAlchemy Core: each hot-path call is one lean statement on the shared engine."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.core.models import Device, NewSession, Page, Session, SessionFilter, SessionQuery
from sessiongate.core.service import reuse_key_digest
from sessiongate.storage.tables import SessionRecord

__all__ = ("SqlSessionStore",)

T = cast("Table", SessionRecord.__table__)
C = T.c
_PUBLIC = [c for c in T.c if c.name not in {"token_digest", "reuse_key", "sa_orm_sentinel", "updated_at"}]
_SORTABLE: dict[str, Any] = {
    "id": C.id,
    "tenant": C.tenant,
    "dialect": C.dialect,
    "principal_id": C.principal_id,
    "subject": C.subject,
    "device_name": C.device_name,
    "device_env": C.device_env,
    "device_kind": C.device_kind,
    "created_at": C.created_at,
    "last_seen_at": C.last_seen_at,
    "expires_at": C.expires_at,
    "version": C.version,
}


class SqlSessionStore:
    """Sessions in the ``sg_session`` table, on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def insert(
        self,
        new: NewSession,
        *,
        now: datetime,
        expires_at: datetime,
        absolute_expires_at: datetime | None,
        token_digest: str | None,
    ) -> tuple[Session, bool]:
        """One ``INSERT … ON CONFLICT (reuse_key) DO UPDATE … RETURNING``: a live holder of the key is kept as it
        was, an expired or revoked one is replaced; either way the row comes back in the same round trip."""
        new_id = uuid7()
        values: dict[str, Any] = {
            "id": new_id,
            "tenant": new.tenant,
            "dialect": new.dialect,
            "principal_id": new.principal_id,
            "subject": new.subject,
            "client_address": new.client_address,
            "token_digest": token_digest,
            "reuse_key": reuse_key_digest(new.reuse_key) if new.reuse_key is not None else None,
            "device_id": new.device.id,
            "device_name": new.device.name,
            "device_kind": new.device.kind,
            "device_model": new.device.model,
            "device_sdk_version": new.device.sdk_version,
            "device_env": new.device.env,
            "created_at": now,
            "updated_at": now,
            "last_seen_at": now,
            "expires_at": expires_at,
            "absolute_expires_at": absolute_expires_at,
            "revoked_at": None,
            "version": 1,
            "attributes": new.attributes,
        }
        stmt = self._insert(T).values(values)
        if new.reuse_key is not None:
            live = and_(C.revoked_at.is_(None), C.expires_at > stmt.excluded.created_at)
            stmt = stmt.on_conflict_do_update(
                index_elements=[C.reuse_key],
                set_={name: case((live, C[name]), else_=stmt.excluded[name]) for name in values if name != "reuse_key"},
            )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt.returning(*_PUBLIC))).one()
        session = _session(row)
        return session, session.id != str(new_id)

    async def by_digest(self, digest: str) -> tuple[Session, str] | None:
        """One indexed ``SELECT`` by digest."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PUBLIC, C.token_digest).where(C.token_digest == digest))).first()
        return None if row is None else (_session(row), row.token_digest)

    async def by_id(self, session_id: str) -> Session | None:
        """One ``SELECT`` by primary key."""
        key = _uuid(session_id)
        if key is None:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(*_PUBLIC).where(C.id == key))).first()
        return None if row is None else _session(row)

    async def touch(self, session_id: str, *, now: datetime, expires_at: datetime) -> Session | None:
        """One ``UPDATE … RETURNING`` of a still-live row."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(last_seen_at=now, expires_at=expires_at, version=C.version + 1, updated_at=now)
            .returning(*_PUBLIC)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _session(row)

    async def set_token_digest(self, session_id: str, digest: str) -> None:
        """Bind a new secret digest to a session."""
        async with self.engine.begin() as conn:
            await conn.execute(update(T).where(C.id == _uuid(session_id)).values(token_digest=digest))

    async def revoke(self, session_id: str, *, now: datetime) -> Session | None:
        """Mark a live session revoked and bump its version."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
            .returning(*_PUBLIC)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _session(row)

    async def revoke_for_principal(
        self, tenant: str, principal_id: str, *, now: datetime, except_id: str | None = None
    ) -> int:
        """Revoke every live session of one principal in one tenant."""
        stmt = update(T).where(C.tenant == tenant, C.principal_id == principal_id, C.revoked_at.is_(None))
        if except_id is not None:
            stmt = stmt.where(C.id != _uuid(except_id))
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt.values(revoked_at=now, updated_at=now, version=C.version + 1))
        return int(result.rowcount)

    async def revoke_reuse_key(self, reuse_key: str, *, now: datetime) -> int:
        """Revoke the live holder of a reuse key."""
        stmt = (
            update(T)
            .where(C.reuse_key == reuse_key, C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
        )
        async with self.engine.begin() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount)

    async def list(self, query: SessionQuery, *, now: datetime) -> Page[Session]:
        """Live sessions of a tenant, filtered, sorted (``id`` breaks ties, so paging is stable) and paged."""
        where = [C.tenant == query.tenant, C.revoked_at.is_(None), C.expires_at > now]
        if query.principal_id is not None:
            where.append(C.principal_id == query.principal_id)
        where.extend(_condition(f) for f in query.filters)
        total: int | None = None
        async with self.engine.connect() as conn:
            if query.with_total or query.count_only:
                total = int((await conn.execute(select(func.count()).select_from(T).where(*where))).scalar_one())
            if query.count_only:
                return Page(items=[], total=total, skip=query.page.skip, take=query.page.take)
            order = [(_SORTABLE[k.field].desc() if k.descending else _SORTABLE[k.field].asc()) for k in query.sort]
            if not any(k.field == "id" for k in query.sort):
                order.append(C.id.asc())
            stmt = select(*_PUBLIC).where(*where).order_by(*order).offset(query.page.skip).limit(query.page.take)
            rows = (await conn.execute(stmt)).all()
        return Page(items=[_session(r) for r in rows], total=total, skip=query.page.skip, take=query.page.take)

    async def delete_expired(self, *, now: datetime, batch: int) -> int:
        """Delete one batch of dead rows, oldest expiry first, through the expiry index."""
        dead = or_(C.expires_at <= now, C.revoked_at.is_not(None))
        victims = select(C.id).where(dead).order_by(C.expires_at).limit(batch).scalar_subquery()
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(T).where(C.id.in_(victims)))
        return int(result.rowcount)


def _condition(f: SessionFilter) -> ColumnElement[bool]:
    column = _SORTABLE[f.field]
    values: list[Any] = [_uuid(v) for v in f.values] if f.field == "id" else list(f.values)
    if f.op == "in":
        return column.in_(values)
    value = values[0]
    if f.op == "like":
        return column.like(value.replace("*", "%"))
    ops = {"eq": column.__eq__, "neq": column.__ne__, "gt": column.__gt__, "ge": column.__ge__}
    ops |= {"lt": column.__lt__, "le": column.__le__}
    return ops[f.op](value)  # type: ignore[no-any-return]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _session(row: Row[Any]) -> Session:
    return Session(
        id=str(row.id),
        tenant=row.tenant,
        dialect=row.dialect,
        principal_id=row.principal_id,
        subject=row.subject,
        client_address=row.client_address,
        device=Device(
            id=row.device_id,
            name=row.device_name,
            kind=row.device_kind,
            model=row.device_model,
            sdk_version=row.device_sdk_version,
            env=row.device_env,
        ),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        absolute_expires_at=row.absolute_expires_at,
        revoked_at=row.revoked_at,
        version=row.version,
        attributes=row.attributes or {},
    )
