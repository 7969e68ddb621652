"""``DialectStorage.lookup``, a dialect's read by a key on the driver's own connection, on each database alike: it
returns what the same query read through SQLAlchemy returns."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sessiongate.dialect import DialectStorage
from sessiongate_portos.device_store import DEVICES, DeviceStore
from tests.storage.conftest import Backend, ThroughSqlAlchemy

pytestmark = pytest.mark.anyio

BY_NAME = sa.select(DEVICES).where(DEVICES.c.tenant == sa.bindparam("tenant"), DEVICES.c.name == sa.bindparam("name"))
BY_TENANT = sa.select(DEVICES.c.name, DEVICES.c.settings).where(DEVICES.c.tenant == sa.bindparam("tenant"))


async def seed(backend: Backend) -> None:
    devices = DeviceStore(DialectStorage(backend.runner))
    for tenant, name, settings in [("shop", "Kassa ☃", {"a": [1, None]}), ("shop", "P02", {}), ("else", "P01", {})]:
        await devices.add(tenant=tenant, name=name, env="PDA", description=None, settings=settings, now=backend.now)


async def test_a_lookup_returns_the_rows_a_read_of_the_same_query_returns_as_dicts_by_column(backend):
    await seed(backend)
    storage = DialectStorage(backend.runner)
    for query, params in [
        (BY_NAME, {"tenant": "shop", "name": "Kassa ☃"}),
        (BY_NAME, {"tenant": "shop", "name": "nobody"}),
        (BY_TENANT.order_by(DEVICES.c.name), {"tenant": "shop"}),
        (BY_TENANT.where(DEVICES.c.env == "PDA").order_by(DEVICES.c.name.desc()).limit(1), {"tenant": "shop"}),
        (BY_TENANT.where(DEVICES.c.name.in_(["P02", "P01"])), {"tenant": "shop"}),  # an IN: compiled per call
    ]:
        read = [dict(row._mapping) for row in await storage.read(query.params(params))]
        assert await storage.lookup(query, params) == read
    [found] = await storage.lookup(BY_NAME, {"tenant": "shop", "name": "Kassa ☃"})
    assert (found["settings"], found["created_at"]) == ({"a": [1, None]}, backend.now)


async def test_a_runner_without_a_driver_path_answers_a_lookup_through_sqlalchemy_alike(backend):
    await seed(backend)
    storage, through = DialectStorage(backend.runner), DialectStorage(ThroughSqlAlchemy(backend.runner))
    for query, params in [
        (BY_NAME, {"tenant": "shop", "name": "Kassa ☃"}),
        (BY_NAME, {"tenant": "else", "name": "Kassa ☃"}),
        (BY_TENANT.order_by(DEVICES.c.name), {"tenant": "shop"}),
    ]:
        assert await through.lookup(query, params) == await storage.lookup(query, params)
