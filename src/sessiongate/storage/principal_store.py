"""Principals, their password hashes and auth tokens in SQL (``sg_principal``, ``sg_auth_token``), on SQLite and
PostgreSQL alike: :class:`~sessiongate.core.identity_store.PrincipalStore` over the statement runner.

Each method runs the one statement (or short transaction) the identity service ran itself before this seam. A unique
login or id already taken is answered as a result (``None``, ``Upserted.outcome``), never as SQLAlchemy's
``IntegrityError``; any other error, an outage among them, is raised as the runner raised it, for
``storage.outage`` to tell apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, bindparam, delete, exists, false, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from uuid_utils.compat import uuid7

from sessiongate.core.identity_store import PrincipalDraft, StoredPrincipal, TokenHolder, Upserted
from sessiongate.core.models import Principal
from sessiongate.storage.driver_query import lookup
from sessiongate.storage.engine import Database
from sessiongate.storage.identity_tables import auth_tokens, principals
from sessiongate.storage.integrity import is_unique_violation
from sessiongate.storage.runner import AsyncEngineRunner, StatementRunner
from sessiongate.storage.tables import SessionRecord

__all__ = ("SqlPrincipalStore",)


P = principals
A = auth_tokens
S = cast("Table", SessionRecord.__table__).c
_PUBLIC = [c for c in P.c if c.name not in {"password_hash", "sa_orm_sentinel"}]
_STORED = [*_PUBLIC, P.c.password_hash]
_BY_PUBLIC_ID = select(*_PUBLIC).where(P.c.tenant == bindparam("tenant"), P.c.public_id == bindparam("public_id"))
_BY_PUBLIC_ID_IN_REALM = _BY_PUBLIC_ID.where(P.c.realm == bindparam("realm"))
_CREDENTIALS = select(*_STORED).where(P.c.tenant == bindparam("tenant"), P.c.login == bindparam("login"))
_TOKEN_HOLDER = (
    select(*_PUBLIC, A.c.id.label("token_id"), A.c.digest, A.c.last_used_at)
    .select_from(A.join(P, A.c.principal_id == P.c.id))
    .where(A.c.digest == bindparam("presented"), P.c.tenant == bindparam("tenant"))
)


class SqlPrincipalStore:
    """:class:`~sessiongate.core.identity_store.PrincipalStore` in SQL.

    Args:
        engine: The engine, to pick the database's ``INSERT … ON CONFLICT`` flavour.
        runner: Where statements run (the gateway's shared runner: on SQLite, its single writer); one on ``engine``
            when not given.
    """

    def __init__(self, engine: Database, runner: StatementRunner | None = None) -> None:
        self.runner = runner or AsyncEngineRunner(engine)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def insert(self, draft: PrincipalDraft) -> Principal | None:
        """Store a new principal; ``None`` when its login or id is taken in its tenant."""
        try:
            rows = (await self.runner.write(insert(P).values(_values(draft)).returning(*_PUBLIC))).rows
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            return None
        return _principal(rows[0])

    async def insert_if_absent(self, draft: PrincipalDraft) -> Principal | None:
        """One ``INSERT … ON CONFLICT DO NOTHING … RETURNING``; ``None`` when nothing was inserted."""
        stmt = self._insert(P).values(_values(draft)).on_conflict_do_nothing().returning(*_PUBLIC)
        rows = (await self.runner.write(stmt)).rows
        return _principal(rows[0]) if rows else None

    async def upsert(self, draft: PrincipalDraft) -> Upserted:
        """One ``INSERT … ON CONFLICT (tenant, public id) DO UPDATE … WHERE realm … RETURNING``."""
        values = _values(draft)
        ins = self._insert(P).values(values)
        stmt = ins.on_conflict_do_update(
            index_elements=[P.c.tenant, P.c.public_id],
            set_={
                "display_name": func.coalesce(ins.excluded.display_name, P.c.display_name),
                "updated_at": ins.excluded.updated_at,
                "last_used_at": ins.excluded.last_used_at,
            },
            where=P.c.realm == draft.realm,
        ).returning(*_PUBLIC)
        try:
            rows = (await self.runner.write(stmt)).rows
        except IntegrityError as exc:  # the (tenant, login) constraint: the id was free, the login was not
            if not is_unique_violation(exc):
                raise
            return Upserted(outcome="login_taken")
        if not rows:
            return Upserted(outcome="other_realm")
        row = rows[0]
        return Upserted(outcome="created" if row.id == values["id"] else "updated", principal=_principal(row))

    async def get(self, *, tenant: str, public_id: str, realm: str | None = None) -> Principal | None:
        """The principal with this public id (in ``realm``, when given)."""
        # on the driver: saymon's and amity's validates read their principal on every request
        params = {"tenant": tenant, "public_id": public_id}
        query = _BY_PUBLIC_ID if realm is None else _BY_PUBLIC_ID_IN_REALM
        rows = await lookup(query, self.runner, params if realm is None else params | {"realm": realm})
        return _principal_of(rows[0]) if rows else None

    async def by_login(self, *, tenant: str, login: str) -> Principal | None:
        """The principal with this login."""
        rows = await self.runner.read(select(*_PUBLIC).where(P.c.tenant == tenant, P.c.login == login))
        return _principal(rows[0]) if rows else None

    async def logins(self, *, tenant: str, public_ids: Sequence[str]) -> dict[str, str]:
        """The logins of those of ``public_ids`` in ``tenant``: one ``IN`` read."""
        rows = await self.runner.read(
            select(P.c.public_id, P.c.login).where(P.c.tenant == tenant, P.c.public_id.in_(public_ids))
        )
        return {row.public_id: row.login for row in rows}

    async def list_all(self, *, tenant: str | None = None) -> list[Principal]:
        """Every principal (of one tenant, when given), by tenant and login."""
        stmt = select(*_PUBLIC).order_by(P.c.tenant, P.c.login)
        if tenant is not None:
            stmt = stmt.where(P.c.tenant == tenant)
        return [_principal(row) for row in await self.runner.read(stmt)]

    async def credentials(self, *, tenant: str, login: str) -> StoredPrincipal | None:
        """The principal with this login and its hash: one indexed read of a precompiled statement."""
        rows = await self.runner.read(_CREDENTIALS, {"tenant": tenant, "login": login})
        return _stored(rows[0]) if rows else None

    async def stored(self, *, tenant: str, public_id: str) -> StoredPrincipal | None:
        """The principal with this public id, with its row id and hash."""
        rows = await self.runner.read(select(*_STORED).where(P.c.tenant == tenant, P.c.public_id == public_id))
        return _stored(rows[0]) if rows else None

    async def page(
        self, *, tenant: str | None, realm: str | None, before: uuid.UUID | None, limit: int
    ) -> list[StoredPrincipal]:
        """Newest first by row id (a UUIDv7), a keyset page below ``before``."""
        stmt = select(*_STORED).order_by(P.c.id.desc()).limit(limit)
        if tenant is not None:
            stmt = stmt.where(P.c.tenant == tenant)
        if realm is not None:
            stmt = stmt.where(P.c.realm == realm)
        if before is not None:
            stmt = stmt.where(P.c.id < before)
        return [_stored(row) for row in await self.runner.read(stmt)]

    async def record_use(self, *, tenant: str, public_id: str, realm: str, now: datetime) -> None:
        """Set ``last_used_at``."""
        stmt = (
            update(P)
            .where(P.c.tenant == tenant, P.c.public_id == public_id, P.c.realm == realm)
            .values(last_used_at=now)
        )
        await self.runner.write(stmt)

    async def delete_unused(self, *, realm: str, idle: timedelta, now: datetime, batch: int) -> int:
        """One ``DELETE … WHERE id IN (…)`` of the candidates read in ``last_used_at`` order from the realm's index."""
        live = exists().where(
            S.tenant == P.c.tenant, S.principal_id == P.c.public_id, S.revoked_at.is_(None), S.expires_at > now
        )
        unused = (
            select(P.c.id)
            .where(P.c.realm == realm, P.c.last_used_at < now - idle, P.c.disabled == false(), ~live)
            .order_by(P.c.last_used_at)
            .limit(batch)
        )
        return (await self.runner.write(delete(P).where(P.c.id.in_(unused.scalar_subquery())))).rowcount

    async def set_password_hash(self, *, tenant: str, login: str, password_hash: str, now: datetime) -> str | None:
        """One ``UPDATE … RETURNING public_id``."""
        return await self._update(tenant, login, now, password_hash=password_hash)

    async def replace_password_hash(self, row_id: uuid.UUID, *, stored: str, fresh: str) -> None:
        """One conditional ``UPDATE``: only while the stored hash is still ``stored``."""
        stmt = update(P).where(P.c.id == row_id, P.c.password_hash == stored).values(password_hash=fresh)
        await self.runner.write(stmt)

    async def set_disabled(self, *, tenant: str, login: str, disabled: bool, now: datetime) -> str | None:
        """One ``UPDATE … RETURNING public_id``."""
        return await self._update(tenant, login, now, disabled=disabled)

    async def delete(self, *, tenant: str, login: str) -> str | None:
        """One ``DELETE … RETURNING public_id``; the tokens go by the foreign key's cascade."""
        stmt = delete(P).where(P.c.tenant == tenant, P.c.login == login).returning(P.c.public_id)
        rows = (await self.runner.write(stmt)).rows
        return str(rows[0].public_id) if rows else None

    async def add_auth_token(self, *, tenant: str, login: str, digest: str, now: datetime, replace: bool) -> bool:
        """One transaction: find the principal, delete its tokens when ``replace``, insert the new one."""
        values = {"id": uuid7(), "digest": digest, "created_at": now, "updated_at": now}

        def work(conn: Connection) -> None:
            # The principal's row locked (PostgreSQL; SQLite's writer runs one transaction at a time): replaces of
            # one principal's token run one after another, each deleting what the one before inserted.
            found = conn.execute(
                select(P.c.id).where(P.c.tenant == tenant, P.c.login == login).with_for_update()
            ).first()
            if found is None:
                raise _NoSuchLogin
            if replace:
                conn.execute(delete(A).where(A.c.principal_id == found.id))
            conn.execute(insert(A).values(values | {"principal_id": found.id}))

        try:
            await self.runner.transaction(work)
        except _NoSuchLogin:
            return False
        return True

    async def revoke_auth_tokens(self, *, tenant: str, login: str) -> int | None:
        """The principal's row id read, then one ``DELETE`` of its tokens."""
        rows = await self.runner.read(select(P.c.id).where(P.c.tenant == tenant, P.c.login == login))
        if not rows:
            return None
        return (await self.runner.write(delete(A).where(A.c.principal_id == rows[0].id))).rowcount

    async def token_holder(self, *, tenant: str, digest: str) -> TokenHolder | None:
        """One indexed read (by digest) of a precompiled join."""
        rows = await self.runner.read(_TOKEN_HOLDER, {"presented": digest, "tenant": tenant})
        if not rows:
            return None
        row = rows[0]
        return TokenHolder(
            principal=_principal(row),
            token_id=_uuid(row.token_id),
            digest=row.digest,
            # By column: the principal's column of the same name comes first (the token's is renamed in the SQL).
            last_used_at=row._mapping[A.c.last_used_at],
        )

    async def replace_token_digest(self, old: str, new: str) -> None:
        """One ``UPDATE … WHERE digest = old``."""
        await self.runner.write(update(A).where(A.c.digest == old).values(digest=new))

    async def touch_token(self, token_id: uuid.UUID, *, now: datetime) -> None:
        """One ``UPDATE`` by id."""
        await self.runner.write(update(A).where(A.c.id == token_id).values(last_used_at=now, updated_at=now))

    async def _update(self, tenant: str, login: str, now: datetime, **values: Any) -> str | None:
        stmt = (
            update(P)
            .where(P.c.tenant == tenant, P.c.login == login)
            .values(**values, updated_at=now)
            .returning(P.c.public_id)
        )
        rows = (await self.runner.write(stmt)).rows
        return str(rows[0].public_id) if rows else None


class _NoSuchLogin(Exception):
    """Raised inside a token's transaction to undo it: there is no principal to give the token to."""


def _values(draft: PrincipalDraft) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "tenant": draft.tenant,
        "public_id": draft.public_id,
        "login": draft.login,
        "email": draft.email,
        "display_name": draft.display_name,
        "roles": draft.roles,
        "permissions": draft.permissions,
        "password_hash": draft.password_hash,
        "disabled": False,
        "realm": draft.realm,
        "last_used_at": draft.last_used_at,
        "created_at": draft.created_at,
        "updated_at": draft.created_at,
    }


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _stored(row: Row[Any]) -> StoredPrincipal:
    return StoredPrincipal(principal=_principal(row), row_id=_uuid(row.id), password_hash=row.password_hash)


def _principal(row: Row[Any]) -> Principal:
    """The core principal a row of the public columns (and maybe others) makes: read by column, so a joined
    table's column of the same name (an auth token's ``last_used_at``) is never taken for the principal's."""
    m = row._mapping
    return _principal_of({c.key: m[c] for c in _PUBLIC})


def _principal_of(m: Mapping[str, Any]) -> Principal:
    """The core principal of the public columns' values by key."""
    return Principal(
        id=m["public_id"],
        tenant=m["tenant"],
        login=m["login"],
        email=m["email"],
        display_name=m["display_name"],
        roles=tuple(m["roles"] or ()),
        permissions=tuple(m["permissions"] or ()),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        disabled=bool(m["disabled"]),
        realm=m["realm"],
        last_used_at=m["last_used_at"],
    )
