"""``SessionStore`` on SQLAlchemy Core: each hot-path call is one lean statement (see ``storage.runner``)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    TextClause,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.core.models import Device, NewSession, Page, Session, SessionFilter, SessionQuery
from sessiongate.core.service import reuse_key_digest
from sessiongate.storage.runner import AsyncEngineRunner, StatementRunner
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

    def __init__(self, engine: AsyncEngine, runner: StatementRunner | None = None) -> None:
        self.engine = engine
        self.runner = runner or AsyncEngineRunner(engine)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._plain_insert, self._upsert = _insert_statements(engine.dialect.name)

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
        stmt = self._upsert if new.reuse_key is not None else self._plain_insert
        session = _session((await self.runner.write(stmt, values)).rows[0])
        return session, session.id != str(new_id)

    async def by_digest(self, digest: str) -> tuple[Session, str] | None:
        """One indexed ``SELECT`` by digest."""
        rows = await self.runner.read(select(*_PUBLIC, C.token_digest).where(C.token_digest == digest))
        return (_session(rows[0]), rows[0].token_digest) if rows else None

    async def by_id(self, session_id: str) -> Session | None:
        """One ``SELECT`` by primary key."""
        key = _uuid(session_id)
        if key is None:
            return None
        rows = await self.runner.read(select(*_PUBLIC).where(C.id == key))
        return _session(rows[0]) if rows else None

    async def touch(self, session_id: str, *, now: datetime, expires_at: datetime) -> Session | None:
        """One ``UPDATE … RETURNING`` of a still-live row."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(last_seen_at=now, expires_at=expires_at, version=C.version + 1, updated_at=now)
            .returning(*_PUBLIC)
        )
        rows = (await self.runner.write(stmt)).rows
        return _session(rows[0]) if rows else None

    async def set_token_digest(self, session_id: str, digest: str) -> None:
        """Bind a new secret digest to a session."""
        await self.runner.write(update(T).where(C.id == _uuid(session_id)).values(token_digest=digest))

    async def revoke(self, session_id: str, *, now: datetime) -> Session | None:
        """Mark a live session revoked and bump its version."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
            .returning(*_PUBLIC)
        )
        rows = (await self.runner.write(stmt)).rows
        return _session(rows[0]) if rows else None

    async def revoke_for_principal(
        self, tenant: str, principal_id: str, *, now: datetime, except_id: str | None = None
    ) -> int:
        """Revoke every live session of one principal in one tenant."""
        stmt = update(T).where(C.tenant == tenant, C.principal_id == principal_id, C.revoked_at.is_(None))
        if except_id is not None:
            stmt = stmt.where(C.id != _uuid(except_id))
        return (await self.runner.write(stmt.values(revoked_at=now, updated_at=now, version=C.version + 1))).rowcount

    async def revoke_reuse_key(self, reuse_key: str, *, now: datetime) -> int:
        """Revoke the live holder of a reuse key."""
        stmt = (
            update(T)
            .where(C.reuse_key == reuse_key, C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
        )
        return (await self.runner.write(stmt)).rowcount

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
        return (await self.runner.write(delete(T).where(C.id.in_(victims)))).rowcount


def _insert_statements(dialect_name: str) -> tuple[TextClause, TextClause]:
    """``INSERT … RETURNING``, and the same with ``ON CONFLICT (reuse_key)`` keeping a live holder of the key and
    replacing a dead one.

    SQLAlchemy never caches the compiled form of dialect-specific ``INSERT`` constructs (``inherit_cache = False``
    on ``sqlite.Insert`` and ``postgresql.Insert``), which cost a fresh compilation of this large statement on every
    create. So both are compiled once here to typed text: same SQL, same bind and result types, compiled once.
    """
    insert, dialect = (
        (postgresql.insert, postgresql.dialect) if dialect_name == "postgresql" else (sqlite.insert, sqlite.dialect)
    )
    names = [c.name for c in T.c if c.name != "sa_orm_sentinel"]
    plain = insert(T).values({name: bindparam(name, type_=C[name].type) for name in names})
    live = and_(C.revoked_at.is_(None), C.expires_at > plain.excluded.created_at)
    upsert = plain.on_conflict_do_update(
        index_elements=[C.reuse_key],
        set_={name: case((live, C[name]), else_=plain.excluded[name]) for name in names if name != "reuse_key"},
    )
    binds = [bindparam(name, type_=C[name].type) for name in names]

    def compiled(stmt: Any) -> TextClause:
        sql = str(stmt.returning(*_PUBLIC).compile(dialect=dialect(paramstyle="named")))
        # text() reads ":id::UUID" as no parameter at all; spell PostgreSQL's casts out.
        sql = re.sub(r":(\w+)::(\w+)", r"CAST(:\1 AS \2)", sql)
        return text(sql).bindparams(*binds).columns(*_PUBLIC)  # type: ignore[return-value]

    return compiled(plain), compiled(upsert)


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
