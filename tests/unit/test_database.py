from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
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
