"""Login-failure counters in SQL (``sg_login_failure``), on SQLite and PostgreSQL alike:
:class:`~sessiongate.core.identity_store.ThrottleStore` over the statement runner.

Every count is computed by the database from the stored one, in one ``INSERT … ON CONFLICT (key) DO UPDATE``, so
concurrent charges and failures in any number of processes all count and no more attempts are admitted than the
limits allow. Keys are keyed digests (the throttle's), so no login or address is kept in clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Executable, and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.core.identity_store import Charge, Locked, ThrottleKey, ThrottlePolicy
from sessiongate.storage.identity_tables import login_failures
from sessiongate.storage.runner import StatementRunner

__all__ = ("SqlThrottleStore",)

F = login_failures


class SqlThrottleStore:
    """:class:`~sessiongate.core.identity_store.ThrottleStore` in SQL.

    Args:
        engine: The engine, to pick the database's ``INSERT … ON CONFLICT`` flavour.
        runner: Where statements run.
        policy: The limits the counts are held to.
    """

    def __init__(self, engine: AsyncEngine, runner: StatementRunner, policy: ThrottlePolicy) -> None:
        self.runner = runner
        self.policy = policy
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def locked(self, keys: Sequence[ThrottleKey], *, now: datetime) -> list[Locked]:
        """One indexed read."""
        stmt = select(F.c.kind, F.c.locked_until).where(F.c.key.in_([k.key for k in keys]), F.c.locked_until > now)
        return [Locked(kind=row.kind, until=row.locked_until) for row in await self.runner.read(stmt)]

    async def charge(self, key: ThrottleKey, *, now: datetime) -> Charge:
        """One ``INSERT … ON CONFLICT DO UPDATE … RETURNING count, locked_until``."""
        count, locked_until = (await self.runner.write(self._charge_statement(key, now))).rows[0]
        return Charge(count=count, locked_until=locked_until)

    async def refund(self, key: ThrottleKey, *, now: datetime) -> None:
        """One conditional ``UPDATE``."""
        await self.runner.write(self._refund_statement(key, now))

    async def clear_and_refund(self, clear: ThrottleKey, refund: ThrottleKey, *, now: datetime) -> None:
        """A ``DELETE`` and an ``UPDATE`` in one transaction."""

        def work(conn: Connection) -> None:
            conn.execute(delete(F).where(F.c.key == clear.key))
            conn.execute(self._refund_statement(refund, now))

        await self.runner.transaction(work)

    async def fail(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        """One ``INSERT … ON CONFLICT DO UPDATE`` for every key."""
        await self.runner.write(self._failure_statement(keys, now))

    async def clear(self, key: ThrottleKey) -> None:
        """One ``DELETE``."""
        await self.runner.write(delete(F).where(F.c.key == key.key))

    async def sweep(self, *, now: datetime, batch: int) -> int:
        """One ``DELETE … WHERE id IN (…)``."""
        dead = and_(
            F.c.window_started_at <= now - timedelta(seconds=self.policy.window_seconds),
            or_(F.c.locked_until.is_(None), F.c.locked_until <= now),
        )
        victims = select(F.c.id).where(dead).limit(batch).scalar_subquery()
        return (await self.runner.write(delete(F).where(F.c.id.in_(victims)))).rowcount

    def _charge_statement(self, key: ThrottleKey, now: datetime) -> Executable:
        policy, limit = self.policy, self.policy.limit(key.kind)
        moment = F.c.window_started_at.type
        lock_end = now + timedelta(seconds=policy.lock_seconds)
        stmt = self._insert(F).values(
            id=uuid7(),
            key=key.key,
            kind=key.kind,
            count=1,
            window_started_at=now,
            locked_until=lock_end if limit <= 1 else None,
            created_at=now,
            updated_at=now,
        )
        locked = F.c.locked_until > literal(now, moment)
        # A window that is over, or a lock that has ended, starts the count afresh.
        stale = or_(
            F.c.window_started_at <= literal(now - timedelta(seconds=policy.window_seconds), moment),
            F.c.locked_until <= literal(now, moment),
        )
        # Every charge counts, a refused one too: above the limit means refused, which RETURNING tells the caller.
        count = case(
            (locked, case((F.c.count > limit, F.c.count + 1), else_=limit + 1)),
            (stale, 1),
            else_=F.c.count + 1,
        )
        return stmt.on_conflict_do_update(
            index_elements=[F.c.key],
            set_={
                # Every right-hand side reads the row as it was, so the new count is spelled out again below.
                "count": count,
                "window_started_at": case((stale, literal(now, moment)), else_=F.c.window_started_at),
                "locked_until": case(
                    (locked, F.c.locked_until),
                    (count >= limit, literal(lock_end, moment)),
                    else_=None,
                ),
                "updated_at": literal(now, moment),
            },
        ).returning(F.c.count, F.c.locked_until)

    def _refund_statement(self, key: ThrottleKey, now: datetime) -> Executable:
        # Takes back one charge of an attempt whose password was right or never checked, and the lock it no longer
        # reaches.
        limit = self.policy.limit(key.kind)
        return (
            update(F)
            .where(F.c.key == key.key, F.c.count > 0)
            .values(
                count=F.c.count - 1,
                locked_until=case((F.c.count - 1 < limit, None), else_=F.c.locked_until),
                updated_at=now,
            )
        )

    def _failure_statement(self, keys: Sequence[ThrottleKey], now: datetime) -> Executable:
        policy = self.policy
        moment = F.c.window_started_at.type
        rows: list[dict[str, Any]] = [
            {
                "id": uuid7(),
                "key": k.key,
                "kind": k.kind,
                "count": 1,
                "window_started_at": now,
                "locked_until": now + timedelta(seconds=policy.lock_seconds) if policy.limit(k.kind) <= 1 else None,
                "created_at": now,
                "updated_at": now,
            }
            for k in keys
        ]
        stmt = self._insert(F).values(rows)
        # A window that is over, or a lock that has ended, starts the count afresh.
        stale = or_(
            F.c.window_started_at <= literal(now - timedelta(seconds=policy.window_seconds), moment),
            F.c.locked_until <= literal(now, moment),
        )
        count = case((stale, 1), else_=F.c.count + 1)
        limit = case(
            (F.c.kind == "login", policy.max_principal_failures),
            else_=policy.max_address_failures,
        )
        return stmt.on_conflict_do_update(
            index_elements=[F.c.key],
            set_={
                # Every right-hand side reads the row as it was, so the new count is spelled out again below.
                "count": count,
                "window_started_at": case((stale, literal(now, moment)), else_=F.c.window_started_at),
                "locked_until": case(
                    (count >= limit, literal(now + timedelta(seconds=policy.lock_seconds), moment)),
                    else_=case((stale, None), else_=F.c.locked_until),
                ),
                "updated_at": literal(now, moment),
            },
        )
