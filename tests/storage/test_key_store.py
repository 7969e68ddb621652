"""Every clause of ``KeyMaterialStore``'s contract (``sessiongate.core.key_store``), on each database alike: keys kept
as given, an insert-if-absent that concurrent adders agree on, retirements that never move a key's later, and the
compare and set a master-key rewrap relies on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from sessiongate.core.key_store import KeyMaterialStore, StoredKey
from sessiongate.storage.database import alchemy_config
from sessiongate.storage.key_store import SqlKeyMaterialStore
from tests.storage.conftest import Backend

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)


@pytest.fixture
def store(backend: Backend) -> KeyMaterialStore:
    return SqlKeyMaterialStore(backend.engine)


@pytest.fixture
async def other_process(backend: Backend) -> AsyncIterator[KeyMaterialStore]:
    """The same database through an engine of its own, as another gateway process (or the CLI) reaches it."""
    engine = alchemy_config(backend.url).get_engine()
    try:
        yield SqlKeyMaterialStore(engine)
    finally:
        await engine.dispose()


async def kept(store: KeyMaterialStore) -> dict[str, StoredKey]:
    return {key.name: key for key in await store.keys()}


# keys, add


async def test_an_empty_database_keeps_no_key(store):
    assert await store.keys() == []
    assert await store.names() == []


async def test_an_added_key_is_kept_exactly_as_given_every_microsecond_included(store, backend):
    starts = backend.now + HOUR
    assert await store.add("jwt:auto-1", "value-1", now=backend.now) is True
    assert await store.add("jwt:auto-2", "fernet:value-2", now=backend.now, activates_at=starts) is True
    assert await kept(store) == {
        "jwt:auto-1": StoredKey(name="jwt:auto-1", value="value-1", activates_at=None, retires_at=None),
        "jwt:auto-2": StoredKey(name="jwt:auto-2", value="fernet:value-2", activates_at=starts, retires_at=None),
    }


async def test_adding_a_name_that_is_kept_already_changes_nothing(store, backend):
    await store.add("digest-key", "first", now=backend.now)
    assert await store.add("digest-key", "second", now=backend.now, activates_at=backend.now + HOUR) is False
    assert await store.keys() == [StoredKey(name="digest-key", value="first", activates_at=None, retires_at=None)]


async def test_of_processes_adding_one_name_at_once_exactly_one_keeps_its_value(store, other_process, backend):
    adders = [(store if n % 2 else other_process) for n in range(6)]
    made = await asyncio.gather(*(a.add("jwt:auto-1", f"value-{n}", now=backend.now) for n, a in enumerate(adders)))
    assert sorted(made) == [False] * 5 + [True]
    assert [key.value for key in await store.keys()] == [f"value-{made.index(True)}"]


async def test_what_one_process_adds_the_next_read_of_another_sees(store, other_process, backend):
    assert await store.keys() == []  # nothing read is kept: the next read asks the database again
    await other_process.add("digest-key-2", "v", now=backend.now)
    assert [key.name for key in await store.keys()] == ["digest-key-2"]


async def test_a_kept_key_retires_those_it_replaces_with_it_unless_they_retire_sooner(store, backend):
    now = backend.now
    await store.add("jwt:auto-1", "v1", now=now)
    await store.add("jwt:auto-2", "v2", now=now)
    await store.retire("jwt:auto-2", now=now + HOUR)  # retires sooner than what follows: keeps its time
    await store.add("digest-key", "d", now=now)  # not named: untouched
    later = now + 3 * HOUR
    made = await store.add(
        "jwt:auto-3", "v3", now=now, activates_at=now + HOUR, retiring=["jwt:auto-1", "jwt:auto-2"], retires_at=later
    )
    assert made is True
    retires = {name: key.retires_at for name, key in (await kept(store)).items()}
    assert retires == {"jwt:auto-1": later, "jwt:auto-2": now + HOUR, "jwt:auto-3": None, "digest-key": None}


async def test_a_later_retirement_given_with_a_new_key_moves_an_earlier_one_no_later(store, backend):
    now = backend.now
    await store.add("jwt:auto-1", "v1", now=now)
    await store.add("jwt:auto-2", "v2", now=now, retiring=["jwt:auto-1"], retires_at=now + 3 * HOUR)
    await store.add("jwt:auto-3", "v3", now=now, retiring=["jwt:auto-1"], retires_at=now + HOUR)
    await store.add("jwt:auto-4", "v4", now=now, retiring=["jwt:auto-1"], retires_at=now + 5 * HOUR)
    assert (await kept(store))["jwt:auto-1"].retires_at == now + HOUR


async def test_a_key_that_is_not_kept_retires_nothing(store, backend):
    now = backend.now
    await store.add("jwt:auto-1", "v1", now=now)
    await store.add("jwt:auto-2", "v2", now=now)
    assert await store.add("jwt:auto-2", "again", now=now, retiring=["jwt:auto-1"], retires_at=now) is False
    assert all(key.retires_at is None for key in await store.keys())


async def test_without_a_retirement_time_the_replaced_keys_live_on(store, backend):
    await store.add("jwt:auto-1", "v1", now=backend.now)
    await store.add("jwt:auto-2", "v2", now=backend.now, retiring=["jwt:auto-1"], retires_at=None)
    assert all(key.retires_at is None for key in await store.keys())


# retire


async def test_retire_sets_the_time_unless_the_key_retires_sooner_already(store, backend):
    now = backend.now
    await store.add("digest-key", "d", now=now)
    await store.retire("digest-key", now=now + 2 * HOUR)
    assert (await kept(store))["digest-key"].retires_at == now + 2 * HOUR
    await store.retire("digest-key", now=now + HOUR)  # sooner: moved
    await store.retire("digest-key", now=now + 3 * HOUR)  # later: kept
    assert (await kept(store))["digest-key"].retires_at == now + HOUR


async def test_retiring_a_name_no_key_has_changes_nothing(store, backend):
    await store.add("digest-key", "d", now=backend.now)
    await store.retire("digest-key-9", now=backend.now)
    assert (await kept(store))["digest-key"].retires_at is None
    assert await store.names() == ["digest-key"]


# names, value, replace_value


async def test_names_come_in_order(store, backend):
    for name in ("jwt:auto-2", "digest-key", "jwt:auto-1", "digest-key-2"):
        await store.add(name, "v", now=backend.now)
    assert await store.names() == ["digest-key", "digest-key-2", "jwt:auto-1", "jwt:auto-2"]


async def test_value_is_what_is_stored_and_an_unknown_name_is_a_key_error(store, backend):
    await store.add("digest-key", "fernet:abc", now=backend.now)
    assert await store.value("digest-key") == "fernet:abc"
    with pytest.raises(KeyError):
        await store.value("digest-key-2")


async def test_replace_value_stores_the_new_value_only_while_the_old_one_is_still_stored(store, backend):
    await store.add("digest-key", "clear", now=backend.now, activates_at=backend.now)
    assert await store.replace_value("digest-key", old="stale", new="lost", now=backend.now) is False
    assert await store.value("digest-key") == "clear"
    assert await store.replace_value("digest-key", old="clear", new="fernet:x", now=backend.now) is True
    assert await store.replace_value("digest-key", old="clear", new="fernet:y", now=backend.now) is False
    # Only the value changes: when the key starts and retires stays as it was.
    assert await store.keys() == [
        StoredKey(name="digest-key", value="fernet:x", activates_at=backend.now, retires_at=None)
    ]
    assert await store.replace_value("digest-key-2", old="clear", new="x", now=backend.now) is False


async def test_of_processes_replacing_one_value_at_once_exactly_one_wins(store, other_process, backend):
    await store.add("digest-key", "clear", now=backend.now)
    stores = [(store if n % 2 else other_process) for n in range(6)]
    won = await asyncio.gather(
        *(s.replace_value("digest-key", old="clear", new=f"new-{n}", now=backend.now) for n, s in enumerate(stores))
    )
    assert sorted(won) == [False] * 5 + [True]
    assert await store.value("digest-key") == f"new-{won.index(True)}"
