from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import inspect, text

from sessiongate.app import create_app
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings, SettingsError
from sessiongate.storage.database import alchemy_config
from sessiongate.storage.store import LISTING_INDEXES
from sessiongate.storage.tables import SessionRecord


def test_a_long_lived_process_can_build_many_database_configs():
    # Each app and CLI command builds one; a test run or an embedding host builds thousands in one process.
    configs = [alchemy_config("postgresql+asyncpg://nobody@127.0.0.1/unused") for _ in range(2000)]
    assert len({c.session_scope_key for c in configs}) == len(configs)


@pytest.fixture
async def services(database_url) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), migrate=True) as built:
        yield built


@pytest.mark.anyio
async def test_migrated_session_table_has_exactly_the_indexes_the_code_declares(services):
    # Every index is written on every create: one the migrations leave behind and no query declares costs each insert.
    async with services.engine.connect() as conn:
        indexes = await conn.run_sync(lambda c: inspect(c).get_indexes("sg_session"))
    reflected = {i["name"] for i in indexes if not i.get("duplicates_constraint")}  # PostgreSQL's unique constraints
    declared = {i.name for i in SessionRecord.__table__.indexes}
    assert reflected == declared
    assert declared == {"ix_sg_session_expires", "ix_sg_session_revoked", *(i.name for i in LISTING_INDEXES)}


@pytest.mark.parametrize(("environ", "level"), [({}, "NORMAL"), ({"SESSIONGATE_SQLITE_SYNCHRONOUS": "FULL"}, "FULL")])
def test_every_sqlite_connection_syncs_commits_as_sqlite_synchronous_says(tmp_path, environ, level):
    url = f"sqlite+aiosqlite:///{tmp_path}/sync.db"
    settings = Settings.from_env({"SESSIONGATE_DATABASE_URL": url, "SESSIONGATE_SWEEP_INTERVAL": "0", **environ})
    query = text("PRAGMA synchronous")

    async def levels(services: Services) -> list[int]:
        async with services.engine.connect() as conn:
            engine = (await conn.execute(query)).scalar_one()
        writer = (await services.runner.write(query)).rows[0][0]
        reader = (await services.runner.read(query))[0][0]
        return [engine, writer, reader]

    with TestClient(create_app(settings)) as client:
        found = client.blocking_portal.call(levels, client.app.state.services)
    assert found == [SYNCHRONOUS[level]] * 3


SYNCHRONOUS = {"NORMAL": 1, "FULL": 2}  # what PRAGMA synchronous answers


def test_sqlite_synchronous_is_normal_or_full_and_nothing_less():
    with pytest.raises(SettingsError, match="sqlite_synchronous"):
        Settings.from_env({"SESSIONGATE_SQLITE_SYNCHRONOUS": "OFF"})
