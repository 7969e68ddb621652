"""``SessionStore`` on SQLAlchemy Core: each hot-path call is one lean statement (see ``storage.runner``)."""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import operator
import re
import uuid
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from typing import cast as type_cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Index,
    Integer,
    Select,
    String,
    Table,
    and_,
    bindparam,
    case,
    cast,
    column,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    table,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.selectable import TextualSelect
from uuid_utils.compat import uuid7

from sessiongate.core.errors import SessionLimitReached
from sessiongate.core.models import (
    Device,
    NewSession,
    Page,
    Session,
    SessionCap,
    SessionFilter,
    SessionQuery,
    SortKey,
)
from sessiongate.core.store import DialectWrites, SessionsFilter, reuse_key_digest
from sessiongate.storage.audit_table import AUDIT, ROW_COLUMNS
from sessiongate.storage.driver_query import DriverQuery, driver_query
from sessiongate.storage.identity_tables import principals
from sessiongate.storage.processors import bind_processor, result_processor
from sessiongate.storage.read_cache import ReadCache
from sessiongate.storage.runner import AsyncEngineRunner, DriverStatement, SqliteRunner, StatementRunner
from sessiongate.storage.tables import SessionRecord
from sessiongate.storage.text import refuse_nul

__all__ = ("LISTING_INDEXES", "SESSION_COLUMNS", "SqlSessionStore", "session_from_row")

T = type_cast("Table", SessionRecord.__table__)
C = T.c
R = TypeVar("R")
KEPT_ROWS = 32_768  # sessions looked up by secret, and by id, whose rows are kept until they change (~1 KB each)
KEPT_CHANGES = 100_000
"""Entries of the SQLite change log (migration 0010) the sweeper leaves: a process that has not looked for more
commits than this forgets what it kept instead of reading them."""
SESSION_COLUMNS = [c for c in T.c if c.name not in {"token_digest", "reuse_key", "sa_orm_sentinel", "updated_at"}]
"""The session columns a core ``Session`` is made of (no secret's digest, no reuse key); the refresh store's too."""
_INSERTED = [c for c in T.c if c.name != "sa_orm_sentinel"]
_SORTABLE: dict[str, Any] = {
    "id": C.id,
    "tenant": C.tenant,
    "dialect": C.dialect,
    "principal_id": C.principal_id,
    "subject": C.subject,
    "device_id": C.device_id,
    "device_name": C.device_name,
    "device_env": C.device_env,
    "device_kind": C.device_kind,
    "created_at": C.created_at,
    "last_seen_at": C.last_seen_at,
    "expires_at": C.expires_at,
    "version": C.version,
    # The principal's login, by the (tenant, public_id) unique index: one probe per row, and only for a listing that
    # filters or sorts on it.
    "principal_login": select(principals.c.login)
    .where(principals.c.tenant == C.tenant, principals.c.public_id == C.principal_id)
    .scalar_subquery(),
}

_LIVE = C.revoked_at.is_(None)
LISTING_INDEXES = (
    # Partial indexes of live rows for listings (migration 0003): the default order, the expiry order and one
    # principal's sessions, each carrying expires_at so the liveness test and the count never read the table.
    Index(
        "ix_sg_session_live_created",
        C.tenant,
        C.created_at,
        C.id,
        C.expires_at,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    ),
    Index("ix_sg_session_live_expires", C.tenant, C.expires_at, C.id, sqlite_where=_LIVE, postgresql_where=_LIVE),
    Index(
        "ix_sg_session_live_principal",
        C.tenant,
        C.principal_id,
        C.created_at,
        C.id,
        C.expires_at,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    ),
)
"""Declared here, beside the queries they serve, so the metadata matches the migration."""


class SqlSessionStore:
    """Sessions in the ``sg_session`` table, on SQLite or PostgreSQL."""

    def __init__(self, engine: AsyncEngine, runner: StatementRunner | None = None) -> None:
        self.engine = engine
        self.runner = runner or AsyncEngineRunner(engine)
        self._plain_insert, self._upsert = _insert_statements(engine.dialect.name)
        self._driver_inserts = (
            (_DriverInsert(self._plain_insert, self.runner), _DriverInsert(self._upsert, self.runner))
            if isinstance(self.runner, SqliteRunner)
            else None
        )
        postgres = engine.dialect.name == "postgresql"
        self._audited_inserts = _audited_insert_statements(self._plain_insert, self._upsert) if postgres else None
        by_digest, by_id = (
            select(*SESSION_COLUMNS).where(c == bindparam("key", type_=c.type)) for c in (C.token_digest, C.id)
        )
        lookups = (driver_query(by_digest, self.runner), driver_query(by_id, self.runner))
        self._driver_lookups = (
            (_DriverLookup(lookups[0]), _DriverLookup(lookups[1])) if lookups[0] and lookups[1] else None
        )
        self._by_digest: ReadCache[str, tuple[Session, str]] = ReadCache(KEPT_ROWS, lambda found: found[0].id)
        self._by_id: ReadCache[uuid.UUID, Session] = ReadCache(KEPT_ROWS, lambda session: session.id)
        self._kept_version: object | None = None
        self._read_this_turn = False
        self._last_change: int | None = None
        self._tally = False

    async def insert(
        self,
        new: NewSession,
        *,
        now: datetime,
        expires_at: datetime,
        absolute_expires_at: datetime | None,
        token_digest: str | None,
        audit: dict[str, Any] | None = None,
        also_write: DialectWrites | None = None,
    ) -> tuple[Session, bool]:
        """One ``INSERT … ON CONFLICT (reuse_key) DO UPDATE … RETURNING``: a live holder of the key is kept as it
        was, an expired or revoked one is replaced; either way the row comes back in the same round trip.

        ``audit``, the row of the create's audit event, is written only if the session is new, in the same
        transaction: on PostgreSQL by the same statement (a data-changing ``WITH``), on SQLite as the next statement of
        the writer's group commit, conditioned on the new session's row. One round trip either way, where a write of
        its own after the insert's commit halved the creates a server could answer.

        ``also_write``, a dialect's own rows, are written only if the session is new, after it in the same
        transaction: on SQLite as one write of the writer's group commit (:meth:`SqliteRunner.write_together`), on
        PostgreSQL as a transaction of its own. Without them the create is the one statement above, unchanged.
        """
        reusing = new.reuse_key is not None
        new_id = uuid7()
        values = _values(
            new,
            new_id,
            now=now,
            expires_at=expires_at,
            absolute_expires_at=absolute_expires_at,
            token_digest=token_digest,
        )
        event = None if audit is None else audit | {"session_id": str(new_id)}
        if also_write is not None:
            session = await self._together(self._creating(values, event, also_write))
        elif self._driver_inserts is not None:
            session = await self._driver_inserts[reusing].run(values, event)
        elif event is None:
            stmt = self._upsert if reusing else self._plain_insert
            session = session_from_row((await self.runner.write(stmt, values)).rows[0])
        elif self._audited_inserts is not None:
            stmt = self._audited_inserts[reusing]
            params = values | {f"audit_{name}": value for name, value in event.items()}
            session = session_from_row((await self.runner.write(stmt, params)).rows[0])
        else:  # SQLite through the async engine (no writer thread): two statements, one transaction
            stmt = self._upsert if reusing else self._plain_insert

            def both(conn: Connection) -> Session:
                created = session_from_row(conn.execute(stmt, values).one())
                if created.id == str(new_id):
                    conn.execute(insert(AUDIT).values(event))
                return created

            session = await self.runner.transaction(both)
        return session, session.id != str(new_id)

    def _creating(
        self, values: dict[str, Any], event: dict[str, Any] | None, also_write: DialectWrites
    ) -> Callable[[Connection], Session]:
        """The work of a create with a dialect's rows: the insert (with its audit event: on PostgreSQL the same
        statement), then, only if the session is new, the event (SQLite) and the dialect's statements."""
        reusing = values["reuse_key"] is not None
        new_id = str(values["id"])
        stmt: Any = self._upsert if reusing else self._plain_insert
        params = values
        separate_event = None if event is None else insert(AUDIT).values(event)
        if event is not None and self._audited_inserts is not None:
            stmt = self._audited_inserts[reusing]
            params = values | {f"audit_{name}": value for name, value in event.items()}
            separate_event = None

        def work(conn: Connection) -> Session:
            session = session_from_row(conn.execute(stmt, params).one())
            if session.id == new_id:
                if separate_event is not None:
                    conn.execute(separate_event)
                _run_dialect_writes(conn, also_write(session))
            return session

        return work

    async def _together(self, work: Callable[[Connection], R]) -> R:
        """``work`` in one transaction: on SQLite one write of the writer's group commit, elsewhere a transaction of
        its own."""
        if isinstance(self.runner, SqliteRunner):
            return await self.runner.write_together(work)
        return await self.runner.transaction(work)

    async def insert_capped(
        self,
        new: NewSession,
        *,
        now: datetime,
        expires_at: datetime,
        absolute_expires_at: datetime | None,
        token_digest: str | None,
        cap: SessionCap,
        idle: float | None = None,
        spared: Sequence[str] = (),
        also_write: DialectWrites | None = None,
    ) -> tuple[Session, bool, list[Session]]:
        """As :meth:`insert`, holding the principal to ``cap`` in the same transaction.

        One transaction: (on PostgreSQL) a transaction-scoped advisory lock on the principal, so concurrent creates of
        one principal, in any process, take turns; the insert, which on SQLite takes the database's write lock
        first, so the reads after it see every other writer's commits; the principal's live sessions beyond the
        newest ``cap.most - 1`` besides the new one; then those are revoked with the insert (``evict_oldest``), or
        everything is undone (``refuse``). A reused session adds none, and is returned as it is.

        Args:
            cap: How many live sessions the principal may hold, and what a create past it does.
            idle: The dialect's idle limit: a session unused for longer is not live, and does not count.
            spared: Sessions the new one succeeds, ending shortly by themselves: they do not count.
            also_write: A dialect's own rows, written with a new session, last, in the same transaction.

        Returns:
            The session, whether it was reused, and the sessions evicted (revoked) to make room.

        Raises:
            SessionLimitReached: ``refuse``, and the principal already held ``cap.most`` live sessions.
        """
        new_id = uuid7()
        values = _values(
            new,
            new_id,
            now=now,
            expires_at=expires_at,
            absolute_expires_at=absolute_expires_at,
            token_digest=token_digest,
        )
        stmt = self._upsert if new.reuse_key is not None else self._plain_insert
        lock = _cap_lock(new) if self.engine.dialect.name == "postgresql" else None
        live = [*_live_of(new, now=now, idle=idle, spared=spared), C.id != new_id]
        beyond = select(C.id).where(*live).order_by(C.created_at.desc(), C.id.desc()).offset(cap.most - 1)

        def work(conn: Connection) -> tuple[Session, bool, list[Session]]:
            if lock is not None:
                conn.execute(select(func.pg_advisory_xact_lock(lock)))
            session = session_from_row(conn.execute(stmt, values).one())
            if session.id != str(new_id):
                return session, True, []
            over = list(conn.execute(beyond).scalars())
            evicted: list[Session] = []
            if over:
                if cap.action == "refuse":
                    raise SessionLimitReached("session limit reached")
                evict = (
                    update(T)
                    .where(C.id.in_(over), C.revoked_at.is_(None))
                    .values(revoked_at=now, updated_at=now, version=C.version + 1)
                    .returning(*SESSION_COLUMNS)
                )
                evicted = [session_from_row(row) for row in conn.execute(evict)]
            if also_write is not None:
                _run_dialect_writes(conn, also_write(session))
            return session, False, evicted

        return await self.runner.transaction(work)

    async def count_live(
        self, new: NewSession, *, now: datetime, idle: float | None = None, spared: Sequence[str] = ()
    ) -> int:
        """How many live sessions ``new``'s principal holds in its dialect and tenant, as :meth:`insert_capped` counts
        them, leaving out ``spared`` and the holder of ``new.reuse_key`` (which a takeover ends first)."""
        live = _live_of(new, now=now, idle=idle, spared=spared)
        if new.reuse_key is not None:
            live.append(or_(C.reuse_key.is_(None), C.reuse_key != reuse_key_digest(new.reuse_key)))
        rows = await self.runner.read(select(func.count()).select_from(T).where(*live))
        return int(rows[0][0])

    async def by_digest(self, digest: str) -> tuple[Session, str] | None:
        """One indexed ``SELECT`` by digest, or the same answer kept from the last one if no commit came since.

        The kept answer spares the validate paths their database round trip, most of their cost, while a session
        is used repeatedly and nothing is written; any commit anywhere (a touch, a revocation, another process)
        sends the next lookup to the database again.
        """
        return await self._by_digest.read_through(digest, self._version(), self._select_by_digest)

    def _next_turn(self) -> None:
        self._read_this_turn = False

    async def _select_by_digest(self, digest: str) -> tuple[Session, str] | None:
        if self._driver_lookups is not None:
            found = await self._driver_lookups[0].run(self.runner, digest)
            return (found, digest) if found is not None else None
        rows = await self.runner.read(select(*SESSION_COLUMNS, C.token_digest).where(C.token_digest == digest))
        return (session_from_row(rows[0]), rows[0].token_digest) if rows else None

    async def by_id(self, session_id: str) -> Session | None:
        """One ``SELECT`` by primary key, or the row kept from the last one if no commit came since (as
        :meth:`by_digest`: the JWT dialects look their session up by id on every request)."""
        key = _uuid(session_id)
        if key is None:
            return None
        return await self._by_id.read_through(key, self._version(), self._select_by_id)

    def _version(self) -> object | None:
        """The database's version now, the kept rows advanced to it: when it moved, the change log names the sessions
        the commits since changed, and only their rows are dropped (all of them when it cannot tell).

        Synchronous, so no other lookup runs between reading the version and advancing the caches to it.

        Read once per turn of the event loop: every commit that can come before a lookup of this turn came before the
        turn began (this process's writes are acknowledged in a later turn than their commit, and another process's
        reach this one only through a request read when a turn begins), so a version read at any point of the turn
        is as new as a lookup of it needs. Under load, many lookups share one turn: reading ``data_version`` for each
        cost up to a third of the event loop's time with creates committing (WAL read locks meanwhile).
        """
        if self._read_this_turn:
            return self._kept_version
        version = self.runner.data_version()
        if version is not None:
            self._read_this_turn = True
            asyncio.get_running_loop().call_soon(self._next_turn)  # runs in the next turn, not this one
        if version is not None and version == self._kept_version:
            return version
        changes = None if version is None else self.runner.session_changes(self._last_change)
        if changes is None:
            version = None
            changed = None
        else:
            self._last_change, raw = changes
            changed = None if raw is None else [str(uuid.UUID(bytes=value)) for value in raw]
        self._by_digest.advance(version, changed)
        self._by_id.advance(version, changed)
        self._kept_version = version
        return version

    async def _select_by_id(self, key: uuid.UUID) -> Session | None:
        if self._driver_lookups is not None:
            return await self._driver_lookups[1].run(self.runner, key)
        rows = await self.runner.read(select(*SESSION_COLUMNS).where(C.id == key))
        return session_from_row(rows[0]) if rows else None

    async def touch(self, session_id: str, *, now: datetime, expires_at: datetime) -> Session | None:
        """One ``UPDATE … RETURNING`` of a still-live row."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(last_seen_at=now, expires_at=expires_at, version=C.version + 1, updated_at=now)
            .returning(*SESSION_COLUMNS)
        )
        rows = (await self.runner.write(stmt)).rows
        return session_from_row(rows[0]) if rows else None

    async def set_token_digest(self, session_id: str, digest: str) -> None:
        """Bind a new secret digest to a session."""
        await self.runner.write(update(T).where(C.id == _uuid(session_id)).values(token_digest=digest))

    async def replace_token_digest(self, old: str, new: str) -> None:
        """Digest a session's secret again under the current key: only where the digest is still ``old``, so a secret
        bound meanwhile (:meth:`set_token_digest`) is never overwritten."""
        await self.runner.write(update(T).where(C.token_digest == old).values(token_digest=new))

    async def revoke(
        self, session_id: str, *, now: datetime, also_write: DialectWrites | None = None
    ) -> Session | None:
        """Mark a live session revoked and bump its version: one ``UPDATE … RETURNING``; with ``also_write``, the
        dialect's statements after it in the same transaction (as :meth:`insert`'s), if it revoked a session."""
        stmt = (
            update(T)
            .where(C.id == _uuid(session_id), C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
            .returning(*SESSION_COLUMNS)
        )
        if also_write is None:
            rows = (await self.runner.write(stmt)).rows
            return session_from_row(rows[0]) if rows else None

        def work(conn: Connection) -> Session | None:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            revoked = session_from_row(row)
            _run_dialect_writes(conn, also_write(revoked))
            return revoked

        return await self._together(work)

    async def revoke_for_principal(
        self,
        tenant: str,
        principal_id: str,
        *,
        now: datetime,
        except_id: str | None = None,
        dialect: str | None = None,
        device_id: str | None = None,
    ) -> int:
        """Revoke every live session of one principal in one tenant (of one dialect on one device, when given), found
        through the live-principal index."""
        stmt = update(T).where(C.tenant == tenant, C.principal_id == principal_id, C.revoked_at.is_(None))
        if except_id is not None:
            stmt = stmt.where(C.id != _uuid(except_id))
        if dialect is not None:
            stmt = stmt.where(C.dialect == dialect)
        if device_id is not None:
            stmt = stmt.where(C.device_id == device_id)
        return (await self.runner.write(stmt.values(revoked_at=now, updated_at=now, version=C.version + 1))).rowcount

    async def revoke_reuse_key(self, reuse_key: str, *, now: datetime) -> list[Session]:
        """Revoke the live holder of a reuse key: one ``UPDATE … RETURNING``, so its audit event can name it."""
        stmt = (
            update(T)
            .where(C.reuse_key == reuse_key, C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now, version=C.version + 1)
            .returning(*SESSION_COLUMNS)
        )
        return [session_from_row(row) for row in (await self.runner.write(stmt)).rows]

    async def release_reuse_key(
        self, reuse_key: str, *, now: datetime, principal_id: str | None, until: datetime
    ) -> list[Session]:
        """One ``UPDATE … RETURNING``: the live holder gives the key up and is revoked, or, being ``principal_id``'s,
        is capped at ``until`` (its ``revoked_at`` is still null, which is what the first ``CASE`` keeps)."""
        keep = C.principal_id == principal_id if principal_id is not None else false()
        at_now = bindparam("release_now", now, type_=C.revoked_at.type)
        at_until = bindparam("release_until", until, type_=C.expires_at.type)
        stmt = (
            update(T)
            .where(C.reuse_key == reuse_key, C.revoked_at.is_(None))
            .values(
                reuse_key=None,
                revoked_at=case((keep, C.revoked_at), else_=at_now),
                expires_at=case((and_(keep, C.expires_at > at_until), at_until), else_=C.expires_at),
                updated_at=now,
                version=C.version + 1,
            )
            .returning(*SESSION_COLUMNS)
        )
        return [session_from_row(row) for row in (await self.runner.write(stmt)).rows]

    async def list(self, query: SessionQuery, *, now: datetime) -> Page[Session]:
        """Live sessions of a tenant, filtered, sorted (``id`` breaks ties, so paging is stable) and paged.

        The default order (``created_at``, ``id``) and ``expires_at`` are read in order from the partial indexes
        of live rows (:data:`LISTING_INDEXES`), as is the count. An offset page nearer the end than the start is
        read backwards from the end, so the last page of a long listing costs what the first one does. With
        ``query.after`` the page starts after that row (keyset paging), a range seek on the same indexes.

        On SQLite, a tenant's count without filters is its tally of unrevoked sessions less the expired ones not yet
        swept (:func:`_tallied_count`), not a walk of every live entry.
        """
        scope = [C.tenant == query.tenant, C.revoked_at.is_(None)]
        if query.principal_id is not None:
            scope.append(C.principal_id == query.principal_id)
        pg = self.engine.dialect.name == "postgresql"
        scope.extend(_condition(f, pg=pg) for f in query.filters)
        live = [*scope, C.expires_at > now]
        sort = query.sort or _DEFAULT_SORT
        # SQLite, knowing nothing of the data, prefers the expiry index's range to the creation index's order, then
        # sorts every live row to return one page. Hidden from its index choice, the liveness test is read from the
        # creation index as that is walked in order, and the walk stops after one page.
        in_creation_order = not pg and sort[0].field == "created_at" and not sort[0].fallbacks
        live_in_order = [*scope, _unindexed(C.expires_at) > now] if in_creation_order else live
        keys = [_key(k.field, k.fallbacks, descending=k.descending, pg=pg) for k in sort]
        if not any(k.field == "id" and not k.fallbacks for k in sort):
            # Ties go by id in the direction of the last key, so an index on (key, id) serves both directions.
            keys.append(_key("id", (), descending=sort[-1].descending, pg=pg))
        skip, take = query.page.skip, query.page.take
        async with self.engine.connect() as conn:
            total: int | None = None
            if query.with_total or query.count_only:
                counting = select(func.count()).select_from(T).where(*live)
                if not pg and query.principal_id is None and not query.filters and await self._tallied(conn):
                    counting = _tallied_count(query.tenant, now)
                total = int((await conn.execute(counting)).scalar_one())
            if query.count_only:
                return Page(items=[], total=total, skip=skip, take=take)
            where = [*live_in_order, _after(keys, query.after)] if query.after is not None else live_in_order
            backwards = False
            if total is not None and query.after is None:
                end = min(skip + take, total)
                if skip >= end:
                    return Page(items=[], total=total, skip=skip, take=take)
                if total - end < skip:  # nearer the end: read the same rows in reverse order from there
                    backwards, skip, take = True, total - end, end - skip
            order = [_order(k, reverse=backwards) for k in keys]
            stmt = select(*SESSION_COLUMNS).where(*where).order_by(*order).offset(skip).limit(take)
            rows = (await conn.execute(stmt)).all()
        items = [session_from_row(r) for r in (reversed(rows) if backwards else rows)]
        return Page(items=items, total=total, skip=query.page.skip, take=query.page.take)

    async def _tallied(self, conn: AsyncConnection) -> bool:
        """Whether the database keeps the tenants' counts (SQLite from migration 0013 on; a schema made otherwise, as
        some tests make theirs, does not). Remembered once seen: a migration is never undone under a running store."""
        if not self._tally:
            found = await conn.execute(
                select(_SCHEMA.c.name).where(_SCHEMA.c.type == "table", _SCHEMA.c.name == _TALLY.name)
            )
            self._tally = found.first() is not None
        return self._tally

    async def admin_page(
        self, where: SessionsFilter, *, now: datetime, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[Session], bool]:
        """The admin API's listing across tenants and dialects: one read of ``limit + 1`` rows down the primary key (a
        UUIDv7, so newest first), starting strictly below ``after``."""
        conditions = _admin_conditions(where, now)
        if after is not None:
            conditions.append(C.id < after)
        stmt = select(*SESSION_COLUMNS).where(*conditions).order_by(C.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [session_from_row(row) for row in rows[:limit]], len(rows) > limit

    async def delete_expired(self, *, now: datetime, batch: int) -> int:
        """Delete one batch of dead rows: expired ones through the expiry index, then revoked ones through theirs.

        Two statements, each reading only its victims: one ``expires_at <= now OR revoked_at IS NOT NULL`` had no
        index to search and scanned every session, holding the writer (and every create) for as long.
        """
        expired = select(C.id).where(C.expires_at <= now).order_by(C.expires_at).limit(batch)
        deleted = (await self.runner.write(delete(T).where(C.id.in_(expired.scalar_subquery())))).rowcount
        if deleted < batch:
            revoked = select(C.id).where(C.revoked_at.is_not(None)).order_by(C.revoked_at).limit(batch - deleted)
            deleted += (await self.runner.write(delete(T).where(C.id.in_(revoked.scalar_subquery())))).rowcount
        if self.engine.dialect.name == "sqlite":
            await self.runner.write(_TRIM_CHANGES.bindparams(keep=KEPT_CHANGES))
        return deleted


def _values(
    new: NewSession,
    new_id: uuid.UUID,
    *,
    now: datetime,
    expires_at: datetime,
    absolute_expires_at: datetime | None,
    token_digest: str | None,
) -> dict[str, Any]:
    """The row of a new session, checked for NUL characters (which PostgreSQL refuses in text)."""
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
    refuse_nul(values)
    return values


def _run_dialect_writes(conn: Connection, statements: Sequence[object]) -> None:
    """Run a dialect's statements (:data:`DialectWrites`) in the transaction of the change they go with.

    Raises:
        TypeError: one of them is not a SQLAlchemy Core statement (nothing of the change is then committed).
    """
    for statement in statements:
        if not isinstance(statement, Executable):
            msg = f"a dialect's write must be a SQLAlchemy Core statement, not {type(statement).__name__}"
            raise TypeError(msg)
        conn.execute(statement)


def _admin_conditions(where: SessionsFilter, now: datetime) -> list[ColumnElement[bool]]:
    """The conditions of ``where`` on ``sg_session``, ``state`` judged at ``now``."""
    found: list[ColumnElement[bool]] = []
    equal = {
        C.tenant: where.tenant,
        C.dialect: where.dialect,
        C.principal_id: where.principal_id,
        C.device_id: where.device_id,
        C.client_address: where.client_address,
    }
    found.extend(column == value for column, value in equal.items() if value is not None)
    if where.created_after is not None:
        found.append(C.created_at >= where.created_after)
    if where.created_before is not None:
        found.append(C.created_at < where.created_before)
    if where.last_seen_after is not None:
        found.append(C.last_seen_at >= where.last_seen_after)
    if where.last_seen_before is not None:
        found.append(C.last_seen_at < where.last_seen_before)
    if where.state == "live":
        found.extend((C.revoked_at.is_(None), C.expires_at > now))
    elif where.state == "revoked":
        found.append(C.revoked_at.is_not(None))
    elif where.state == "expired":
        found.extend((C.revoked_at.is_(None), C.expires_at <= now))
    return found


def _live_of(new: NewSession, *, now: datetime, idle: float | None, spared: Sequence[str]) -> list[ColumnElement[bool]]:
    """The live sessions of ``new``'s principal in its tenant and dialect, as its cap counts them (by principal, or,
    for zelf, by device; through the live-principal index), but ``spared``."""
    who = (
        C.principal_id == new.principal_id
        if new.principal_id is not None
        else and_(C.principal_id.is_(None), C.device_id == new.device.id)
    )
    live = [C.tenant == new.tenant, who, C.dialect == new.dialect, C.revoked_at.is_(None), C.expires_at > now]
    live.append(or_(C.absolute_expires_at.is_(None), C.absolute_expires_at > now))
    if idle is not None:
        live.append(C.last_seen_at > now - timedelta(seconds=idle))
    if spared:
        live.append(C.id.not_in([_uuid(s) for s in spared]))
    return live


def _cap_lock(new: NewSession) -> int:
    """The PostgreSQL advisory lock key of ``new``'s principal in its tenant and dialect: 64 bits of a digest."""
    who = new.principal_id if new.principal_id is not None else f"device:{new.device.id}"
    digest = hashlib.sha256("\x00".join(("sessiongate.cap", new.tenant, new.dialect, who or "")).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_TALLY = table("sg_tally", column("tenant", String), column("unrevoked", Integer))
"""SQLite's count of each tenant's unrevoked sessions, kept by triggers (migration 0013)."""
_SCHEMA = table("sqlite_master", column("type", String), column("name", String))


def _tallied_count(tenant: str, now: datetime) -> Select[tuple[int]]:
    """The tenant's live sessions on SQLite: its unrevoked ones (``sg_tally``) less those already expired,
    which the sweeper deletes, so only a short range of the live-expiry index is read instead of every live entry.

    One statement, so both numbers come from one snapshot of the database.
    """
    unrevoked = select(_TALLY.c.unrevoked).where(_TALLY.c.tenant == tenant).scalar_subquery()
    expired = (
        select(func.count()).select_from(T).where(C.tenant == tenant, _LIVE, C.expires_at <= now).scalar_subquery()
    )
    return select(func.coalesce(unrevoked, 0) - expired)


_TRIM_CHANGES = text("DELETE FROM sg_session_change WHERE seq <= (SELECT max(seq) FROM sg_session_change) - :keep")
"""The sweeper trims the change log (migration 0010), whose newest entries every process still reads."""


def _insert_statements(dialect_name: str) -> tuple[TextualSelect, TextualSelect]:
    """``INSERT … RETURNING``, and the same with ``ON CONFLICT (reuse_key)`` keeping a live holder of the key and
    replacing a dead one.

    SQLAlchemy never caches the compiled form of dialect-specific ``INSERT`` constructs (``inherit_cache = False``
    on ``sqlite.Insert`` and ``postgresql.Insert``), which cost a fresh compilation of this large statement on every
    create. So both are compiled once here to typed text: same SQL, same bind and result types, compiled once.
    """
    insert, dialect = (
        (postgresql.insert, postgresql.dialect) if dialect_name == "postgresql" else (sqlite.insert, sqlite.dialect)
    )
    names = [c.name for c in _INSERTED]
    plain = insert(T).values({name: bindparam(name, type_=C[name].type) for name in names})
    live = and_(C.revoked_at.is_(None), C.expires_at > plain.excluded.created_at)
    upsert = plain.on_conflict_do_update(
        index_elements=[C.reuse_key],
        set_={name: case((live, C[name]), else_=plain.excluded[name]) for name in names if name != "reuse_key"},
    )
    binds = [bindparam(name, type_=C[name].type) for name in names]

    def compiled(stmt: Any) -> TextualSelect:
        sql = str(stmt.returning(*SESSION_COLUMNS).compile(dialect=dialect(paramstyle="named")))
        # text() reads ":id::UUID" as no parameter at all; spell PostgreSQL's casts out.
        sql = re.sub(r":(\w+)::(\w+)", r"CAST(:\1 AS \2)", sql)
        return text(sql).bindparams(*binds).columns(*SESSION_COLUMNS)

    return compiled(plain), compiled(upsert)


def _audited_insert_statements(plain: TextualSelect, upsert: TextualSelect) -> tuple[TextualSelect, TextualSelect]:
    """The statements of :func:`_insert_statements` on PostgreSQL, each also writing an audit event's row (its
    columns bound as ``audit_<column>``) when the session it returns is the new one (``:id``): one statement, one
    round trip."""
    columns = [AUDIT.c[name] for name in ROW_COLUMNS]
    binds = [bindparam(f"audit_{c.name}", type_=c.type) for c in columns]
    # Cast, as the insert's VALUES need not: a parameter in a SELECT list takes no type from the column it fills.
    selected = select(*(cast(b, c.type) for b, c in zip(binds, columns, strict=True)))
    pg: Any = postgresql.dialect
    event_sql = re.sub(r":(\w+)::(\w+)", r"CAST(:\1 AS \2)", str(selected.compile(dialect=pg(paramstyle="named"))))
    names = ", ".join(c.name for c in columns)
    public = ", ".join(c.name for c in SESSION_COLUMNS)
    session_binds = [bindparam(c.name, type_=c.type) for c in _INSERTED]

    def audited(inserted: TextualSelect) -> TextualSelect:
        event = f"INSERT INTO {AUDIT.name} ({names}) {event_sql} FROM created WHERE created.id = CAST(:id AS UUID)"
        inner = inserted.element.text
        # Names and SQL from the tables' metadata only; every value is a bound parameter.
        sql = f"WITH created AS ({inner}), audited AS ({event}) SELECT {public} FROM created"  # noqa: S608
        return text(sql).bindparams(*session_binds, *binds).columns(*SESSION_COLUMNS)

    return audited(plain), audited(upsert)


_PublicRow = namedtuple("_PublicRow", [c.name for c in SESSION_COLUMNS])  # type: ignore[misc]


class _DriverInsert:
    """A create's ``INSERT … RETURNING`` run by SQLite's writer thread on its DBAPI connection.

    SQLAlchemy's execution of the statement (cache lookup, parameter and row processing, events) cost more than
    SQLite's own work on the insert. This runs the same SQL, compiled once, and converts the parameters and the
    returned row with the type processors SQLAlchemy itself would apply on the writer's dialect (or their equals,
    :mod:`sessiongate.storage.processors`), so what is stored and what comes back are the same as through SQLAlchemy
    (tests/unit/test_service.py compares the two).
    """

    __slots__ = ("_audit_binds", "_audit_sql", "_binds", "_results", "_runner", "_sql")

    def __init__(self, statement: TextualSelect, runner: SqliteRunner) -> None:
        dialect = runner.dialect
        self._runner = runner
        self._sql = str(statement.compile(dialect=sqlite.dialect(paramstyle="named")))
        self._binds = [(c.name, bind_processor(c.type, dialect)) for c in _INSERTED]
        self._results = [result_processor(c.type, dialect) for c in SESSION_COLUMNS]
        # A create's audit event, written only if the session of the insert's ``id`` is there: a reused one is not.
        columns = [AUDIT.c[name] for name in ROW_COLUMNS]
        event = insert(AUDIT).from_select(
            columns,
            select(*(bindparam(f"audit_{c.name}", type_=c.type) for c in columns)).where(
                select(C.id).where(C.id == bindparam("id", type_=C.id.type)).exists()
            ),
        )
        self._audit_sql = str(event.compile(dialect=sqlite.dialect(paramstyle="named")))
        self._audit_binds = [(c.name, bind_processor(c.type, dialect)) for c in columns]

    async def run(self, values: dict[str, Any], audit: dict[str, Any] | None = None) -> Session:
        params = {key: values[key] if bind is None else bind(values[key]) for key, bind in self._binds}
        then: tuple[DriverStatement, ...] = ()
        if audit is not None:
            event = {
                f"audit_{key}": audit[key] if bind is None else bind(audit[key]) for key, bind in self._audit_binds
            }
            then = (DriverStatement(self._audit_sql, event | {"id": params["id"]}),)
        row = (await self._runner.write_driver(DriverStatement(self._sql, params, then))).rows[0]
        pairs = zip(row, self._results, strict=True)
        return session_from_row(_PublicRow._make(value if result is None else result(value) for value, result in pairs))


class _DriverLookup:
    """The ``SELECT`` of one session by a unique column, as a :class:`DriverQuery` (a SQLite connection's, or one of
    the PostgreSQL pool's); tests/unit/test_read_cache.py compares what it returns with the Core query's."""

    __slots__ = ("_query",)

    def __init__(self, query: DriverQuery) -> None:
        self._query = query

    async def run(self, runner: StatementRunner, key: Any) -> Session | None:
        """The session whose column is ``key``, read by ``runner`` (the runner it was made for, or what stands for
        it)."""
        rows = await self._query.rows(runner, {"key": key})
        return session_from_row(_PublicRow._make(rows[0])) if rows else None


_DEFAULT_SORT = (SortKey(field="created_at"),)
_NULLABLE = frozenset(
    {"principal_id", "principal_login", "subject", "device_id", "device_name", "device_env", "device_kind"}
)
_TEXT = _NULLABLE | {"tenant", "dialect"}
_COMPARE: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


@dataclass(frozen=True, slots=True)
class _Key:
    """A sort key as SQL: its expression, direction, whether it can be null, and the field (to convert values)."""

    field: str
    expr: ColumnElement[Any]
    descending: bool
    nullable: bool


def _expression(field: str, fallbacks: tuple[str, ...], *, pg: bool) -> tuple[ColumnElement[Any], bool]:
    fields = (field, *fallbacks)
    columns = [_SORTABLE[name] for name in fields]
    expr: ColumnElement[Any] = columns[0] if len(columns) == 1 else func.coalesce(*columns)
    if pg and field in _TEXT:
        # Byte order, as SQLite compares text, whatever collation the PostgreSQL database was created with.
        expr = expr.collate("C")
    return expr, all(name in _NULLABLE for name in fields)


def _unindexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQLite's no-op unary ``+``: the same value, but a term on it is never used to choose an index."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def _key(field: str, fallbacks: tuple[str, ...], *, descending: bool, pg: bool) -> _Key:
    expr, nullable = _expression(field, fallbacks, pg=pg)
    return _Key(field=field, expr=expr, descending=descending, nullable=nullable)


def _order(key: _Key, *, reverse: bool) -> Any:
    descending = key.descending != reverse
    clause = key.expr.desc() if descending else key.expr.asc()
    if key.nullable:
        # Nulls are the smallest value on both databases (SQLite and PostgreSQL disagree by default).
        clause = clause.nulls_last() if descending else clause.nulls_first()
    return clause


def _after(keys: list[_Key], values: tuple[Any, ...]) -> ColumnElement[bool]:
    """Rows strictly after the row whose key values are ``values``, in the order of ``keys``."""
    if len(values) != len(keys):
        msg = f"keyset needs {len(keys)} values (the sort keys and the id), got {len(values)}"
        raise ValueError(msg)
    converted = [_uuid(str(v)) if k.field == "id" and v is not None else v for k, v in zip(keys, values, strict=True)]
    branches: list[ColumnElement[bool]] = []
    ties: list[ColumnElement[bool]] = []
    for key, value in zip(keys, converted, strict=True):
        branches.append(and_(*ties, _beyond(key, value)))
        ties.append(key.expr.is_(None) if value is None else key.expr == value)
    condition = or_(*branches)
    first, value = keys[0], converted[0]
    if not first.nullable and value is not None:
        # Implied by the branches; stated so the database seeks the index instead of scanning it.
        condition = and_(first.expr <= value if first.descending else first.expr >= value, condition)
    return condition


def _beyond(key: _Key, value: Any) -> ColumnElement[bool]:
    if key.descending:
        if value is None:
            return false()
        return or_(key.expr < value, key.expr.is_(None)) if key.nullable else key.expr < value
    if value is None:
        return key.expr.is_not(None)
    return _COMPARE["gt"](key.expr, value)


def _condition(f: SessionFilter, *, pg: bool = False) -> ColumnElement[bool]:
    if f.field == "id" and not f.fallbacks:
        return _id_condition(f, pg=pg)
    expr, nullable = _expression(f.field, f.fallbacks, pg=pg)
    if f.op == "in":
        return expr.in_(list(f.values))
    value = f.values[0]
    if f.op == "like":
        return expr.ilike(_like_pattern(str(value)), escape="\\")
    if f.op == "neq" and nullable:
        return or_(expr != value, expr.is_(None))  # "not x" includes "nothing"
    return _COMPARE[f.op](expr, value)


def _id_condition(f: SessionFilter, *, pg: bool) -> ColumnElement[bool]:
    """Complete ids compare as ids (through the primary key); anything else as the 32 hex digits of the id."""
    hexed: ColumnElement[str] = (
        func.replace(cast(C.id, String), "-", "").collate("C") if pg else func.lower(func.hex(C.id))
    )
    if f.op == "like":
        return hexed.ilike(_like_pattern(str(f.values[0])), escape="\\")
    ids = [_uuid(str(v)) for v in f.values]
    if f.op == "in":
        known = [i for i in ids if i is not None]
        return C.id.in_(known) if known else false()
    if ids[0] is not None:
        return _COMPARE[f.op](C.id, ids[0])
    if f.op in {"eq", "neq"}:
        return false() if f.op == "eq" else true()
    return _COMPARE[f.op](hexed, str(f.values[0]).lower())


def _like_pattern(pattern: str) -> str:
    """``*`` is the wildcard; SQL's own wildcards and the escape character are taken literally."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def session_from_row(row: Any) -> Session:
    """The core ``Session`` of a session row: a Row, a _PublicRow, any object with the columns as attributes (one
    without the ``attributes`` column, such as the admin API's, gets none)."""
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
        attributes=getattr(row, "attributes", None) or {},
    )
