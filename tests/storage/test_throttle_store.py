"""Every clause of ``ThrottleStore``'s contract (``sessiongate.core.identity_store``), on each database alike: how a
charge, a refund and a failure count, when a key locks and unlocks, what a sweep takes, and that concurrent counts
are all counted."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from sessiongate.core.identity_store import Charge, Locked, ThrottleKey, ThrottlePolicy, ThrottleStore
from sessiongate.storage.throttle_store import SqlThrottleStore
from tests.storage.conftest import Backend
from tests.storage.test_faults import assert_clean

pytestmark = pytest.mark.anyio

POLICY = ThrottlePolicy(max_principal_failures=3, max_address_failures=5, window_seconds=600, lock_seconds=300)
LOGIN = ThrottleKey("login", "digest-of-a-login")
ADDRESS = ThrottleKey("address", "digest-of-an-address")
LOCK = timedelta(seconds=POLICY.lock_seconds)


def store_of(backend: Backend, policy: ThrottlePolicy = POLICY) -> ThrottleStore:
    """As ``IdentityService`` builds it in the gateway: over the shared runner, under the policy."""
    return SqlThrottleStore(backend.engine, backend.runner, policy)


@pytest.fixture
def store(backend: Backend) -> ThrottleStore:
    return store_of(backend)


async def counted(backend: Backend, key: ThrottleKey) -> list[tuple]:
    """The key's row as stored: its count and whether a lock is set."""
    return await backend.rows(
        "SELECT count, locked_until IS NOT NULL FROM sg_login_failure WHERE key = :key", key=key.key
    )


# charge


async def test_charges_count_up_to_the_limit_whose_charge_locks_the_key_for_the_lock_time(store, backend):
    for n in range(1, POLICY.max_principal_failures):
        assert await store.charge(LOGIN, now=backend.now) == Charge(count=n, locked_until=None)
        assert await store.locked([LOGIN], now=backend.now) == []
    locking = await store.charge(LOGIN, now=backend.now)
    assert locking == Charge(count=POLICY.max_principal_failures, locked_until=backend.now + LOCK)
    assert await store.locked([LOGIN, ADDRESS], now=backend.now) == [Locked(kind="login", until=backend.now + LOCK)]


async def test_charges_under_a_lock_count_above_the_limit_and_leave_the_lock_as_it_was(store, backend):
    for _ in range(POLICY.max_principal_failures):
        await store.charge(LOGIN, now=backend.now)
    locked_until = backend.now + LOCK
    backend.clock.advance(10)
    for n in (1, 2):
        refused = await store.charge(LOGIN, now=backend.now)
        assert refused == Charge(count=POLICY.max_principal_failures + n, locked_until=locked_until)


async def test_a_lock_ends_at_its_time_and_the_count_starts_afresh(store, backend):
    for _ in range(POLICY.max_principal_failures + 2):
        await store.charge(LOGIN, now=backend.now)
    backend.clock.advance(POLICY.lock_seconds - 0.001)
    assert len(await store.locked([LOGIN], now=backend.now)) == 1
    backend.clock.advance(0.001)
    assert await store.locked([LOGIN], now=backend.now) == []  # a lock ends at its instant
    assert await store.charge(LOGIN, now=backend.now) == Charge(count=1, locked_until=None)


async def test_a_window_that_is_over_starts_the_count_afresh(store, backend):
    for _ in range(POLICY.max_principal_failures - 1):
        await store.charge(LOGIN, now=backend.now)
    backend.clock.advance(POLICY.window_seconds)
    assert await store.charge(LOGIN, now=backend.now) == Charge(count=1, locked_until=None)
    assert await store.charge(LOGIN, now=backend.now) == Charge(count=2, locked_until=None)


async def test_a_limit_of_one_locks_at_the_first_charge_and_failure(backend):
    store = store_of(backend, ThrottlePolicy(max_principal_failures=1, max_address_failures=1, lock_seconds=60))
    assert await store.charge(LOGIN, now=backend.now) == Charge(
        count=1, locked_until=backend.now + timedelta(seconds=60)
    )
    await store.fail([ADDRESS], now=backend.now)
    assert sorted(lock.kind for lock in await store.locked([LOGIN, ADDRESS], now=backend.now)) == ["address", "login"]


async def test_each_kind_of_key_has_its_own_limit(store, backend):
    for n in range(1, POLICY.max_address_failures):
        assert await store.charge(ADDRESS, now=backend.now) == Charge(count=n, locked_until=None)
    last = await store.charge(ADDRESS, now=backend.now)
    assert last == Charge(count=POLICY.max_address_failures, locked_until=backend.now + LOCK)


# refund, clear


async def test_a_refund_takes_back_one_charge_and_the_lock_it_no_longer_reaches_never_below_zero(store, backend):
    for _ in range(POLICY.max_principal_failures):
        await store.charge(LOGIN, now=backend.now)
    await store.refund(LOGIN, now=backend.now)
    assert await counted(backend, LOGIN) == [(POLICY.max_principal_failures - 1, False)]
    assert await store.locked([LOGIN], now=backend.now) == []
    for _ in range(POLICY.max_principal_failures):
        await store.refund(LOGIN, now=backend.now)
    assert await counted(backend, LOGIN) == [(0, False)]
    await store.refund(ADDRESS, now=backend.now)  # never charged: nothing to take back, nothing stored
    assert await counted(backend, ADDRESS) == []


async def test_a_refund_above_the_limit_keeps_the_lock(store, backend):
    for _ in range(POLICY.max_principal_failures + 1):
        await store.charge(LOGIN, now=backend.now)
    await store.refund(LOGIN, now=backend.now)
    assert await counted(backend, LOGIN) == [(POLICY.max_principal_failures, True)]


async def test_clear_forgets_a_key_and_clear_and_refund_does_both_at_once(store, backend):
    other = ThrottleKey("login", "another-login")
    for key in (LOGIN, ADDRESS, ADDRESS, other):
        await store.charge(key, now=backend.now)
    await store.clear_and_refund(LOGIN, ADDRESS, now=backend.now)
    assert (await counted(backend, LOGIN), await counted(backend, ADDRESS)) == ([], [(1, False)])
    await store.clear(other)
    assert await counted(backend, other) == []
    assert len(await backend.rows("SELECT key FROM sg_login_failure")) == 1


@pytest.mark.parametrize("fault", ["refused", "connection-lost"])
async def test_clear_and_refund_is_one_transaction(store, backend, fault):
    await store.charge(LOGIN, now=backend.now)
    await store.charge(ADDRESS, now=backend.now)
    await backend.inject("sg_login_failure", "UPDATE", "NEW.kind = 'address'", fault=fault)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the driver raised, as it raised it
        await store.clear_and_refund(LOGIN, ADDRESS, now=backend.now)
    assert_clean(backend, caught.value, fault)
    await backend.heal("sg_login_failure")
    assert (await counted(backend, LOGIN), await counted(backend, ADDRESS)) == ([(1, False)], [(1, False)])


# fail


async def test_a_failure_counts_under_every_key_at_once_and_locks_each_at_its_limit(store, backend):
    for _ in range(POLICY.max_principal_failures - 1):
        await store.fail([LOGIN, ADDRESS], now=backend.now)
    assert await store.locked([LOGIN, ADDRESS], now=backend.now) == []
    await store.fail([LOGIN, ADDRESS], now=backend.now)
    assert await store.locked([LOGIN, ADDRESS], now=backend.now) == [Locked(kind="login", until=backend.now + LOCK)]
    assert await counted(backend, ADDRESS) == [(POLICY.max_principal_failures, False)]


async def test_a_failure_after_the_window_counts_from_one_and_ends_nothing_in_force(store, backend):
    for _ in range(POLICY.max_principal_failures):
        await store.fail([LOGIN], now=backend.now)
    backend.clock.advance(POLICY.lock_seconds)  # the lock is over, the window is not
    await store.fail([LOGIN], now=backend.now)
    assert await counted(backend, LOGIN) == [(1, False)]
    await store.fail([ADDRESS], now=backend.now)
    backend.clock.advance(POLICY.window_seconds)
    await store.fail([ADDRESS], now=backend.now)
    assert await counted(backend, ADDRESS) == [(1, False)]


async def test_concurrent_charges_and_failures_are_all_counted(store, backend):
    await asyncio.gather(*[store.fail([ADDRESS], now=backend.now) for _ in range(10)])
    charges = await asyncio.gather(*[store.charge(ADDRESS, now=backend.now) for _ in range(10)])
    assert sorted(c.count for c in charges) == list(range(11, 21))
    assert await counted(backend, ADDRESS) == [(20, True)]


# locked, sweep


async def test_locked_answers_only_the_keys_asked_about(store, backend):
    for _ in range(POLICY.max_principal_failures):
        await store.fail([LOGIN], now=backend.now)
    assert await store.locked([ADDRESS, ThrottleKey("login", "else")], now=backend.now) == []


async def test_a_sweep_takes_only_keys_whose_window_and_lock_are_both_over(store, backend):
    spent, locked, fresh = (ThrottleKey("login", name) for name in ("spent", "locked", "fresh"))
    await store.fail([spent], now=backend.now)
    backend.clock.advance(POLICY.window_seconds - POLICY.lock_seconds + 1)
    for _ in range(POLICY.max_principal_failures):
        await store.fail([locked], now=backend.now)
    backend.clock.advance(POLICY.lock_seconds - 1)
    await store.fail([fresh], now=backend.now)
    # spent: window over, no lock; locked: window not over; fresh: window not over.
    assert await store.sweep(now=backend.now, batch=10) == 1
    backend.clock.advance(POLICY.window_seconds)  # now every window is over, and the lock too
    assert await store.sweep(now=backend.now, batch=1) == 1
    assert await store.sweep(now=backend.now, batch=10) == 1
    assert await store.sweep(now=backend.now, batch=10) == 0
