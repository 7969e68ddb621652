"""Every clause of portos's ``DeviceStore`` (``sessiongate_portos.device_store``), on each database alike: its
statements on its own table, run by the gateway through the door every dialect has (``DialectStorage``)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sessiongate.dialect import DialectStorage
from sessiongate_portos.device_store import DeviceStore, RegisteredDevice
from tests.storage.conftest import Backend

pytestmark = pytest.mark.anyio

SETTINGS = {"printer": "Epson ☃", "lines": "a\tb\nc", "": "empty key"}


@pytest.fixture
def store(backend: Backend) -> DeviceStore:
    return DeviceStore(DialectStorage(backend.runner))


async def add(store: DeviceStore, backend: Backend, name: str, *, tenant: str = "shop", **fields):
    fields = {"env": "CashRegister", "description": None, "settings": {}} | fields
    return await store.add(tenant=tenant, name=name, now=backend.now, **fields)


async def test_add_returns_the_device_exactly_as_stored(store, backend):
    device = await add(store, backend, "Kassa 1 ü", env="PDA", description="by the door", settings=SETTINGS)
    expected = RegisteredDevice(
        id=device.id,
        tenant="shop",
        name="Kassa 1 ü",
        env="PDA",
        description="by the door",
        preferences={},
        settings=SETTINGS,
        created_at=backend.now,
    )
    assert device == expected
    assert await store.get(tenant="shop", name="Kassa 1 ü") == expected
    assert device.created_at.microsecond == 654_321
    assert uuid.UUID(device.id).version == 7


async def test_a_second_device_of_a_name_in_a_tenant_is_refused_and_nothing_written(store, backend):
    first = await add(store, backend, "P01")
    assert await add(store, backend, "P01", env="Tool", description="another") is None
    assert await store.get(tenant="shop", name="P01") == first
    other = await add(store, backend, "P01", tenant="elsewhere")  # names are per tenant
    assert other is not None
    assert other.id != first.id
    assert await backend.rows("SELECT count(*) FROM sg_device") == [(2,)]


async def test_of_adds_racing_with_one_name_exactly_one_stores_a_device(store, backend):
    added = await asyncio.gather(*[add(store, backend, "P01", description=str(n)) for n in range(6)])
    stored = [device for device in added if device is not None]
    assert len(stored) == 1
    assert await store.list(tenant="shop") == stored


async def test_get_finds_a_device_only_by_its_tenant_and_exact_name(store, backend):
    await add(store, backend, "P01")
    assert await store.get(tenant="other", name="P01") is None
    assert await store.get(tenant="shop", name="P0") is None
    assert await store.get(tenant="shop", name="P01\x00") is None  # no database can hold it: nothing has that name


async def test_list_gives_a_tenants_devices_by_name(store, backend):
    for name in ("b", "a", "c"):
        await add(store, backend, name)
    await add(store, backend, "0", tenant="other")
    assert [d.name for d in await store.list(tenant="shop")] == ["a", "b", "c"]
    assert await store.list(tenant="none") == []


async def test_page_goes_newest_first_by_keyset_within_a_tenant(store, backend):
    made = [await add(store, backend, f"P{n}") for n in range(5)]
    await add(store, backend, "X", tenant="other")
    newest = list(reversed(made))
    first, more = await store.page(tenant="shop", limit=2, after=None)
    assert (first, more) == (newest[:2], True)
    second, more = await store.page(tenant="shop", limit=2, after=uuid.UUID(first[-1].id))
    assert (second, more) == (newest[2:4], True)
    assert await store.page(tenant="shop", limit=2, after=uuid.UUID(second[-1].id)) == (newest[4:], False)
    assert await store.page(tenant="shop", limit=5, after=None) == (newest, False)
    assert await store.page(tenant="shop\x00", limit=5, after=None) == ([], False)


async def test_remove_answers_the_device_as_it_was_once_and_then_none(store, backend):
    device = await add(store, backend, "P01", settings=SETTINGS)
    kept = await add(store, backend, "P02")
    assert await store.remove(tenant="other", name="P01") is None
    assert await store.remove(tenant="shop", name="P01") == device
    assert await store.remove(tenant="shop", name="P01") is None
    assert await store.remove(tenant="shop", name="P02\x00") is None
    assert await store.list(tenant="shop") == [kept]
    assert await add(store, backend, "P01") is not None  # the name is free again
