"""portos's devices are portos's (issue 14): its table, ``sg_device``, is made by portos's own migration branch, which
adopts the one a database migrated before then holds, rows and all; a database that never enables portos never has
it; undoing the core's 0003, which used to make it, drops it only where it is still the core's. Every step runs the
real migrations through the real commands (``sessiongate db …``, ``sessiongate devices …``), on both databases, and
``db status`` and ``db history`` say where each database stands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from litestar.testing import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.app import create_app
from sessiongate.dialect import DialectStorage
from sessiongate.dialects import registry
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from sessiongate.storage.database import CORE, upgrade
from sessiongate_portos import PortosDialect
from sessiongate_portos.device_store import metadata as portos_metadata
from sessiongate_portos.devices import Devices, RegisteredDevice
from tests.conftest import ROOT
from tests.support.databases import on_database
from tests.support.migrations import differences_from_declared
from tests.support.server import run_command

CORE_HEAD = "0013"
WITHOUT_PORTOS = {"SESSIONGATE_DIALECTS": "amity,issp,saymon,zelf"}
MANUAL = {"SESSIONGATE_AUTO_MIGRATE": "false"}
NOT_READY = 4  # the README's exit status of a database not migrated to this version


def version_rows(database_url: str) -> set[str]:
    async def read(engine: AsyncEngine) -> set[str]:
        async with engine.connect() as conn:
            return {row[0] for row in await conn.execute(sa.text("SELECT version_num FROM sg_alembic_version"))}

    rows: set[str] = on_database(database_url, read)
    return rows


def has_device_table(database_url: str) -> bool:
    async def read(engine: AsyncEngine) -> bool:
        async with engine.connect() as conn:
            return bool(await conn.run_sync(lambda sync: sa.inspect(sync).has_table("sg_device")))

    found: bool = on_database(database_url, read)
    return found


def the_table_as_0003_made_it(connection: sa.Connection) -> None:
    """``sg_device`` exactly as the core's migration 0003 made it before issue 14 (its ``create_table``, verbatim)."""
    from advanced_alchemy.types import GUID, DateTimeUTC, JsonB

    op = Operations(MigrationContext.configure(connection))
    op.create_table(
        "sg_device",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("preferences", JsonB, nullable=False),
        sa.Column("settings", JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_device")),
        sa.UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),
    )


def devices_of(database_url: str, *, add: dict[str, dict[str, Any]] | None = None) -> list[RegisteredDevice]:
    """The devices of tenants ``default`` and ``shop``, through portos's own store on a gateway held to the core's
    migrations alone (as one before issue 14 was); ``add`` provisions these first (by name: tenant, env, …)."""

    async def run() -> list[RegisteredDevice]:
        settings = Settings(database_url=database_url, sweep_interval=0)
        async with open_services(settings, migrate=False, migrations=CORE) as services:
            devices = Devices(DialectStorage(services.runner))
            for name, fields in (add or {}).items():
                await devices.add(name=name, now=datetime(2024, 5, 1, 8, 30, 0, 123_456, tzinfo=UTC), **fields)
            return [*await devices.list(tenant="default"), *await devices.list(tenant="shop")]

    return asyncio.run(run())


def a_database_of_before_issue_14(database_url: str) -> list[RegisteredDevice]:
    """A database a gateway of before issue 14 migrated to its head, with devices provisioned: the core's migrations
    and ``sg_device`` as 0003 made it, with rows in it. Its devices."""

    async def migrate(engine: AsyncEngine) -> None:
        await upgrade(engine, migrations=CORE)
        async with engine.begin() as conn:
            await conn.run_sync(the_table_as_0003_made_it)

    on_database(database_url, migrate)
    assert version_rows(database_url) == {CORE_HEAD}
    provisioned = {
        "BackOffice": {"tenant": "default", "env": "BackOffice"},
        "P01": {
            "tenant": "default",
            "env": "CashRegister",
            "description": "Till 1",
            "settings": {"MaxQuantity": "200"},
        },
        "Kassa ü": {"tenant": "shop", "env": "PDA", "settings": {"printer": "Epson ☃", "lines": "a\tb\nc"}},
    }
    devices = devices_of(database_url, add=provisioned)
    assert len(devices) == 3
    return devices


@pytest.mark.slow
def test_a_database_migrated_before_portos_owned_its_devices_keeps_every_one_when_portos_migrates(
    empty_database_url, tmp_path
):
    before = a_database_of_before_issue_14(empty_database_url)

    waiting = run_command(empty_database_url, tmp_path, "db", "status", env=MANUAL)
    assert waiting.returncode == NOT_READY, waiting.stdout
    assert waiting.stdout.splitlines()[0] == f"current: {CORE_HEAD}"
    assert "pending: portos_0001" in waiting.stdout

    upgraded = run_command(empty_database_url, tmp_path, "db", "upgrade", env=MANUAL)  # portos enabled: "*"
    assert upgraded.returncode == 0, upgraded.stderr
    assert version_rows(empty_database_url) == {CORE_HEAD, "portos_0001"}
    assert devices_of(empty_database_url) == before  # every row, every value, as it was
    assert differences_from_declared(empty_database_url, "sg_device", portos_metadata) == []

    listed = run_command(empty_database_url, tmp_path, "devices", "list", env=MANUAL)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == ["BackOffice\tBackOffice", "P01\tCashRegister\tTill 1\tMaxQuantity=200"]
    status = run_command(empty_database_url, tmp_path, "db", "status", env=MANUAL)
    assert status.returncode == 0, status.stdout
    assert status.stdout.splitlines()[:2] == [
        f"current: {CORE_HEAD}, portos_0001",
        f"head:    {CORE_HEAD}, portos_0001",
    ]
    assert "pending: none" in status.stdout
    history = run_command(empty_database_url, tmp_path, "db", "history", env=MANUAL).stdout.splitlines()
    assert "portos_0001  portos: its devices (``sg_device``), made here or adopted from the core. (current)" in history
    assert f"{CORE_HEAD}  " in "\n".join(history)


@pytest.mark.slow
def test_a_gateway_of_today_without_portos_makes_no_device_table_and_enabling_portos_makes_it(
    empty_database_url, tmp_path
):
    without = MANUAL | WITHOUT_PORTOS
    assert run_command(empty_database_url, tmp_path, "db", "upgrade", env=without).returncode == 0
    assert version_rows(empty_database_url) == {CORE_HEAD}
    assert not has_device_table(empty_database_url)
    status = run_command(empty_database_url, tmp_path, "db", "status", env=without)
    assert status.returncode == 0, status.stdout
    assert status.stdout.splitlines()[:2] == [f"current: {CORE_HEAD}", f"head:    {CORE_HEAD}"]
    assert "portos_0001" not in run_command(empty_database_url, tmp_path, "db", "history", env=without).stdout

    # Enabled (by "*", the default), portos's branch is what the database lacks; the gateway migrates it at start.
    waiting = run_command(empty_database_url, tmp_path, "db", "status", env=MANUAL)
    assert waiting.returncode == NOT_READY
    assert waiting.stdout.splitlines()[-1] == "pending: portos_0001"
    settings = Settings(
        database_url=empty_database_url,
        dialects=("portos",),
        openapi_dir=ROOT / "openapi",
        sweep_interval=0,
        auto_migrate=True,
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json() == {"status": "ok"}
    assert version_rows(empty_database_url) == {CORE_HEAD, "portos_0001"}
    assert has_device_table(empty_database_url)
    assert devices_of(empty_database_url) == []
    assert differences_from_declared(empty_database_url, "sg_device", portos_metadata) == []


@pytest.mark.slow
def test_undoing_the_cores_0003_drops_the_device_table_only_where_the_core_still_holds_it(empty_database_url, tmp_path):
    # Never taken over (portos never enabled since): 0003 made it, and undoing 0003 drops it, as it always did.
    a_database_of_before_issue_14(empty_database_url)
    without = MANUAL | WITHOUT_PORTOS
    assert run_command(empty_database_url, tmp_path, "db", "downgrade", "0002", env=without).returncode == 0
    assert (version_rows(empty_database_url), has_device_table(empty_database_url)) == ({"0002"}, False)

    # Taken over: portos's branch holds it, and the core's downgrade leaves it, rows and all, even with portos
    # disabled (its row is set aside while the core's revisions are undone, and kept).
    assert run_command(empty_database_url, tmp_path, "db", "upgrade", env=MANUAL).returncode == 0
    made = devices_of(empty_database_url, add={"P01": {"tenant": "default", "env": "PDA"}})
    for env in (without, MANUAL):
        done = run_command(empty_database_url, tmp_path, "db", "downgrade", "0002", env=env)
        assert done.returncode == 0, done.stderr
        assert version_rows(empty_database_url) == {"0002", "portos_0001"}
        assert has_device_table(empty_database_url)
        assert run_command(empty_database_url, tmp_path, "db", "upgrade", env=env).returncode == 0
        assert version_rows(empty_database_url) == {CORE_HEAD, "portos_0001"}
        assert devices_of(empty_database_url) == made

    # Undoing portos's branch drops its table; the core stays where it is.
    undone = run_command(empty_database_url, tmp_path, "db", "downgrade", "portos@base", env=MANUAL)
    assert undone.returncode == 0, undone.stderr
    assert (version_rows(empty_database_url), has_device_table(empty_database_url)) == ({CORE_HEAD}, False)
    assert run_command(empty_database_url, tmp_path, "db", "upgrade", env=MANUAL).returncode == 0
    assert run_command(empty_database_url, tmp_path, "db", "downgrade", "base", env=MANUAL).returncode == 0
    assert (version_rows(empty_database_url), has_device_table(empty_database_url)) == (set(), False)


def test_portoss_branch_is_a_branch_as_the_rules_say_and_its_table_is_reached_only_through_the_sdk():
    assert registry.migrations([PortosDialect()]).branches == (("portos", PortosDialect.migrations),)
    from tests.contract.test_layers import imported_modules

    package = ROOT / "plugins" / "sessiongate_portos"
    for path in package.rglob("*.py"):
        inner = [m for m in imported_modules(path) if m.split(".")[0] == "sessiongate" and m != "sessiongate.dialect"]
        assert inner == [], path
        assert "engine" not in path.read_text(), path  # through ctx.storage, never an engine of its own
