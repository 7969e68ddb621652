"""Every clause of ``TenantStore``'s contract (``sessiongate.core.tenant_store``), on each database alike: tenants and
their keys, the lookup of a presented key, and the single use of auth tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import insert

from sessiongate.core.tenant_store import NETWORK_REALM, HeldKey, KeyInfo, KeyTaken, NewKey, Tenant
from sessiongate.storage.identity_tables import principals
from sessiongate.storage.tenant_store import SqlTenantStore
from tests.storage.conftest import Backend

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(backend: Backend) -> SqlTenantStore:
    return SqlTenantStore(backend.engine, backend.runner)


def api(digest: str = "api-digest", hint: str = "pi01") -> NewKey:
    return NewKey(kind="api", digest=digest, hint=hint)


class Given:
    """A ``keys`` callback making the same keys whatever the tenant, and remembering the tenants it was shown."""

    def __init__(self, *keys: NewKey) -> None:
        self.keys = list(keys)
        self.seen: list[Tenant] = []

    def __call__(self, tenant: Tenant) -> list[NewKey]:
        self.seen.append(tenant)
        return self.keys


async def add(store: SqlTenantStore, backend: Backend, tenant: str = "acme", *keys: NewKey, **options):
    options = {"secure": False, "share_tenant": False} | options
    return await store.add_keys(tenant, now=backend.now, keys=Given(*(keys or (api(),))), **options)


async def provision_principal(backend: Backend, tenant: str, login: str, realm: str) -> None:
    now = backend.now
    await backend.runner.write(
        insert(principals).values(
            id=uuid.uuid4(),
            tenant=tenant,
            public_id=login,
            login=login,
            roles=[],
            permissions=[],
            disabled=False,
            realm=realm,
            created_at=now,
            updated_at=now,
        )
    )


async def counts(backend: Backend) -> tuple:
    return (
        await backend.rows("SELECT count(*) FROM sg_tenant"),
        await backend.rows("SELECT count(*) FROM sg_tenant_key"),
    )


# add_keys


async def test_add_keys_creates_the_tenant_and_stores_the_keys_in_order_exactly_as_returned(store, backend):
    keys = Given(api(), NewKey(kind="server", digest="server-digest", hint="rv01"))
    added = await store.add_keys("acme", secure=True, share_tenant=False, now=backend.now, keys=keys)
    tenant = Tenant(name="acme", secure=True, created_at=backend.now)
    assert (added.tenant, added.shared) == (tenant, 0)
    assert keys.seen == [tenant]  # the keys are made for the tenant as it now is
    assert [(k.tenant, k.secure, k.kind, k.hint, k.created_at) for k in added.keys] == [
        ("acme", True, "api", "pi01", backend.now),
        ("acme", True, "server", "rv01", backend.now),
    ]
    assert all((k.expires_at, k.revoked_at, k.last_used_at) == (None, None, None) for k in added.keys)
    assert await store.list_keys() == list(added.keys)
    assert [await store.key(uuid.UUID(k.id)) for k in added.keys] == list(added.keys)
    assert added.keys[0].created_at.microsecond == 654_321


async def test_add_keys_makes_a_tenant_secure_but_never_insecure_and_keeps_when_it_was_created(store, backend):
    created = backend.now
    await add(store, backend, "acme", api("a1"))
    backend.clock.advance(10)
    secured = Given(api("a2"))
    added = await store.add_keys("acme", secure=True, share_tenant=False, now=backend.now, keys=secured)
    assert secured.seen == [Tenant(name="acme", secure=True, created_at=created)]
    backend.clock.advance(10)
    again = Given(api("a3"))
    added = await store.add_keys("acme", secure=False, share_tenant=False, now=backend.now, keys=again)
    assert added.tenant == Tenant(name="acme", secure=True, created_at=created)
    assert again.seen == [added.tenant]
    assert [(k.hint, k.secure) for k in await store.list_keys()] == [("pi01", True)] * 3  # every key: the tenant's
    assert await counts(backend) == ([(1,)], [(3,)])


async def test_add_keys_refuses_a_first_key_of_a_tenant_holding_provisioned_principals_unless_sharing(store, backend):
    await provision_principal(backend, "shop", "ops", "gateway")
    await provision_principal(backend, "shop", "carol", NETWORK_REALM)  # the network's own: not counted
    await provision_principal(backend, "elsewhere", "bob", "gateway")
    keys = Given(api())
    refused = await store.add_keys("shop", secure=False, share_tenant=False, now=backend.now, keys=keys)
    assert refused == msgspec.structs.replace(refused, shared=1, tenant=None, keys=())
    assert keys.seen == []
    assert await counts(backend) == ([(0,)], [(0,)])  # nothing written

    shared = await add(store, backend, "shop", api("first"), share_tenant=True)
    assert (shared.shared, shared.tenant.name, len(shared.keys)) == (1, "shop", 1)
    more = await add(store, backend, "shop", api("second"))  # a network already: shared knowingly
    assert (more.shared, len(more.keys)) == (1, 1)
    assert await counts(backend) == ([(1,)], [(2,)])


async def test_an_exception_of_the_keys_callback_undoes_everything_and_reaches_the_caller(store, backend):
    def refuse(tenant: Tenant) -> list[NewKey]:
        raise LookupError(tenant.name)

    with pytest.raises(LookupError, match="acme"):
        await store.add_keys("acme", secure=True, share_tenant=False, now=backend.now, keys=refuse)
    assert await counts(backend) == ([(0,)], [(0,)])


async def test_add_keys_with_a_digest_already_stored_raises_key_taken_and_writes_nothing(store, backend):
    await add(store, backend, "acme", api("taken"))
    with pytest.raises(KeyTaken):
        await add(store, backend, "globex", api("fresh"), NewKey(kind="server", digest="taken", hint="x"), secure=True)
    assert await counts(backend) == ([(1,)], [(1,)])  # neither globex nor its fresh key
    assert not await store.has_keys("globex")


# add_key and has_keys


async def test_add_key_stores_one_more_key_of_an_existing_tenant_only(store, backend):
    await add(store, backend, "acme", secure=True)
    backend.clock.advance(1)
    admin = await store.add_key("acme", NewKey(kind="admin", digest="admin-digest", hint="dm01"), now=backend.now)
    assert admin == KeyInfo(id=admin.id, tenant="acme", secure=True, kind="admin", hint="dm01", created_at=backend.now)
    assert await store.key(uuid.UUID(admin.id)) == admin
    assert await store.add_key("nowhere", NewKey(kind="admin", digest="other", hint="x"), now=backend.now) is None
    with pytest.raises(KeyTaken):
        await store.add_key("acme", NewKey(kind="admin", digest="api-digest", hint="x"), now=backend.now)
    assert await counts(backend) == ([(1,)], [(2,)])


async def test_has_keys_says_whether_a_tenant_holds_any_key_live_or_not(store, backend):
    assert not await store.has_keys("acme")
    added = await add(store, backend, "acme")
    assert await store.has_keys("acme")
    await store.revoke_key(uuid.UUID(added.keys[0].id), now=backend.now)
    assert await store.has_keys("acme")
    assert not await store.has_keys("acm")


# listings


async def test_list_keys_orders_by_tenant_then_age(store, backend):
    await add(store, backend, "b", api("b1"))
    backend.clock.advance(1)
    await add(store, backend, "a", api("a1"))
    backend.clock.advance(1)
    await add(store, backend, "b", api("b2", "b002"))
    assert [(k.tenant, k.hint) for k in await store.list_keys()] == [("a", "pi01"), ("b", "pi01"), ("b", "b002")]


async def test_page_keys_goes_newest_first_by_keyset_narrowed_to_a_tenant_and_kind(store, backend):
    made = []
    for n in range(5):
        tenant = "acme" if n % 2 == 0 else "globex"
        made += (await add(store, backend, tenant, api(f"d{n}", f"h{n}"), secure=tenant == "globex")).keys
    server = await store.add_key("globex", NewKey(kind="server", digest="srv", hint="srv1"), now=backend.now)
    everything = [server, *reversed(made)]

    first, more = await store.page_keys(tenant=None, kind=None, limit=4, after=None)
    assert (first, more) == (everything[:4], True)
    rest, more = await store.page_keys(tenant=None, kind=None, limit=4, after=uuid.UUID(first[-1].id))
    assert (rest, more) == (everything[4:], False)
    assert await store.page_keys(tenant="acme", kind=None, limit=10, after=None) == (
        [k for k in everything if k.tenant == "acme"],
        False,
    )
    assert await store.page_keys(tenant="globex", kind="api", limit=1, after=None) == ([made[3]], True)
    assert await store.page_keys(tenant=None, kind="server", limit=10, after=None) == ([server], False)
    assert await store.page_keys(tenant=None, kind=None, limit=10, after=uuid.UUID(made[0].id)) == ([], False)


# ends of a key


async def test_revoke_key_changes_a_key_once_and_the_first_revocation_stands(store, backend):
    key = (await add(store, backend)).keys[0]
    key_id = uuid.UUID(key.id)
    revoked_at = backend.now
    assert await store.revoke_key(key_id, now=revoked_at)
    backend.clock.advance(5)
    assert not await store.revoke_key(key_id, now=backend.now)
    assert await store.key(key_id) == msgspec.structs.replace(key, revoked_at=revoked_at)
    assert not await store.revoke_key(uuid.uuid4(), now=backend.now)


async def test_of_calls_racing_to_revoke_a_key_exactly_one_changes_it(store, backend):
    key_id = uuid.UUID((await add(store, backend)).keys[0].id)
    changed = await asyncio.gather(*[store.revoke_key(key_id, now=backend.now) for _ in range(6)])
    assert sorted(changed) == [False] * 5 + [True]


async def test_expire_key_sets_the_expiry_whatever_it_was(store, backend):
    key = (await add(store, backend)).keys[0]
    key_id = uuid.UUID(key.id)
    later = backend.now + timedelta(days=3)
    assert await store.expire_key(key_id, at=later, now=backend.now)
    assert (await store.key(key_id)).expires_at == later
    assert await store.expire_key(key_id, at=backend.now, now=backend.now)  # moved nearer: a deadline, not a one-off
    assert await store.key(key_id) == msgspec.structs.replace(key, expires_at=backend.now)
    assert not await store.expire_key(uuid.uuid4(), at=later, now=backend.now)
    assert await store.key(uuid.uuid4()) is None


# the lookup of a presented key


async def test_key_holder_reads_the_key_with_its_tenant_and_state_by_digest(store, backend):
    key = (await add(store, backend, "acme", api("presented"), secure=True)).keys[0]
    tenant = Tenant(name="acme", secure=True, created_at=backend.now)
    held = HeldKey(
        tenant=tenant,
        key_id=key.id,
        kind="api",
        digest="presented",
        revoked_at=None,
        expires_at=None,
        last_used_at=None,
    )
    assert await store.key_holder("presented") == held
    assert await store.key_holder("presente") is None
    backend.clock.advance(7)
    await store.note_key_use(key.id, now=backend.now)
    await store.expire_key(uuid.UUID(key.id), at=backend.now, now=backend.now)
    await store.revoke_key(uuid.UUID(key.id), now=backend.now)
    now = backend.now
    assert await store.key_holder("presented") == msgspec.structs.replace(
        held, revoked_at=now, expires_at=now, last_used_at=now
    )
    assert (await store.key(uuid.UUID(key.id))).last_used_at == now


async def test_replace_key_digest_moves_a_key_only_where_its_digest_is_still_the_old_one(store, backend):
    key = (await add(store, backend, "acme", api("old"))).keys[0]
    await store.replace_key_digest("old", "new")
    assert await store.key_holder("old") is None
    assert (await store.key_holder("new")).key_id == key.id
    await store.replace_key_digest("old", "newer")  # no longer "old": nothing happens
    assert await store.key_holder("newer") is None
    assert (await store.key_holder("new")).key_id == key.id


# auth tokens


async def test_an_auth_token_is_consumed_once_only_by_its_tenant_and_principal_before_it_expires(store, backend):
    await add(store, backend, "acme")
    await add(store, backend, "globex", api("g"))
    expires = backend.now + timedelta(seconds=600)
    await store.add_auth_token(tenant="acme", principal_id="ada", digest="t1", now=backend.now, expires_at=expires)
    await store.add_auth_token(tenant="acme", principal_id="ada", digest="t2", now=backend.now, expires_at=expires)
    now = backend.now
    assert not await store.consume_auth_token("t1", tenant="globex", principal_id="ada", now=now)
    assert not await store.consume_auth_token("t1", tenant="acme", principal_id="bob", now=now)
    assert not await store.consume_auth_token("nope", tenant="acme", principal_id="ada", now=now)
    assert await store.consume_auth_token("t1", tenant="acme", principal_id="ada", now=now)
    assert not await store.consume_auth_token("t1", tenant="acme", principal_id="ada", now=now)
    assert not await store.consume_auth_token("t2", tenant="acme", principal_id="ada", now=expires)  # at its expiry
    assert await store.consume_auth_token(
        "t2", tenant="acme", principal_id="ada", now=expires - timedelta(microseconds=1)
    )
    assert await backend.rows("SELECT digest FROM sg_tenant_auth_token WHERE used_at IS NULL") == []


async def test_of_requests_racing_with_one_auth_token_exactly_one_consumes_it(store, backend):
    await add(store, backend, "acme")
    expires = backend.now + timedelta(seconds=600)
    await store.add_auth_token(tenant="acme", principal_id="ada", digest="t", now=backend.now, expires_at=expires)
    used = await asyncio.gather(
        *[store.consume_auth_token("t", tenant="acme", principal_id="ada", now=backend.now) for _ in range(6)]
    )
    assert sorted(used) == [False] * 5 + [True]


async def test_delete_expired_auth_tokens_deletes_a_batch_of_expired_ones_only(store, backend):
    await add(store, backend, "acme")
    start = backend.now
    for n in range(4):
        expires = start + timedelta(seconds=10 * (n + 1))
        await store.add_auth_token(tenant="acme", principal_id="ada", digest=f"t{n}", now=start, expires_at=expires)
    backend.clock.advance(30)  # t0, t1 and t2 (at its expiry) are expired; t3 is not
    assert await store.delete_expired_auth_tokens(now=backend.now, batch=2) == 2
    assert await store.delete_expired_auth_tokens(now=backend.now, batch=2) == 1
    assert await store.delete_expired_auth_tokens(now=backend.now, batch=2) == 0
    assert await backend.rows("SELECT digest FROM sg_tenant_auth_token") == [("t3",)]
