"""Login throttling per login and per client address, counted in the database so it holds across processes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from sqlalchemy import Executable, and_, case, delete, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.identity.tables import login_failures
from sessiongate.storage.runner import StatementRunner
from sessiongate.tokens.opaque import Digester

__all__ = ("Lock", "Throttle", "ThrottleKey", "ThrottlePolicy")

F = login_failures
KeyKind = Literal["login", "address"]


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


class ThrottleKey(msgspec.Struct, frozen=True):
    """One thing failures are counted for: its kind and its stored (digested) key."""

    kind: KeyKind
    key: str


class Lock(msgspec.Struct, frozen=True):
    """A refusal in force: what is locked, and for how many more whole seconds."""

    kind: KeyKind
    retry_after: int


class Throttle:
    """Count failures, tell whether a key is locked, and forget a key.

    Args:
        engine: The engine, to pick the database's ``INSERT … ON CONFLICT`` flavour.
        runner: Where statements run.
        digester: Keys the digests that stand for logins and addresses in the table.
        policy: The limits.
    """

    def __init__(
        self, engine: AsyncEngine, runner: StatementRunner, digester: Digester, policy: ThrottlePolicy
    ) -> None:
        self.runner = runner
        self.digester = digester
        self.policy = policy
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def login_key(self, tenant: str, login: str) -> ThrottleKey:
        """The key counting failures of one login: by login rather than principal, so unknown logins lock alike."""
        return ThrottleKey("login", self.digester.digest(f"login\x00{tenant}\x00{login}"))

    def address_key(self, tenant: str, address: str) -> ThrottleKey:
        """The key counting failures from one client address."""
        return ThrottleKey("address", self.digester.digest(f"address\x00{tenant}\x00{address}"))

    async def locks(self, keys: Sequence[ThrottleKey], *, now: datetime) -> list[Lock]:
        """The locks in force on any of ``keys`` (one indexed read)."""
        stmt = select(F.c.kind, F.c.locked_until).where(F.c.key.in_([k.key for k in keys]), F.c.locked_until > now)
        return [
            Lock(kind=row.kind, retry_after=max(1, math.ceil((row.locked_until - now).total_seconds())))
            for row in await self.runner.read(stmt)
        ]

    async def fail(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        """Count one failure under each key: one ``INSERT … ON CONFLICT DO UPDATE`` for them all.

        The new count is computed by the database from the stored one (never read first), so concurrent failures
        in several processes all count.
        """
        await self.runner.write(self._failure_statement(keys, now))

    async def clear(self, key: ThrottleKey) -> None:
        """Forget the failures under ``key`` (after a successful login, or an operator's password reset)."""
        await self.runner.write(delete(F).where(F.c.key == key.key))

    async def sweep(self, *, now: datetime, batch: int = 500) -> int:
        """Delete up to ``batch`` rows whose window and lock are both over; how many went."""
        policy = self.policy
        dead = and_(
            F.c.window_started_at <= now - timedelta(seconds=policy.window_seconds),
            or_(F.c.locked_until.is_(None), F.c.locked_until <= now),
        )
        victims = select(F.c.id).where(dead).limit(batch).scalar_subquery()
        return (await self.runner.write(delete(F).where(F.c.id.in_(victims)))).rowcount

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
                "locked_until": now + timedelta(seconds=policy.lock_seconds)
                if _limit_of(k.kind, policy) <= 1
                else None,
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


def _limit_of(kind: KeyKind, policy: ThrottlePolicy) -> int:
    return policy.max_principal_failures if kind == "login" else policy.max_address_failures
