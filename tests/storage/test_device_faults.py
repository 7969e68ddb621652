"""Faults injected into the real databases (no mocks) under portos's devices (``sessiongate_portos.devices`` over its
``DeviceStore``): a statement refused inside a SQLite group commit, a connection lost mid-statement. A device add or
remove hit by one fails only its own caller, with a clean error (never answered as a name conflict or as "no such
device"), leaves its row as it was, and the other writes of the same group commit are acknowledged and committed;
the next operation, or a retry once the fault is gone, is served. Alike on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from sessiongate.dialect import Conflict, DialectStorage, NotFound
from sessiongate_portos.devices import Devices
from tests.storage.conftest import Backend, committed_rows
from tests.storage.test_faults import FAULTS, assert_clean, batches_of, outcomes

pytestmark = pytest.mark.anyio


@pytest.fixture
def devices(backend: Backend) -> Devices:
    return Devices(DialectStorage(backend.runner))


async def add(devices: Devices, backend: Backend, name: str, *, tenant: str = "shop"):
    return await devices.add(tenant=tenant, name=name, env="CashRegister", now=backend.now)


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_device_add_hit_by_a_fault_inside_a_group_commit_fails_only_its_own_caller(
    devices, backend, monkeypatch, fault
):
    await add(devices, backend, "taken")
    await add(devices, backend, "gone")
    await backend.inject("sg_device", "INSERT", "NEW.name = 'poison'", fault=fault)
    sizes = batches_of(backend, monkeypatch)

    results = await asyncio.gather(
        add(devices, backend, "ok-1"),
        add(devices, backend, "poison"),
        add(devices, backend, "ok-2"),
        add(devices, backend, "taken"),  # a real name conflict, in the same group commit
        devices.remove(tenant="shop", name="gone"),
        return_exceptions=True,
    )

    assert outcomes(results) == ["ok", "failed", "ok", "failed", "ok"]
    assert isinstance(results[3], Conflict), repr(results[3])
    assert [r.name for r in (results[0], results[2], results[4])] == ["ok-1", "ok-2", "gone"]
    if backend.kind == "sqlite":
        assert sizes[0] == 5, sizes  # the fault struck inside one group commit of all five
    assert (await add(devices, backend, "after")).name == "after"  # the next operation is served
    with pytest.raises(NotFound):
        await devices.get(tenant="shop", name="poison")  # the failed add left no device behind
    await backend.heal("sg_device")
    rows = await committed_rows(backend, "SELECT tenant, name FROM sg_device")
    assert sorted(rows) == [("shop", "after"), ("shop", "ok-1"), ("shop", "ok-2"), ("shop", "taken")]
    assert not isinstance(results[1], Conflict), f"a fault was answered as a name conflict: {results[1]!r}"
    assert_clean(backend, results[1], fault)


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_device_remove_hit_by_a_fault_removes_nothing_and_a_retry_removes_it(
    devices, backend, monkeypatch, fault
):
    doomed = await add(devices, backend, "doomed")
    await add(devices, backend, "other")
    await add(devices, backend, "doomed", tenant="elsewhere")  # the same name in another tenant: never touched
    await backend.inject("sg_device", "DELETE", "OLD.name = 'doomed' AND OLD.tenant = 'shop'", fault=fault)
    sizes = batches_of(backend, monkeypatch)

    results = await asyncio.gather(
        devices.remove(tenant="shop", name="doomed"),
        devices.remove(tenant="shop", name="other"),
        add(devices, backend, "new"),
        return_exceptions=True,
    )

    assert outcomes(results) == ["failed", "ok", "ok"]
    assert not isinstance(results[0], NotFound), f"a fault was answered as no such device: {results[0]!r}"
    assert_clean(backend, results[0], fault)
    assert [r.name for r in results[1:]] == ["other", "new"]
    if backend.kind == "sqlite":
        assert sizes[0] == 3, sizes
    assert await devices.get(tenant="shop", name="doomed") == doomed  # still there, exactly as it was
    await backend.heal("sg_device")
    assert await devices.remove(tenant="shop", name="doomed") == doomed  # the retry removes it, once
    with pytest.raises(NotFound):
        await devices.remove(tenant="shop", name="doomed")
    rows = await committed_rows(backend, "SELECT tenant, name FROM sg_device")
    assert sorted(rows) == [("elsewhere", "doomed"), ("shop", "new")]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_device_add_that_failed_on_a_fault_is_served_when_retried_once_the_fault_is_gone(
    devices, backend, fault
):
    await backend.inject("sg_device", "INSERT", "NEW.name = 'P01'", fault=fault)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await add(devices, backend, "P01")

    assert await devices.list(tenant="shop") == []
    await backend.heal("sg_device")
    device = await add(devices, backend, "P01")  # nothing of the failed add holds the name
    assert await devices.get(tenant="shop", name="P01") == device
    assert await committed_rows(backend, "SELECT name FROM sg_device") == [("P01",)]
    assert not isinstance(raised.value, Conflict), f"a fault was answered as a name conflict: {raised.value!r}"
    assert_clean(backend, raised.value, fault)
