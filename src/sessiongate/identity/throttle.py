"""Login throttling per login and per client address, counted in the database so it holds across processes.

An attempt is charged before its password is checked, by one atomic statement the database serialises, so no
concurrency and no number of processes gets more passwords checked than the limits allow; a success refunds it.
Creates that need no password are budgeted per client address in the process instead (:class:`CreateBudget`).
"""

from __future__ import annotations

import contextlib
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import anyio
import msgspec
from sqlalchemy import Connection, Executable, and_, case, delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate import meters
from sessiongate.storage.identity_tables import login_failures
from sessiongate.storage.runner import StatementRunner
from sessiongate.tokens.opaque import Digester

__all__ = ("CreateBudget", "Lock", "Throttle", "ThrottleKey", "ThrottlePolicy")

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
    """Charge attempts before they are checked, count failures, tell whether a key is locked, and forget a key.

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
        self._turns: dict[str, tuple[anyio.Lock, int]] = {}

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

    @contextlib.asynccontextmanager
    async def turn(self, key: ThrottleKey) -> AsyncIterator[None]:
        """Wait until no other attempt under ``key`` is being charged or checked in this process.

        So the attempts of one login are checked one at a time here: a flood on one account holds at most one hashing
        thread of each process, and right passwords sent at once never have more charges pending than there are
        processes (they would lock their own account otherwise).
        """
        lock, waiting = self._turns.get(key.key) or (anyio.Lock(), 0)
        self._turns[key.key] = (lock, waiting + 1)
        try:
            async with lock:
                yield
        finally:
            lock, waiting = self._turns[key.key]
            if waiting == 1:
                del self._turns[key.key]
            else:
                self._turns[key.key] = (lock, waiting - 1)

    async def reserve(self, address: ThrottleKey, login: ThrottleKey, *, now: datetime) -> Lock | None:
        """Charge one attempt to the client address, then to the login, before the password is checked.

        Each charge is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING``: the database adds it to the stored count
        and answers the new one, so concurrent attempts in any number of processes are admitted no more often than the
        limit allows. The charge that reaches the limit is admitted and locks its key; later ones are refused until the
        lock ends. A refused address is not charged to the login; a refused login is refunded to the address, as no
        password was checked. A charge stands as a failure until :meth:`succeeded` refunds it.

        Returns:
            ``None`` when the attempt may be checked, else the lock that refuses it (the address's first).
        """
        if (refused := await self._charge(address, now)) is not None:
            return refused
        if (refused := await self._charge(login, now)) is not None:
            await self.runner.write(self._refund_statement(address, now))
        return refused

    async def succeeded(self, address: ThrottleKey, login: ThrottleKey, *, now: datetime) -> None:
        """The password was right: forget the login's failures and refund the address its charge, in one transaction."""

        def work(conn: Connection) -> None:
            conn.execute(delete(F).where(F.c.key == login.key))
            conn.execute(self._refund_statement(address, now))

        await self.runner.transaction(work)

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

    async def _charge(self, key: ThrottleKey, now: datetime) -> Lock | None:
        count, locked_until = (await self.runner.write(self._charge_statement(key, now))).rows[0]
        if count <= (limit := _limit_of(key.kind, self.policy)):
            if count == limit:
                meters.lock_reached(key.kind)  # a lock-out, if the password is wrong
            return None
        return Lock(kind=key.kind, retry_after=max(1, math.ceil((locked_until - now).total_seconds())))

    def _charge_statement(self, key: ThrottleKey, now: datetime) -> Executable:
        policy, limit = self.policy, _limit_of(key.kind, self.policy)
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
        limit = _limit_of(key.kind, self.policy)
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


class CreateBudget:
    """How many creates each client address may make: ``limit`` per ``window`` seconds, in this process.

    A token bucket per address: it holds up to ``limit`` creates and refills at ``limit / window`` a second, so a
    client may burst up to the limit and then goes at the average rate. In memory, not in the database, so that a
    create costs no extra write (zelf's create runs thousands a second); with several processes, each has its own
    budget. The addresses seen last are kept, at most ``addresses`` of them: one evicted had not created for the
    longest time, so its bucket had most likely refilled anyway.

    Args:
        limit: Creates per window (at least 1).
        window: Seconds.
        clock: Seconds, on any scale (the service's clock, so tests need not sleep); going back refills nothing.
        addresses: How many addresses' buckets are kept.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float], *, addresses: int = 16_384) -> None:
        self.limit = limit
        self.rate = limit / window
        self._clock = clock
        self._addresses = addresses
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, address: str) -> int | None:
        """Spend one create of ``address``: ``None`` if it had one, else the whole seconds until it has one."""
        now = self._clock()
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self._addresses:
                self._buckets.popitem(last=False)
            self._buckets[address] = [self.limit - 1.0, now]
            return None
        self._buckets.move_to_end(address)
        tokens = min(float(self.limit), bucket[0] + max(0.0, now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return None
        bucket[0] = tokens
        return max(1, math.ceil((1 - tokens) / self.rate))


def _limit_of(kind: KeyKind, policy: ThrottlePolicy) -> int:
    return policy.max_principal_failures if kind == "login" else policy.max_address_failures
