"""Every clause of ``PrincipalStore``'s contract (``sessiongate.core.identity_store``), on each database alike: what
each method returns, changes and leaves alone, a taken login or id answered as a result, and a fault never mistaken
for one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import msgspec
import pytest

from sessiongate.core.identity_store import GATEWAY_REALM, PrincipalDraft, PrincipalStore, StoredPrincipal, Upserted
from sessiongate.core.models import Principal
from sessiongate.storage.driver_query import driver_query
from sessiongate.storage.principal_store import _BY_PUBLIC_ID, SqlPrincipalStore
from tests.storage.conftest import Backend, ThroughSqlAlchemy
from tests.storage.test_faults import assert_clean

pytestmark = pytest.mark.anyio

REALM = "amity"


@pytest.fixture
def store(backend: Backend) -> PrincipalStore:
    """As ``IdentityService`` builds it in the gateway: over the shared runner."""
    return SqlPrincipalStore(backend.engine, backend.runner)


def draft(backend: Backend, login: str = "ada", **fields) -> PrincipalDraft:
    values = {
        "tenant": "default",
        "public_id": f"id-{login}",
        "login": login,
        "email": None,
        "display_name": None,
        "roles": [],
        "permissions": [],
        "password_hash": None,
        "realm": GATEWAY_REALM,
        "last_used_at": None,
        "created_at": backend.now,
    }
    return PrincipalDraft(**(values | fields))


def principal_of(new: PrincipalDraft) -> Principal:
    """The principal ``new`` must be stored as."""
    return Principal(
        id=new.public_id,
        tenant=new.tenant,
        login=new.login,
        email=new.email,
        display_name=new.display_name,
        roles=tuple(new.roles),
        permissions=tuple(new.permissions),
        created_at=new.created_at,
        updated_at=new.created_at,
        disabled=False,
        realm=new.realm,
        last_used_at=new.last_used_at,
    )


async def add(store: PrincipalStore, backend: Backend, login: str = "ada", **fields) -> Principal:
    added = await store.insert(draft(backend, login, **fields))
    assert added is not None
    return added


async def count(backend: Backend, table: str) -> int:
    return (await backend.rows(f"SELECT count(*) FROM {table}"))[0][0]


# insert, insert_if_absent, upsert


async def test_insert_returns_the_principal_exactly_as_drafted_every_member_and_microsecond_kept(store, backend):
    new = draft(
        backend,
        "ada@example.org",
        email="ada@example.org",
        display_name="Ada ☃",
        roles=["admin", "ops"],
        permissions=["p1"],
        password_hash="$argon2id$hash",
        realm=REALM,
        last_used_at=backend.now - timedelta(microseconds=1),
    )
    added = await store.insert(new)
    assert backend.now.microsecond == 654_321
    assert added == principal_of(new)
    assert await store.get(tenant="default", public_id=new.public_id) == added
    found = await store.credentials(tenant="default", login=new.login)
    assert found is not None
    assert (found.principal, found.password_hash) == (added, "$argon2id$hash")


@pytest.mark.parametrize("taken", ["login", "id"])
async def test_insert_answers_none_for_a_login_or_id_taken_in_the_tenant_and_stores_nothing(store, backend, taken):
    first = await add(store, backend, "ada")
    clash = (
        draft(backend, "ada", public_id="other-id") if taken == "login" else draft(backend, "bea", public_id=first.id)
    )
    assert await store.insert(clash) is None
    assert await store.list_all() == [first]
    assert await add(store, backend, "ada", tenant="other")  # unique per tenant only


async def test_insert_if_absent_stores_once_and_then_leaves_the_stored_one_alone(store, backend):
    first = await store.insert_if_absent(draft(backend, "admin", roles=["admin"]))
    assert first == principal_of(draft(backend, "admin", roles=["admin"]))
    again = draft(backend, "admin", public_id="another", roles=["other"], password_hash="h")
    assert await store.insert_if_absent(again) is None
    assert await store.list_all() == [first]


async def test_upsert_creates_then_updates_only_the_display_name_and_the_use(store, backend):
    created = await store.upsert(draft(backend, "u-1", public_id="u-1", display_name="First", realm=REALM))
    assert created == Upserted(
        outcome="created",
        principal=principal_of(draft(backend, "u-1", public_id="u-1", display_name="First", realm=REALM)),
    )
    start = backend.now
    backend.clock.advance(60.5)
    again = draft(
        backend, "new-login", public_id="u-1", display_name="Second", realm=REALM, last_used_at=backend.now, email="e"
    )
    updated = await store.upsert(again)
    expected = msgspec.structs.replace(
        created.principal, display_name="Second", updated_at=backend.now, last_used_at=backend.now
    )
    assert updated == Upserted(outcome="updated", principal=expected)
    assert (expected.login, expected.created_at, expected.email) == ("u-1", start, None)
    kept = await store.upsert(draft(backend, "u-1", public_id="u-1", realm=REALM, last_used_at=backend.now))
    assert kept.principal is not None
    assert kept.principal.display_name == "Second"  # a None display name keeps the stored one


async def test_upsert_refuses_an_id_of_another_realm_and_a_login_of_another_principal_changing_nothing(store, backend):
    gateway = await add(store, backend, "ada")
    outcome = await store.upsert(draft(backend, "x", public_id=gateway.id, display_name="hijack", realm=REALM))
    assert outcome == Upserted(outcome="other_realm")
    outcome = await store.upsert(draft(backend, "ada", public_id="new-id", realm=REALM))
    assert outcome == Upserted(outcome="login_taken")
    assert await store.list_all() == [gateway]


# reads


async def test_reads_find_a_principal_by_id_by_login_and_in_its_realm_only(store, backend):
    ada = await add(store, backend, "ada")
    bea = await add(store, backend, "bea", realm=REALM, last_used_at=backend.now)
    assert await store.get(tenant="default", public_id=ada.id) == ada
    assert await store.get(tenant="default", public_id=ada.id, realm=GATEWAY_REALM) == ada
    assert await store.get(tenant="default", public_id=ada.id, realm=REALM) is None
    assert await store.get(tenant="other", public_id=ada.id) is None
    assert await store.by_login(tenant="default", login="bea") == bea
    assert await store.by_login(tenant="default", login="nobody") is None
    assert await store.credentials(tenant="default", login="nobody") is None
    assert await store.stored(tenant="default", public_id="nobody") is None


async def test_a_read_by_id_on_the_driver_returns_what_the_core_query_does(store, backend):
    # get runs precompiled SQL on the driver's connection (saymon's and amity's validates ask it on every request),
    # converting the row with SQLAlchemy's own type processors: it must come out as the Core query makes it.
    ada = await add(store, backend, "ada", roles=["admin", "ops ☃"], permissions=["p1"], last_used_at=backend.now)
    bea = await add(store, backend, "bea", realm=REALM, email="bea@example.org", display_name=None)
    assert driver_query(_BY_PUBLIC_ID, backend.runner) is not None
    core = SqlPrincipalStore(backend.engine, ThroughSqlAlchemy(backend.runner))
    for tenant, public_id, realm in [
        ("default", ada.id, None),
        ("default", ada.id, GATEWAY_REALM),
        ("default", bea.id, REALM),
        ("default", bea.id, GATEWAY_REALM),
        ("other", ada.id, None),
    ]:
        read = {"tenant": tenant, "public_id": public_id, "realm": realm}
        assert await store.get(**read) == await core.get(**read)
    assert await store.get(tenant="default", public_id=ada.id) == ada


async def test_logins_answers_those_of_the_tenant_that_exist(store, backend):
    ada, bea = await add(store, backend, "ada"), await add(store, backend, "bea")
    eve = await add(store, backend, "eve", tenant="other")
    found = await store.logins(tenant="default", public_ids=[ada.id, bea.id, eve.id, "no-such-id"])
    assert found == {ada.id: "ada", bea.id: "bea"}


async def test_list_all_is_by_tenant_then_login(store, backend):
    for tenant, login in [("t2", "a"), ("t1", "b"), ("t1", "a")]:
        await add(store, backend, login, tenant=tenant, public_id=f"{tenant}-{login}")
    assert [(p.tenant, p.login) for p in await store.list_all()] == [("t1", "a"), ("t1", "b"), ("t2", "a")]
    assert [p.login for p in await store.list_all(tenant="t1")] == ["a", "b"]


async def test_stored_and_credentials_carry_the_row_id_and_the_hash(store, backend):
    ada = await add(store, backend, "ada", password_hash="h1")
    by_id = await store.stored(tenant="default", public_id=ada.id)
    by_login = await store.credentials(tenant="default", login="ada")
    assert by_id == by_login
    assert isinstance(by_id, StoredPrincipal)
    assert (by_id.principal, by_id.password_hash) == (ada, "h1")
    assert isinstance(by_id.row_id, uuid.UUID)


async def test_pages_are_newest_first_by_row_id_and_continue_below_the_last(store, backend):
    for i in range(5):
        await add(
            store, backend, f"user-{i}", tenant="t1" if i != 2 else "t2", realm=REALM if i == 4 else GATEWAY_REALM
        )
    first = await store.page(tenant=None, realm=None, before=None, limit=2)
    assert [s.principal.login for s in first] == ["user-4", "user-3"]
    rest = await store.page(tenant=None, realm=None, before=first[-1].row_id, limit=10)
    assert [s.principal.login for s in rest] == ["user-2", "user-1", "user-0"]
    assert all(s.password_hash is None for s in rest)
    assert [s.principal.login for s in await store.page(tenant="t1", realm=None, before=None, limit=10)] == [
        "user-4",
        "user-3",
        "user-1",
        "user-0",
    ]
    by_realm = await store.page(tenant="t1", realm=GATEWAY_REALM, before=first[0].row_id, limit=10)
    assert [s.principal.login for s in by_realm] == ["user-3", "user-1", "user-0"]


# changes


async def test_record_use_sets_the_last_use_of_the_principal_of_that_realm_only(store, backend):
    bea = await add(store, backend, "bea", realm=REALM, last_used_at=backend.now)
    backend.clock.advance(3.25)
    await store.record_use(tenant="default", public_id=bea.id, realm=GATEWAY_REALM, now=backend.now)
    assert await store.get(tenant="default", public_id=bea.id) == bea
    await store.record_use(tenant="default", public_id=bea.id, realm=REALM, now=backend.now)
    used = await store.get(tenant="default", public_id=bea.id)
    assert used is not None
    # updated_at is left to the table's own onupdate stamp, as it always was: only the use is the caller's.
    assert used == msgspec.structs.replace(bea, last_used_at=backend.now, updated_at=used.updated_at)


async def test_delete_unused_takes_only_enabled_principals_of_the_realm_idle_and_without_a_live_session(store, backend):
    idle = timedelta(days=1)
    start = backend.now
    for login in ("oldest", "old", "disabled", "in-session", "expired-session"):
        await add(store, backend, login, realm=REALM, last_used_at=backend.now)
        backend.clock.advance(1)
    await add(store, backend, "gateway-old")  # no last use: never swept
    await add(store, backend, "other-realm", realm="portos", last_used_at=start)
    await store.set_disabled(tenant="default", login="disabled", disabled=True, now=backend.now)
    await backend.insert(principal_id="id-in-session", ttl=2 * idle)
    await backend.insert(principal_id="id-expired-session", ttl=timedelta(seconds=1))
    await add(store, backend, "recent", realm=REALM, last_used_at=backend.now + timedelta(hours=1))
    backend.clock.advance(idle.total_seconds() + 10)

    assert await store.delete_unused(realm=REALM, idle=idle, now=backend.now, batch=1) == 1
    assert await store.by_login(tenant="default", login="oldest") is None  # the least recently used first
    assert await store.delete_unused(realm=REALM, idle=idle, now=backend.now, batch=10) == 2
    assert await store.delete_unused(realm=REALM, idle=idle, now=backend.now, batch=10) == 0
    left = sorted(p.login for p in await store.list_all())
    assert left == ["disabled", "gateway-old", "in-session", "other-realm", "recent"]


async def test_a_password_hash_and_disabling_are_set_by_login_answering_the_public_id(store, backend):
    ada = await add(store, backend, "ada", password_hash="old")
    backend.clock.advance(1.5)
    assert await store.set_password_hash(tenant="default", login="ada", password_hash="new", now=backend.now) == ada.id
    found = await store.credentials(tenant="default", login="ada")
    assert found is not None
    assert (found.password_hash, found.principal.updated_at) == ("new", backend.now)
    backend.clock.advance(1)
    assert await store.set_disabled(tenant="default", login="ada", disabled=True, now=backend.now) == ada.id
    disabled = await store.by_login(tenant="default", login="ada")
    assert disabled == msgspec.structs.replace(ada, disabled=True, updated_at=backend.now)
    assert await store.set_disabled(tenant="default", login="ada", disabled=False, now=backend.now) == ada.id
    assert not (await store.by_login(tenant="default", login="ada")).disabled
    for unknown in ({"tenant": "other", "login": "ada"}, {"tenant": "default", "login": "nobody"}):
        assert await store.set_password_hash(**unknown, password_hash="x", now=backend.now) is None
        assert await store.set_disabled(**unknown, disabled=True, now=backend.now) is None


async def test_a_rehash_replaces_the_hash_only_while_it_is_still_the_one_read(store, backend):
    await add(store, backend, "ada", password_hash="old")
    read = await store.credentials(tenant="default", login="ada")
    assert read is not None
    await store.replace_password_hash(read.row_id, stored="old", fresh="upgraded")
    assert (await store.credentials(tenant="default", login="ada")).password_hash == "upgraded"
    await store.set_password_hash(tenant="default", login="ada", password_hash="changed", now=backend.now)
    await store.replace_password_hash(read.row_id, stored="upgraded", fresh="stale upgrade")
    assert (await store.credentials(tenant="default", login="ada")).password_hash == "changed"


async def test_delete_takes_the_principal_and_its_tokens_answering_its_public_id(store, backend):
    ada, bea = await add(store, backend, "ada"), await add(store, backend, "bea")
    for login, digest in (("ada", "d-ada"), ("bea", "d-bea")):
        assert await store.add_auth_token(tenant="default", login=login, digest=digest, now=backend.now, replace=False)
    assert await store.delete(tenant="default", login="ada") == ada.id
    assert await store.delete(tenant="default", login="ada") is None
    assert await store.list_all() == [bea]
    assert await backend.rows("SELECT digest FROM sg_auth_token") == [("d-bea",)]


# auth tokens


async def test_an_auth_token_is_stored_by_digest_and_found_with_its_holder_in_its_tenant_only(store, backend):
    bea = await add(store, backend, "bea", realm=REALM, last_used_at=backend.now - timedelta(days=3))
    assert await store.add_auth_token(tenant="default", login="bea", digest="d1", now=backend.now, replace=False)
    holder = await store.token_holder(tenant="default", digest="d1")
    assert holder is not None
    assert (holder.principal, holder.digest, holder.last_used_at) == (bea, "d1", None)  # the token's, not bea's
    assert await store.token_holder(tenant="other", digest="d1") is None
    assert await store.token_holder(tenant="default", digest="d2") is None
    backend.clock.advance(7.125)
    await store.touch_token(holder.token_id, now=backend.now)
    touched = await store.token_holder(tenant="default", digest="d1")
    assert touched == msgspec.structs.replace(holder, last_used_at=backend.now)
    assert await backend.rows("SELECT count(*) FROM sg_auth_token WHERE updated_at = created_at") == [(0,)]


async def test_a_token_for_an_unknown_login_is_refused_and_nothing_is_stored(store, backend):
    await add(store, backend, "ada", tenant="other")
    assert not await store.add_auth_token(tenant="default", login="ada", digest="d", now=backend.now, replace=True)
    assert await count(backend, "sg_auth_token") == 0


async def test_replacing_tokens_revokes_that_principals_others_and_revoking_counts_them(store, backend):
    await add(store, backend, "ada")
    await add(store, backend, "bea")
    for login, digest in (("ada", "a1"), ("ada", "a2"), ("bea", "b1")):
        assert await store.add_auth_token(tenant="default", login=login, digest=digest, now=backend.now, replace=False)
    assert await store.add_auth_token(tenant="default", login="ada", digest="a3", now=backend.now, replace=True)
    assert sorted(await backend.rows("SELECT digest FROM sg_auth_token")) == [("a3",), ("b1",)]
    assert await store.revoke_auth_tokens(tenant="default", login="ada") == 1
    assert await store.revoke_auth_tokens(tenant="default", login="ada") == 0
    assert await store.revoke_auth_tokens(tenant="default", login="nobody") is None
    assert await backend.rows("SELECT digest FROM sg_auth_token") == [("b1",)]


async def test_parallel_replacing_tokens_of_one_principal_leaves_exactly_one(store, backend):
    # Each replace reads the principal, deletes its tokens and inserts one. Without a lock on the principal, on
    # PostgreSQL each delete missed the others' uncommitted inserts, and several "replacing" tokens stayed valid.
    await add(store, backend, "ada")
    added = await asyncio.gather(
        *(
            store.add_auth_token(tenant="default", login="ada", digest=f"r{n}", now=backend.now, replace=True)
            for n in range(20)
        )
    )
    assert added == [True] * 20
    assert await count(backend, "sg_auth_token") == 1


async def test_a_token_digest_is_replaced_only_where_it_is_still_the_old_one(store, backend):
    await add(store, backend, "ada")
    await store.add_auth_token(tenant="default", login="ada", digest="old", now=backend.now, replace=False)
    await store.replace_token_digest("old", "new")
    await store.replace_token_digest("old", "newer")
    assert await store.token_holder(tenant="default", digest="old") is None
    assert (await store.token_holder(tenant="default", digest="new")) is not None
    assert await backend.rows("SELECT digest FROM sg_auth_token") == [("new",)]


# faults


async def test_a_connection_lost_is_raised_as_the_driver_raised_it_never_answered_as_a_taken_login(store, backend):
    await backend.inject("sg_principal", "INSERT", "NEW.login = 'poison'", fault="connection-lost")
    for attempt in (store.insert, store.insert_if_absent, store.upsert):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the driver raised, as it raised it
            await attempt(draft(backend, "poison", realm=REALM))
        assert_clean(backend, caught.value, "connection-lost")  # on PostgreSQL: an outage, answered 503
    await backend.heal("sg_principal")
    assert await store.list_all() == []
