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
from datetime import datetime

import anyio
import msgspec

from sessiongate import meters
from sessiongate.core.identity_store import KeyKind, ThrottleKey, ThrottlePolicy, ThrottleStore
from sessiongate.tokens.opaque import Digester

__all__ = ("CreateBudget", "Lock", "Throttle", "ThrottleKey", "ThrottlePolicy")


class Lock(msgspec.Struct, frozen=True):
    """A refusal in force: what is locked, and for how many more whole seconds."""

    kind: KeyKind
    retry_after: int


class Throttle:
    """Charge attempts before they are checked, count failures, tell whether a key is locked, and forget a key.

    Args:
        store: Where the counts are kept (the database, so every process counts the same failures).
        digester: Keys the digests that stand for logins and addresses in the store.
        policy: The limits (the store's).
    """

    def __init__(self, store: ThrottleStore, digester: Digester, policy: ThrottlePolicy) -> None:
        self.store = store
        self.digester = digester
        self.policy = policy
        self._turns: dict[str, tuple[anyio.Lock, int]] = {}

    def login_key(self, tenant: str, login: str) -> ThrottleKey:
        """The key counting failures of one login: by login rather than principal, so unknown logins lock alike."""
        return ThrottleKey("login", self.digester.digest(f"login\x00{tenant}\x00{login}"))

    def address_key(self, tenant: str, address: str) -> ThrottleKey:
        """The key counting failures from one client address."""
        return ThrottleKey("address", self.digester.digest(f"address\x00{tenant}\x00{address}"))

    async def locks(self, keys: Sequence[ThrottleKey], *, now: datetime) -> list[Lock]:
        """The locks in force on any of ``keys`` (one indexed read)."""
        return [
            Lock(kind=found.kind, retry_after=_seconds_until(found.until, now))
            for found in await self.store.locked(keys, now=now)
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

        Each charge is one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` (:meth:`ThrottleStore.charge`): the
        database adds it to the stored count and answers the new one, so concurrent attempts in any number of
        processes are admitted no more often than the limit allows. The charge that reaches the limit is admitted and
        locks its key; later ones are refused until the lock ends. A refused address is not charged to the login; a
        refused login is refunded to the address, as no password was checked. A charge stands as a failure until
        :meth:`succeeded` refunds it.

        Returns:
            ``None`` when the attempt may be checked, else the lock that refuses it (the address's first).
        """
        if (refused := await self._charge(address, now)) is not None:
            return refused
        if (refused := await self._charge(login, now)) is not None:
            await self.store.refund(address, now=now)
        return refused

    async def succeeded(self, address: ThrottleKey, login: ThrottleKey, *, now: datetime) -> None:
        """The password was right: forget the login's failures and refund the address its charge, in one transaction."""
        await self.store.clear_and_refund(login, address, now=now)

    async def fail(self, keys: Sequence[ThrottleKey], *, now: datetime) -> None:
        """Count one failure under each key: one ``INSERT … ON CONFLICT DO UPDATE`` for them all.

        The new count is computed by the database from the stored one (never read first), so concurrent failures
        in several processes all count.
        """
        await self.store.fail(keys, now=now)

    async def clear(self, key: ThrottleKey) -> None:
        """Forget the failures under ``key`` (after a successful login, or an operator's password reset)."""
        await self.store.clear(key)

    async def sweep(self, *, now: datetime, batch: int = 500) -> int:
        """Delete up to ``batch`` rows whose window and lock are both over; how many went."""
        return await self.store.sweep(now=now, batch=batch)

    async def _charge(self, key: ThrottleKey, now: datetime) -> Lock | None:
        charged = await self.store.charge(key, now=now)
        if charged.count <= (limit := self.policy.limit(key.kind)):
            if charged.count == limit:
                meters.lock_reached(key.kind)  # a lock-out, if the password is wrong
            return None
        assert charged.locked_until is not None  # above the limit is only ever counted under a lock
        return Lock(kind=key.kind, retry_after=_seconds_until(charged.locked_until, now))


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


def _seconds_until(until: datetime, now: datetime) -> int:
    """Whole seconds from ``now`` to ``until``, at least one (a ``Retry-After``)."""
    return max(1, math.ceil((until - now).total_seconds()))
