from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import select

from sessiongate.core.errors import (
    AccountDisabled,
    AccountLocked,
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    SessionRevoked,
    Unauthenticated,
    Unavailable,
)
from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.identity import IdentityService, ThrottlePolicy
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage.identity_tables import auth_tokens, login_failures, principals
from sessiongate.storage.tables import metadata

pytestmark = pytest.mark.anyio

FIXED = ExpiryPolicy(ttl=3600, touch_interval=0)
POLICY = ThrottlePolicy(max_principal_failures=3, max_address_failures=5, window_seconds=600, lock_seconds=300)
ADDRESS = "192.0.2.1"
IDENTITY_TABLES = {"sg_principal", "sg_auth_token", "sg_login_failure"}


class CountingHasher(PasswordHasher):
    def __init__(self, **kwargs) -> None:
        super().__init__(**({"time_cost": 1, "memory_cost": 8, "parallelism": 1} | kwargs))
        self.verifications = 0

    def verify(self, stored, password) -> bool:
        self.verifications += 1
        return super().verify(stored, password)


@asynccontextmanager
async def opened(database_url, clock, *, migrate=False) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=migrate) as services:
        yield services


class GatedHasher(CountingHasher):
    """Verifications wait for ``gate``; ``entered`` tells that one has begun."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.gate = threading.Event(), threading.Event()

    def verify(self, stored, password) -> bool:
        self.entered.set()
        self.gate.wait(30)
        return super().verify(stored, password)


def identity_of(services: Services, policy=POLICY, hasher=None, **passwords) -> IdentityService:
    return IdentityService(
        services.engine,
        services.sessions,
        services.digester,
        services.clock,
        policy,
        hasher=hasher or CountingHasher(),
        runner=services.runner,
        **passwords,
    )


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with opened(database_url, clock, migrate=True) as built:
        yield built


@pytest.fixture
async def other_process(services, database_url, clock) -> AsyncIterator[Services]:
    async with opened(database_url, clock) as built:
        yield built


@pytest.fixture
def identity(services) -> IdentityService:
    return identity_of(services)


async def add(identity: IdentityService, login="ada", password="correct horse", **kw):
    return await identity.add_principal(login=login, password=password, **kw)


async def log_in(identity: IdentityService, login="ada", password="correct horse", address=ADDRESS):
    return await identity.authenticate_password(
        tenant="default", login=login, password=password, client_address=address
    )


async def session_of(services: Services, principal_id: str):
    return await services.sessions.create(
        NewSession(dialect="test", principal_id=principal_id), FIXED, with_secret=True
    )


async def test_a_principal_logs_in_with_its_password(identity):
    added = await add(identity, email="ada@example.org", display_name="Ada", roles=["admin"], permissions=["p1"])
    principal = await log_in(identity)
    assert principal == added
    assert (principal.login, principal.email, principal.roles, principal.permissions) == (
        "ada",
        "ada@example.org",
        ("admin",),
        ("p1",),
    )
    assert uuid.UUID(principal.id)


async def test_unknown_login_and_wrong_password_give_the_same_error_after_the_same_work(services):
    hasher = CountingHasher()
    identity = identity_of(services, hasher=hasher)
    await add(identity)
    failures = []
    for login, password in [("nobody", "correct horse"), ("ada", "wrong horse")]:
        before = hasher.verifications
        with pytest.raises(Unauthenticated) as caught:
            await log_in(identity, login=login, password=password)
        failures.append((type(caught.value), caught.value.message, hasher.verifications - before))
    assert failures[0] == failures[1] == (Unauthenticated, "invalid credentials", 1)


async def test_a_principal_without_a_password_cannot_log_in_by_password(identity):
    await identity.add_principal(login="device-7")
    with pytest.raises(Unauthenticated, match="invalid credentials"):
        await log_in(identity, login="device-7", password="anything")


async def test_repeated_failures_lock_the_login_across_processes(services, other_process):
    first, second = identity_of(services), identity_of(other_process)
    await add(first)
    for attempt in range(POLICY.max_principal_failures):
        with pytest.raises(Unauthenticated):
            await log_in((first, second)[attempt % 2], password="wrong", address=f"198.51.100.{attempt}")
    for identity in (first, second):
        with pytest.raises(AccountLocked) as caught:
            await log_in(identity, address="203.0.113.9")
        assert caught.value.headers == {"Retry-After": str(int(POLICY.lock_seconds))}


async def test_an_unknown_login_locks_like_a_known_one(identity):
    for _ in range(POLICY.max_principal_failures):
        with pytest.raises(Unauthenticated):
            await log_in(identity, login="ghost", password="wrong")
    with pytest.raises(AccountLocked):
        await log_in(identity, login="ghost", password="wrong")


async def test_repeated_failures_from_one_address_are_rate_limited_across_processes(services, other_process):
    first, second = identity_of(services), identity_of(other_process)
    await add(first)
    for attempt in range(POLICY.max_address_failures):
        with pytest.raises(Unauthenticated):
            await log_in((first, second)[attempt % 2], login=f"user-{attempt}", password="wrong")
    for identity in (first, second):
        with pytest.raises(RateLimited):
            await log_in(identity)
    assert await log_in(first, address="203.0.113.9")


async def test_a_lock_ends_after_its_time(identity, clock):
    await add(identity)
    for _ in range(POLICY.max_principal_failures):
        with pytest.raises(Unauthenticated):
            await log_in(identity, password="wrong")
    clock.advance(POLICY.lock_seconds - 1)
    with pytest.raises(AccountLocked) as caught:
        await log_in(identity)
    assert caught.value.headers["Retry-After"] == "1"
    clock.advance(1)
    assert await log_in(identity)


async def test_after_a_lock_the_count_starts_again(identity, clock):
    await add(identity)
    for _ in range(POLICY.max_principal_failures):
        with pytest.raises(Unauthenticated):
            await log_in(identity, password="wrong")
    clock.advance(POLICY.lock_seconds)
    for attempt in range(POLICY.max_principal_failures - 1):
        await log_in_fails(identity, address=f"198.51.100.{attempt}")
    assert await log_in(identity)


async def test_failures_older_than_the_window_are_forgotten(identity, clock):
    await add(identity)
    for _ in range(POLICY.max_principal_failures - 1):
        with pytest.raises(Unauthenticated):
            await log_in(identity, password="wrong")
    clock.advance(POLICY.window_seconds)
    with pytest.raises(Unauthenticated):
        await log_in(identity, password="wrong")
    assert await log_in(identity)


async def test_a_successful_login_clears_the_principals_failures_but_not_the_addresss(identity):
    await add(identity)
    for attempt in range(POLICY.max_address_failures):
        await log_in_fails(identity, address="198.51.100.1")
        if attempt % 2:
            await log_in(identity, address="198.51.100.2")
    with pytest.raises(RateLimited):
        await log_in(identity, address="198.51.100.1")


async def test_concurrent_failures_are_all_counted(services, other_process):
    identities = [identity_of(services), identity_of(other_process)]
    key = identities[0].throttle.login_key("default", "ada")
    now = services.clock()
    await asyncio.gather(*[identities[i % 2].throttle.fail([key], now=now) for i in range(20)])
    rows = await services.runner.read(select(login_failures.c.count).where(login_failures.c.key == key.key))
    assert [r.count for r in rows] == [20]


async def test_parallel_wrong_passwords_are_verified_no_more_often_than_the_limit_across_processes(
    services, other_process
):
    hashers = [CountingHasher(), CountingHasher()]
    identities = [identity_of(services, hasher=hashers[0]), identity_of(other_process, hasher=hashers[1])]
    await add(identities[0])
    guesses = [log_in(identities[i % 2], password=f"guess-{i}", address=f"198.51.100.{i}") for i in range(20)]
    outcomes = Counter(type(r) for r in await asyncio.gather(*guesses, return_exceptions=True))
    limit = POLICY.max_principal_failures
    assert (hashers[0].verifications + hashers[1].verifications, outcomes) == (
        limit,
        {Unauthenticated: limit, AccountLocked: 20 - limit},
    )
    for identity in identities:
        with pytest.raises(AccountLocked):
            await log_in(identity, address="203.0.113.9")


async def test_parallel_guesses_from_one_address_are_verified_no_more_often_than_its_limit(services):
    hasher = CountingHasher()
    identity = identity_of(services, hasher=hasher)
    await add(identity)
    guesses = [log_in(identity, login=f"user-{i}", password="wrong") for i in range(20)]
    outcomes = Counter(type(r) for r in await asyncio.gather(*guesses, return_exceptions=True))
    assert hasher.verifications == outcomes[Unauthenticated] == POLICY.max_address_failures
    assert set(outcomes) <= {Unauthenticated, RateLimited, Unavailable}
    with pytest.raises(RateLimited):
        await log_in(identity)
    assert await log_in(identity, address="203.0.113.9")


async def test_the_right_password_sent_many_times_at_once_never_locks_its_account(services, other_process):
    identities = [identity_of(services), identity_of(other_process)]
    await add(identities[0])
    logins = [log_in(identities[i % 2]) for i in range(4 * POLICY.max_principal_failures)]
    assert len(await asyncio.gather(*logins)) == 4 * POLICY.max_principal_failures


async def test_a_login_refused_for_its_lock_costs_its_address_nothing(identity):
    await add(identity)
    for attempt in range(POLICY.max_principal_failures):
        await log_in_fails(identity, address=f"198.51.100.{attempt}")
    for _ in range(2 * POLICY.max_address_failures):
        with pytest.raises(AccountLocked):
            await log_in(identity, password="wrong")
    for attempt in range(POLICY.max_address_failures - 1):
        await log_in_fails(identity, login=f"user-{attempt}")
    await log_in_fails(identity, login="last")
    with pytest.raises(RateLimited):
        await log_in(identity, login="one-too-many", password="wrong")


async def test_a_charge_refused_for_its_address_is_not_charged_to_the_login(identity, services, clock):
    throttle = identity.throttle
    address, login = throttle.address_key("default", ADDRESS), throttle.login_key("default", "ada")
    for attempt in range(POLICY.max_address_failures):
        assert await throttle.reserve(address, throttle.login_key("default", f"other-{attempt}"), now=clock()) is None
    refused = await throttle.reserve(address, login, now=clock())
    assert (refused.kind, refused.retry_after) == ("address", POLICY.lock_seconds)
    assert await services.runner.read(select(login_failures).where(login_failures.c.key == login.key)) == []


async def test_a_charge_refused_for_its_login_is_refunded_to_the_address(identity, services, clock):
    throttle = identity.throttle
    address, login = throttle.address_key("default", ADDRESS), throttle.login_key("default", "ada")
    for attempt in range(POLICY.max_principal_failures):
        assert await throttle.reserve(throttle.address_key("default", f"{attempt}"), login, now=clock()) is None
    refused = await throttle.reserve(address, login, now=clock())
    assert (refused.kind, refused.retry_after) == ("login", POLICY.lock_seconds)
    counted = select(login_failures.c.count).where(login_failures.c.key == address.key)
    assert [row.count for row in await services.runner.read(counted)] == [0]


async def test_logins_past_the_hashing_queue_are_refused_at_once_and_charge_nothing(services):
    hasher = GatedHasher()
    identity = identity_of(services, hasher=hasher, password_workers=1, password_queue=0)
    await add(identity)
    checking = asyncio.ensure_future(log_in(identity, password="wrong"))
    await anyio.to_thread.run_sync(hasher.entered.wait, 30)
    try:
        with pytest.raises(Unavailable) as caught:
            await log_in(identity, login="bob", password="wrong", address="198.51.100.1")
        assert caught.value.headers == {"Retry-After": "1"}
    finally:
        hasher.gate.set()
    with pytest.raises(Unauthenticated):
        await checking
    # Only the attempt that was checked was charged (to its address and its login); the refused one, to neither.
    assert sorted(row.kind for row in await services.runner.read(select(login_failures.c.kind))) == ["address", "login"]
    assert await log_in(identity)  # the place is free again


async def test_waiting_turns_leave_nothing_behind(identity):
    await add(identity)
    attempts = [log_in(identity, login=f"user-{i % 4}", password="wrong", address=f"198.51.100.{i}") for i in range(12)]
    await asyncio.gather(*attempts, return_exceptions=True)
    assert identity.throttle._turns == {}


async def test_the_throttle_table_keeps_no_login_or_address_in_clear(identity, services):
    with pytest.raises(Unauthenticated):
        await log_in(identity, login="ghost", password="wrong")
    rows = await services.runner.read(select(login_failures))
    assert len(rows) == 2
    assert all("ghost" not in str(value) and ADDRESS not in str(value) for row in rows for value in row)


async def test_swept_failure_rows_are_only_those_that_no_longer_count(identity, clock):
    await log_in_fails(identity, login="old")
    clock.advance(POLICY.window_seconds)
    await log_in_fails(identity, login="new", address="198.51.100.7")
    assert await identity.sweep_failures() == 2
    assert await identity.sweep_failures() == 0


async def log_in_fails(identity, **kw):
    with pytest.raises(Unauthenticated):
        await log_in(identity, password="wrong", **kw)


async def test_a_hash_with_old_parameters_is_replaced_at_the_next_login(services):
    old = identity_of(services, hasher=CountingHasher(time_cost=1))
    await add(old)
    new_hasher = CountingHasher(time_cost=2)
    new = identity_of(services, hasher=new_hasher)

    async def stored() -> str:
        return (await services.runner.read(select(principals.c.password_hash)))[0].password_hash

    before = await stored()
    assert new_hasher.check_needs_rehash(before)
    await log_in(new)
    after = await stored()
    assert after != before
    assert not new_hasher.check_needs_rehash(after)
    assert await log_in(old)
    assert await stored() != after  # the old parameters are current for `old`, so it changes it back


async def test_a_hash_with_current_parameters_is_left_alone(identity, services):
    await add(identity)
    before = (await services.runner.read(select(principals.c.password_hash)))[0].password_hash
    await log_in(identity)
    assert (await services.runner.read(select(principals.c.password_hash)))[0].password_hash == before


async def test_disabling_revokes_every_session_and_refuses_the_right_password_only(identity, services):
    principal = await add(identity)
    created = [await session_of(services, principal.id) for _ in range(2)]
    await identity.disable(login="ada")
    for c in created:
        with pytest.raises(SessionRevoked):
            await services.sessions.resolve_secret(c.secret, FIXED)
    with pytest.raises(AccountDisabled):
        await log_in(identity)
    with pytest.raises(Unauthenticated, match="invalid credentials"):
        await log_in(identity, password="wrong")
    assert (await identity.by_login(tenant="default", login="ada")).disabled
    await identity.enable(login="ada")
    assert not (await log_in(identity)).disabled


async def test_a_new_password_revokes_every_other_session(identity, services):
    principal = await add(identity)
    keep, drop = await session_of(services, principal.id), await session_of(services, principal.id)
    await identity.set_password(login="ada", password="battery staple", keep_session_id=keep.session.id)
    assert await services.sessions.resolve_secret(keep.secret, FIXED)
    with pytest.raises(SessionRevoked):
        await services.sessions.resolve_secret(drop.secret, FIXED)
    with pytest.raises(Unauthenticated):
        await log_in(identity)
    assert await log_in(identity, password="battery staple")


async def test_a_new_password_lifts_the_lock_on_the_login(identity):
    await add(identity)
    for _ in range(POLICY.max_principal_failures):
        await log_in_fails(identity)
    await identity.set_password(login="ada", password="battery staple")
    assert await log_in(identity, password="battery staple")


async def test_changing_an_unknown_principal_is_not_found(identity):
    for change in (identity.disable, identity.enable, identity.add_auth_token, identity.revoke_auth_tokens):
        with pytest.raises(NotFound):
            await change(login="nobody")
    with pytest.raises(NotFound):
        await identity.set_password(login="nobody", password="whatever")


async def test_an_auth_token_is_shown_once_and_only_its_digest_is_stored(identity, services):
    principal = await add(identity)
    token = await identity.add_auth_token(login="ada")
    assert len(token) >= 43
    rows = await services.runner.read(select(auth_tokens))
    assert len(rows) == 1
    assert all(token not in str(value) for value in rows[0])
    assert rows[0].digest == services.digester.digest(token)
    assert rows[0].last_used_at is None
    holder = await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
    assert holder == principal
    assert (await services.runner.read(select(auth_tokens.c.last_used_at)))[0].last_used_at == services.clock()


async def test_an_auth_tokens_use_is_written_at_most_once_a_minute(identity, services, clock):
    await add(identity)
    token = await identity.add_auth_token(login="ada")

    async def last_use():
        return (await services.runner.read(select(auth_tokens.c.last_used_at)))[0].last_used_at

    await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
    first = services.clock()
    assert await last_use() == first
    clock.advance(59)
    await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
    assert await last_use() == first  # within the minute: no write
    clock.advance(1)
    await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
    assert await last_use() == services.clock()


async def test_an_unknown_or_foreign_auth_token_is_rejected(identity):
    await add(identity)
    token = await identity.add_auth_token(login="ada")
    for tenant, presented in [("default", token + "x"), ("other", token)]:
        with pytest.raises(Unauthenticated, match="invalid credentials"):
            await identity.authenticate_token(tenant=tenant, token=presented, client_address=ADDRESS)


async def test_guessing_auth_tokens_is_rate_limited(identity):
    await add(identity)
    token = await identity.add_auth_token(login="ada")
    for attempt in range(POLICY.max_address_failures):
        with pytest.raises(Unauthenticated):
            await identity.authenticate_token(tenant="default", token=f"guess-{attempt}", client_address=ADDRESS)
    with pytest.raises(RateLimited):
        await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)


async def test_auth_tokens_of_a_disabled_principal_are_refused(identity):
    await add(identity)
    token = await identity.add_auth_token(login="ada")
    await identity.disable(login="ada")
    with pytest.raises(AccountDisabled):
        await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)


async def test_auth_tokens_can_be_replaced_and_revoked(identity):
    await add(identity)
    first = await identity.add_auth_token(login="ada")
    second = await identity.add_auth_token(login="ada")
    third = await identity.add_auth_token(login="ada", replace=True)
    for token, works in [(first, False), (second, False), (third, True)]:
        if works:
            assert await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
        else:
            with pytest.raises(Unauthenticated):
                await identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
    assert await identity.revoke_auth_tokens(login="ada") == 1
    with pytest.raises(Unauthenticated):
        await identity.authenticate_token(tenant="default", token=third, client_address=ADDRESS)


async def test_upsert_creates_then_updates_the_display_name(identity):
    created, was_created = await identity.upsert_principal(tenant="t1", principal_id="u-1", display_name="First")
    assert was_created
    assert (created.id, created.login, created.display_name) == ("u-1", "u-1", "First")
    updated, was_created = await identity.upsert_principal(tenant="t1", principal_id="u-1", display_name="Second")
    assert not was_created
    assert (updated.display_name, updated.created_at) == ("Second", created.created_at)
    kept, _ = await identity.upsert_principal(tenant="t1", principal_id="u-1")
    assert kept.display_name == "Second"
    assert await identity.get(tenant="t1", principal_id="u-1") == kept
    assert await identity.get(tenant="default", principal_id="u-1") is None


async def test_upsert_refuses_a_login_that_belongs_to_another_principal(identity):
    await identity.upsert_principal(tenant="t1", principal_id="u-1")
    with pytest.raises(Conflict):
        await identity.upsert_principal(tenant="t1", principal_id="u-2", login="u-1")


async def test_a_login_or_an_id_exists_once_per_tenant(identity):
    await add(identity, principal_id="p-1")
    with pytest.raises(Conflict, match="login 'ada'"):
        await add(identity, principal_id="p-2")
    with pytest.raises(Conflict, match="id 'p-1'"):
        await add(identity, login="bea", principal_id="p-1")
    assert await add(identity, tenant="other", principal_id="p-1")
    assert [(p.tenant, p.login) for p in await identity.list()] == [("default", "ada"), ("other", "ada")]
    assert [p.tenant for p in await identity.list(tenant="other")] == ["other"]


async def test_bad_members_are_invalid_requests(identity):
    for kw in [{"login": ""}, {"login": "x" * 257}, {"password": ""}, {"roles": "admin"}, {"principal_id": ""}]:
        with pytest.raises(InvalidRequest):
            await identity.add_principal(**({"login": "ada"} | kw))


async def test_names_with_a_nul_character_are_refused_or_unknown_on_every_database(identity):
    with pytest.raises(InvalidRequest):
        await identity.add_principal(login="a\x00b")
    assert await identity.get(tenant="default", principal_id="a\x00b") is None
    assert await identity.by_login(tenant="default", login="a\x00b") is None
    with pytest.raises(Unauthenticated, match="invalid credentials"):
        await log_in(identity, login="a\x00b")


async def test_adding_a_principal_if_absent_creates_it_once(services, other_process):
    first, second = identity_of(services), identity_of(other_process)
    outcomes = await asyncio.gather(
        *[
            (first, second)[i % 2].add_principal_if_absent(login="admin", password="s3cret-pass", roles=("admin",))
            for i in range(4)
        ]
    )
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
    assert len({principal.id for principal, _ in outcomes}) == 1
    assert [p.roles for p in await first.list()] == [("admin",)]


async def test_the_migration_matches_the_tables(services):
    # SQLite reflects the GUID columns as NUMERIC, so types are compared on PostgreSQL only.
    compare_type = services.engine.dialect.name == "postgresql"

    def differences(connection):
        return compare_metadata(MigrationContext.configure(connection, opts={"compare_type": compare_type}), metadata)

    async with services.engine.connect() as conn:
        diffs = await conn.run_sync(differences)
    assert [d for d in diffs if any(name in repr(d) for name in IDENTITY_TABLES)] == []


def test_a_first_admin_comes_from_the_settings_once(make_client):
    settings = {
        "dialects": ("zelf",),
        "admin_login": "root",
        "admin_password": "first-admin-pass",
        "admin_email": "root@example.org",
    }
    for _ in range(2):
        client = make_client(**settings)
    identity = client.app.state.services.identity
    admins = client.blocking_portal.call(lambda: identity.list(tenant="default"))
    assert [(p.login, p.email, p.roles) for p in admins] == [("root", "root@example.org", ("admin",))]
    principal = client.blocking_portal.call(
        lambda: identity.authenticate_password(
            tenant="default", login="root", password="first-admin-pass", client_address=ADDRESS
        )
    )
    assert principal.login == "root"


async def test_the_logins_of_a_page_of_principals_are_read_at_once_and_only_in_their_tenant(identity):
    ada = await identity.add_principal(login="ada@example.org")
    bob = await identity.add_principal(login="bob@example.org")
    other = await identity.add_principal(tenant="other", login="eve@example.org")
    asked = [ada.id, bob.id, other.id, "no-such-id", "nul\x00id"]
    assert await identity.logins(tenant="default", principal_ids=asked) == {
        ada.id: "ada@example.org",
        bob.id: "bob@example.org",
    }
    assert await identity.logins(tenant="default", principal_ids=[]) == {}
