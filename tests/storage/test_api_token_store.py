"""Every clause of ``ApiTokenStore``'s contract (``sessiongate.core.api_token_store``), on each database alike."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest

from sessiongate.core.api_token_store import ApiTokenInfo
from sessiongate.storage.api_token_store import _BY_DIGEST, SqlApiTokenStore
from sessiongate.storage.driver_query import driver_query
from tests.storage.conftest import Backend, ThroughSqlAlchemy

pytestmark = pytest.mark.anyio


@pytest.fixture
def store(backend: Backend) -> SqlApiTokenStore:
    return SqlApiTokenStore(backend.runner)


async def add(store: SqlApiTokenStore, backend: Backend, name: str, scope: str = "admin", digest: str | None = None):
    return await store.add(
        name=name, scope=scope, digest=digest or f"digest-{name}", prefix=f"sgt_{name[:8]}", now=backend.now
    )


async def test_add_returns_a_live_token_exactly_as_stored(store, backend):
    info = await add(store, backend, "ci-runner", "introspect")
    assert info == ApiTokenInfo(
        id=info.id,
        name="ci-runner",
        scope="introspect",
        prefix="sgt_ci-runne",
        created_at=backend.now,
        last_used_at=None,
        revoked_at=None,
    )
    assert info.state == "live"
    assert await store.named("ci-runner") == info
    assert await store.by_digest("digest-ci-runner") == (info, "digest-ci-runner")
    assert info.created_at.microsecond == 654_321


async def test_a_lookup_on_the_driver_returns_what_the_core_query_does(store, backend):
    # by_digest runs precompiled SQL on the driver's connection (every forward auth and introspection asks it),
    # converting the row with SQLAlchemy's own type processors: it must come out as the Core query makes it.
    live = await add(store, backend, "ci-runner", "introspect")
    revoked = await add(store, backend, "old", "admin")
    await store.revoke(revoked.id, now=backend.now)
    await store.note_use(live.id, now=backend.now)
    assert driver_query(_BY_DIGEST, backend.runner) is not None
    core = SqlApiTokenStore(ThroughSqlAlchemy(backend.runner))
    for digest in ("digest-ci-runner", "digest-old", "digest-none"):
        assert await store.by_digest(digest) == await core.by_digest(digest)
    assert (await store.by_digest("digest-old"))[0].revoked_at == backend.now


async def test_a_token_of_a_name_or_digest_already_stored_is_refused_and_nothing_written(store, backend):
    first = await add(store, backend, "one")
    await store.revoke(first.id, now=backend.now)
    assert await add(store, backend, "one", digest="fresh") is None  # revoked tokens keep their names
    assert await add(store, backend, "two", digest="digest-one") is None
    assert [t.name for t in await store.list()] == ["one"]
    assert not await store.digest_taken(["fresh"])


async def test_named_finds_only_the_exact_name_and_nothing_for_text_holding_nul(store, backend):
    await add(store, backend, "ops")
    assert await store.named("op") is None
    assert await store.named("ops\x00") is None


async def test_digest_taken_says_whether_any_of_the_digests_is_stored(store, backend):
    await add(store, backend, "ops")
    assert await store.digest_taken(["under-a-newer-key", "digest-ops"])
    assert not await store.digest_taken(["under-a-newer-key", "digest-op"])


async def test_list_gives_every_token_oldest_first_revoked_ones_too(store, backend):
    made = []
    for name in ("b", "a", "c"):
        made.append(await add(store, backend, name))
        backend.clock.advance(1)
    await store.revoke(made[1].id, now=backend.now)
    listed = await store.list()
    assert [t.name for t in listed] == ["b", "a", "c"]
    assert [t.state for t in listed] == ["live", "revoked", "live"]


async def test_page_goes_newest_first_by_keyset_narrowed_to_a_scope_and_state(store, backend):
    made = [await add(store, backend, f"t{n}", "admin" if n % 2 else "introspect") for n in range(5)]
    await store.revoke(made[4].id, now=backend.now)
    made[4] = await store.named("t4")
    newest = list(reversed(made))
    first, more = await store.page(scope=None, state=None, limit=3, after=None)
    assert (first, more) == (newest[:3], True)
    assert await store.page(scope=None, state=None, limit=3, after=uuid.UUID(first[-1].id)) == (newest[3:], False)
    assert await store.page(scope="admin", state=None, limit=5, after=None) == ([made[3], made[1]], False)
    assert await store.page(scope="introspect", state="live", limit=1, after=None) == ([made[2]], True)
    assert await store.page(scope=None, state="revoked", limit=5, after=None) == ([made[4]], False)


async def test_revoke_changes_a_token_once_and_the_first_revocation_stands(store, backend):
    info = await add(store, backend, "ops")
    revoked_at = backend.now
    assert await store.revoke(info.id, now=revoked_at)
    backend.clock.advance(3)
    assert not await store.revoke(info.id, now=backend.now)
    assert await store.named("ops") == msgspec.structs.replace(info, revoked_at=revoked_at)
    assert not await store.revoke(str(uuid.uuid4()), now=backend.now)


async def test_of_calls_racing_to_revoke_a_token_exactly_one_changes_it(store, backend):
    info = await add(store, backend, "ops")
    changed = await asyncio.gather(*[store.revoke(info.id, now=backend.now) for _ in range(6)])
    assert sorted(changed) == [False] * 5 + [True]


async def test_replace_digest_moves_a_token_only_where_its_digest_is_still_the_old_one(store, backend):
    info = await add(store, backend, "ops", digest="old")
    await store.replace_digest("old", "new")
    assert await store.by_digest("old") is None
    assert await store.by_digest("new") == (info, "new")
    await store.replace_digest("old", "newer")
    assert await store.by_digest("newer") is None
    assert await store.by_digest("new") == (info, "new")


async def test_note_use_records_the_last_use(store, backend):
    info = await add(store, backend, "ops")
    backend.clock.advance(61)
    await store.note_use(info.id, now=backend.now)
    assert await store.named("ops") == msgspec.structs.replace(info, last_used_at=backend.now)
    assert (await store.by_digest("digest-ops"))[0].last_used_at == backend.now
