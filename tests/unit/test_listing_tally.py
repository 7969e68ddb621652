"""A tenant's count of live sessions on SQLite: the tally kept by migration 0013's triggers, less the expired rows.

Every listing's total must equal a plain count of the live rows, whatever changed them: creates, revokes, expiry,
the sweeper, a reuse key taken over from a dead holder, or SQL written by another hand.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import cast

import pytest
from sqlalchemy import Table, delete, event, select, text, update

from sessiongate.core.models import ExpiryPolicy, NewSession, PageRequest, SessionFilter, SessionQuery
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage.database import downgrade, upgrade
from sessiongate.storage.tables import SessionRecord
from tests.support.plans import explain

pytestmark = pytest.mark.anyio

POLICY = ExpiryPolicy(ttl=3600)
S = cast("Table", SessionRecord.__table__)


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=True) as built:
        yield built


async def add(services, clock, step=1.0, **kw):
    clock.advance(step)
    kw.setdefault("dialect", "test")
    return (await services.sessions.create(NewSession(**kw), POLICY)).session


async def total(services, tenant="default"):
    return (await services.sessions.list(SessionQuery(tenant=tenant, count_only=True))).total


async def counted(services, now: datetime, tenant="default"):
    """The live sessions of ``tenant`` by their definition, read row by row."""
    async with services.engine.connect() as conn:
        rows = (await conn.execute(select(S.c.tenant, S.c.revoked_at, S.c.expires_at))).all()
    return sum(r.tenant == tenant and r.revoked_at is None and r.expires_at > now for r in rows)


async def same(services, clock, tenants=("default", "other")):
    for tenant in tenants:
        assert await total(services, tenant) == await counted(services, clock.now, tenant), tenant


async def test_the_total_follows_creates_revokes_expiry_and_the_sweeper(services, clock):
    made = [await add(services, clock, tenant="default" if i % 3 else "other", step=60) for i in range(30)]
    await same(services, clock)
    assert await total(services) == 20
    await services.sessions.revoke(made[1].id)
    await services.sessions.revoke(made[3].id, tenant="other")
    await same(services, clock)
    assert await total(services) == 19
    clock.advance(3600 - 60 * 25)  # the oldest sessions have expired, not yet swept
    await same(services, clock)
    assert await total(services) < 19
    await services.sessions.store.delete_expired(now=clock.now, batch=1000)
    await same(services, clock)
    clock.advance(7200)  # everything has expired
    assert await total(services) == 0
    await services.sessions.store.delete_expired(now=clock.now, batch=1000)
    await same(services, clock)
    await add(services, clock)
    assert await total(services) == 1


async def test_a_reuse_key_taken_from_a_dead_holder_counts_once(services, clock):
    store = services.sessions.store
    new = NewSession(tenant="default", dialect="test", principal_id="p1", reuse_key="device-1")

    async def insert() -> tuple[str, bool]:
        later = clock.now + timedelta(seconds=60)
        session, reused = await store.insert(
            new, now=clock.now, expires_at=later, absolute_expires_at=None, token_digest=None
        )
        return session.id, reused

    first, _ = await insert()
    assert await total(services) == 1
    assert await insert() == (first, True)  # a live holder is kept: nothing new
    assert await total(services) == 1
    await services.sessions.revoke(first)
    assert await total(services) == 0
    replaced, reused = await insert()  # the revoked holder's row is overwritten (an UPDATE), live again
    assert (replaced != first, reused) == (True, False)
    assert await total(services) == 1
    await same(services, clock)


async def test_rows_written_by_another_hand_are_counted(services, clock):
    made = [await add(services, clock) for _ in range(5)]
    async with services.engine.begin() as conn:
        await conn.execute(update(S).where(S.c.id == _id(made[0])).values(tenant="other"))
        await conn.execute(update(S).where(S.c.id == _id(made[1])).values(revoked_at=S.c.created_at))
        await conn.execute(update(S).where(S.c.id == _id(made[1])).values(revoked_at=None))
        await conn.execute(delete(S).where(S.c.id == _id(made[2])))
    await same(services, clock)
    assert (await total(services), await total(services, "other")) == (3, 1)


async def test_filters_and_one_principals_listing_count_rows(services, clock):
    for i in range(6):
        await add(services, clock, principal_id=f"p{i % 2}", subject=f"user-{i}")
    assert (await services.sessions.list(SessionQuery(tenant="default", principal_id="p1"))).total == 3
    only = (SessionFilter(field="subject", op="eq", values=("user-2",)),)
    assert (await services.sessions.list(SessionQuery(tenant="default", filters=only))).total == 1


async def test_the_count_reads_only_the_expired_range_of_the_live_index(services, clock):
    if services.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL counts the rows (no tally: its one row would serialize a tenant's creates)")
    for _ in range(20):
        await add(services, clock)
    captured: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("SELECT") and "FROM sg_session" in statement:
            captured.append((statement, parameters))

    event.listen(services.engine.sync_engine, "before_cursor_execute", capture)
    try:
        page = await services.sessions.list(SessionQuery(tenant="default", page=PageRequest(take=5)))
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", capture)
    assert (len(page.items), page.total) == (5, 20)
    plan = await explain(services, *captured[0])
    assert "sg_tally" in plan, plan
    assert "ix_sg_session_live_expires (tenant=? AND expires_at<?)" in plan, plan


async def test_migration_0013_tallies_the_sessions_already_there(services, clock):
    if services.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    made = [await add(services, clock, tenant="default" if i % 2 else "other") for i in range(9)]
    await services.sessions.revoke(made[1].id)
    await downgrade(services.engine, "0012")
    async with services.engine.connect() as conn:
        tables = (await conn.execute(text("SELECT name FROM sqlite_master WHERE name LIKE '%tally%'"))).all()
    assert tables == []
    await add(services, clock)  # written with no trigger to count it
    await upgrade(services.engine)
    await same(services, clock)
    assert (await total(services), await total(services, "other")) == (4, 5)


def _id(session) -> uuid.UUID:
    return uuid.UUID(session.id)
