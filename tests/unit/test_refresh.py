from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from sessiongate.core.errors import SessionExpired, SessionRevoked, Unauthenticated
from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.identity import devices as _devices  # noqa: F401 - registers sg_device in the metadata
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage import store as _store  # noqa: F401 - registers the listing indexes
from sessiongate.storage.tables import metadata
from sessiongate.tokens.refresh import RefreshRaced, RefreshTokenReused, RefreshTokens

pytestmark = pytest.mark.anyio

HOUR = 3600.0
POLICY = ExpiryPolicy(ttl=12 * HOUR)
GRACE = 10.0
MINE = {"sg_refresh_token", "sg_device"}
LISTING = {"ix_sg_session_live_created", "ix_sg_session_live_expires", "ix_sg_session_live_principal"}


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=True) as built:
        yield built


@pytest.fixture
def tokens(services) -> RefreshTokens:
    return RefreshTokens(services.runner, services.digester)


async def login(services, tokens, policy=POLICY):
    session = (await services.sessions.create(NewSession(dialect="test", subject="u"), policy)).session
    secret = await tokens.issue(session.id, now=services.sessions.now(), expires_at=session.expires_at)
    return session, secret


async def test_only_a_digest_of_a_refresh_token_is_stored(services, tokens):
    _, secret = await login(services, tokens)
    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM sg_refresh_token"))).all()
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0])


async def test_rotation_extends_the_session_and_hands_out_a_successor(services, tokens, clock):
    session, secret = await login(services, tokens)
    clock.advance(HOUR)
    rotated = await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl, session_id=session.id)
    assert rotated.session_id == session.id
    assert rotated.secret != secret
    assert rotated.expires_at == clock.now + timedelta(hours=12)
    extended = await services.sessions.get(session.id)
    assert extended.expires_at == rotated.expires_at
    assert extended.last_seen_at == clock.now
    assert extended.version == session.version + 1
    again = await tokens.rotate(rotated.secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    assert again.session_id == session.id


async def test_a_just_rotated_token_is_a_lost_race_not_a_theft(services, tokens, clock):
    session, secret = await login(services, tokens)
    rotated = await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    clock.advance(GRACE)
    with pytest.raises(RefreshRaced) as raised:
        await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    assert raised.value.session_id == session.id
    assert (await services.sessions.get(session.id)).revoked_at is None
    assert (await tokens.rotate(rotated.secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)).session_id == session.id


async def test_reuse_after_the_grace_window_revokes_the_session_and_the_whole_family(services, tokens, clock):
    session, secret = await login(services, tokens)
    rotated = await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    clock.advance(GRACE + 1)
    with pytest.raises(RefreshTokenReused):
        await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    assert (await services.sessions.store.by_id(session.id)).revoked_at == clock.now
    with pytest.raises(SessionRevoked):
        await tokens.rotate(rotated.secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)


async def test_concurrent_rotations_of_one_token_have_exactly_one_winner(services, tokens, clock):
    _, secret = await login(services, tokens)
    outcomes = await asyncio.gather(
        *(tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl) for _ in range(8)), return_exceptions=True
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, RefreshRaced) for o in outcomes if isinstance(o, BaseException))
    async with services.engine.connect() as conn:
        live = (await conn.execute(text("SELECT count(*) FROM sg_refresh_token WHERE rotated_at IS NULL"))).scalar()
    assert live == 1


async def test_concurrent_rotations_from_two_processes_have_exactly_one_winner(database_url, clock):
    async with (
        open_services(Settings(database_url=database_url), clock=clock, migrate=True) as a,
        open_services(Settings(database_url=database_url), clock=clock) as b,
    ):
        _, secret = await login(a, RefreshTokens(a.runner, a.digester))
        rotations = [
            RefreshTokens(s.runner, s.digester).rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)
            for s in (a, b, a, b)
        ]
        outcomes = await asyncio.gather(*rotations, return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, RefreshRaced) for o in outcomes if isinstance(o, BaseException))


async def test_an_unknown_token_is_unauthenticated(tokens, clock):
    with pytest.raises(Unauthenticated) as raised:
        await tokens.rotate("not-a-token", now=clock.now, grace=GRACE, ttl=POLICY.ttl)
    assert type(raised.value) is Unauthenticated


async def test_a_token_presented_for_another_session_is_unknown_and_left_alone(services, tokens, clock):
    _, secret = await login(services, tokens)
    other, _ = await login(services, tokens)
    with pytest.raises(Unauthenticated):
        await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl, session_id=other.id)
    assert await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)


async def test_an_expired_token_cannot_be_rotated(services, tokens, clock):
    _, secret = await login(services, tokens)
    clock.advance(12 * HOUR)
    with pytest.raises(SessionExpired):
        await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)


async def test_the_token_of_a_revoked_session_cannot_be_rotated(services, tokens, clock):
    session, secret = await login(services, tokens)
    await services.sessions.revoke(session.id)
    with pytest.raises(SessionRevoked):
        await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=POLICY.ttl)


async def test_extension_is_capped_by_the_absolute_expiry(services, tokens, clock):
    capped = ExpiryPolicy(ttl=12 * HOUR, absolute=13 * HOUR)
    session, secret = await login(services, tokens, capped)
    clock.advance(6 * HOUR)
    rotated = await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=capped.ttl)
    assert rotated.expires_at == session.created_at + timedelta(hours=13)


async def test_rotation_without_a_ttl_keeps_the_expiry(services, tokens, clock):
    session, secret = await login(services, tokens)
    clock.advance(HOUR)
    rotated = await tokens.rotate(secret, now=clock.now, grace=GRACE, ttl=None)
    assert rotated.expires_at == session.expires_at
    assert (await services.sessions.get(session.id)).version == session.version


async def test_sweep_deletes_expired_tokens_only(services, tokens, clock):
    await login(services, tokens)
    clock.advance(HOUR)
    await login(services, tokens)
    clock.advance(11 * HOUR)
    assert await tokens.sweep_expired(now=clock.now) == 1
    assert await tokens.sweep_expired(now=clock.now) == 0


async def test_a_failing_transaction_writes_nothing(services):
    def work(conn):
        conn.execute(text("DELETE FROM sg_secret"))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await services.runner.transaction(work)
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sg_secret"))).scalar() > 0
    assert await services.runner.transaction(lambda conn: conn.execute(text("SELECT 1")).scalar()) == 1


async def test_migration_0003_creates_what_the_table_definitions_declare(services):
    def ours(obj, name, kind, reflected, compare_to):
        if kind == "table":
            return name in MINE
        if kind == "index" and obj.table.name == "sg_session":
            return name in LISTING
        return obj.table.name in MINE

    def differences(conn):
        # GUID columns reflect as NUMERIC on SQLite, so types are not compared (the 0001 tables have the same).
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": False})
        return compare_metadata(context, metadata)

    async with services.engine.connect() as conn:
        assert await conn.run_sync(differences) == []
        indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("sg_session")})
    assert indexes >= LISTING
