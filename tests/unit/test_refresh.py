"""Refresh tokens through the session service: single use, one winner of a race, a copy ends the login."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from sessiongate.core.errors import RefreshRaced, RefreshTokenReused, SessionExpired, SessionRevoked, Unauthenticated
from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.runtime import Services, open_services
from sessiongate.sessions.service import SessionService
from sessiongate.settings import Settings
from sessiongate.storage import store as _store  # noqa: F401 - registers the listing indexes
from sessiongate.storage.tables import metadata

pytestmark = pytest.mark.anyio

HOUR = 3600.0
POLICY = ExpiryPolicy(ttl=12 * HOUR)
GRACE = 10.0
MINE = {"sg_refresh_token"}
LISTING = {"ix_sg_session_live_created", "ix_sg_session_live_expires", "ix_sg_session_live_principal"}


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=True) as built:
        yield built


@pytest.fixture
def sessions(services) -> SessionService:
    return services.sessions


async def login(sessions, policy=POLICY):
    session = (await sessions.create(NewSession(dialect="test", subject="u"), policy)).session
    return session, await sessions.issue_refresh(session)


async def test_only_a_digest_of_a_refresh_token_is_stored(services, sessions):
    _, secret = await login(sessions)
    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM sg_refresh_token"))).all()
    assert len(rows) == 1
    assert all(secret not in str(value) for value in rows[0])


async def test_a_refresh_extends_the_session_and_hands_out_a_successor(sessions, clock):
    session, secret = await login(sessions)
    clock.advance(HOUR)
    refreshed = await sessions.refresh(secret, POLICY, grace=GRACE, session_id=session.id)
    assert refreshed.session.id == session.id
    assert refreshed.refresh_token != secret
    assert refreshed.session.expires_at == clock.now + timedelta(hours=12)
    extended = await sessions.get(session.id)
    assert extended == refreshed.session  # the session as stored, not a patched copy
    assert extended.last_seen_at == clock.now
    assert extended.version == session.version + 1
    again = await sessions.refresh(refreshed.refresh_token, POLICY, grace=GRACE)
    assert again.session.id == session.id


async def test_a_successor_is_made_by_the_dialects_mint(sessions):
    session, secret = await login(sessions)
    refreshed = await sessions.refresh(secret, POLICY, grace=GRACE, mint=lambda: "rt-" + "x" * 40)
    assert refreshed.refresh_token == "rt-" + "x" * 40
    assert (await sessions.refresh(refreshed.refresh_token, POLICY, grace=GRACE)).session.id == session.id


async def test_a_just_rotated_token_is_a_lost_race_not_a_theft(sessions, clock):
    session, secret = await login(sessions)
    refreshed = await sessions.refresh(secret, POLICY, grace=GRACE)
    clock.advance(GRACE)
    with pytest.raises(RefreshRaced) as raised:
        await sessions.refresh(secret, POLICY, grace=GRACE)
    assert raised.value.session_id == session.id
    assert (await sessions.get(session.id)).revoked_at is None
    assert (await sessions.refresh(refreshed.refresh_token, POLICY, grace=GRACE)).session.id == session.id


async def test_reuse_after_the_grace_window_revokes_the_session_and_the_whole_family(sessions, clock):
    session, secret = await login(sessions)
    refreshed = await sessions.refresh(secret, POLICY, grace=GRACE)
    clock.advance(GRACE + 1)
    with pytest.raises(RefreshTokenReused):
        await sessions.refresh(secret, POLICY, grace=GRACE)
    assert (await sessions.store.by_id(session.id)).revoked_at == clock.now
    with pytest.raises(SessionRevoked):
        await sessions.refresh(refreshed.refresh_token, POLICY, grace=GRACE)


async def test_a_reuse_is_recorded_with_its_revoke_naming_the_session(services, sessions, clock):
    session, secret = await login(sessions)
    await sessions.refresh(secret, POLICY, grace=GRACE)
    clock.advance(GRACE + 1)
    with pytest.raises(RefreshTokenReused):
        await sessions.refresh(secret, POLICY, grace=GRACE)
    async with services.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT kind, actor, dialect, session_id FROM sg_audit_event"))).all()
    theft = sorted(tuple(row) for row in rows if row.actor == "theft-detection")
    assert theft == [
        ("refresh.reuse_detected", "theft-detection", "test", session.id),
        ("session.revoked", "theft-detection", "test", session.id),
    ]
    with pytest.raises(SessionRevoked) as again:  # the copy again: the login is over, nothing more to record
        await sessions.refresh(secret, POLICY, grace=GRACE)
    assert type(again.value) is SessionRevoked
    async with services.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sg_audit_event"))).scalar() == len(rows)


async def test_concurrent_refreshes_with_one_token_have_exactly_one_winner(services, sessions):
    _, secret = await login(sessions)
    outcomes = await asyncio.gather(
        *(sessions.refresh(secret, POLICY, grace=GRACE) for _ in range(8)), return_exceptions=True
    )
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(o, RefreshRaced) for o in outcomes if isinstance(o, BaseException))
    async with services.engine.connect() as conn:
        live = (await conn.execute(text("SELECT count(*) FROM sg_refresh_token WHERE rotated_at IS NULL"))).scalar()
    assert live == 1


async def test_concurrent_refreshes_from_two_processes_have_exactly_one_winner(database_url, clock):
    async with (
        open_services(Settings(database_url=database_url), clock=clock, migrate=True) as a,
        open_services(Settings(database_url=database_url), clock=clock) as b,
    ):
        _, secret = await login(a.sessions)
        refreshes = [s.sessions.refresh(secret, POLICY, grace=GRACE) for s in (a, b, a, b)]
        outcomes = await asyncio.gather(*refreshes, return_exceptions=True)
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(isinstance(o, RefreshRaced) for o in outcomes if isinstance(o, BaseException))


async def test_an_unknown_token_is_unauthenticated(sessions):
    with pytest.raises(Unauthenticated) as raised:
        await sessions.refresh("not-a-token", POLICY, grace=GRACE)
    assert type(raised.value) is Unauthenticated


async def test_a_token_presented_for_another_session_is_unknown_and_left_alone(sessions):
    _, secret = await login(sessions)
    other, _ = await login(sessions)
    with pytest.raises(Unauthenticated) as raised:
        await sessions.refresh(secret, POLICY, grace=GRACE, session_id=other.id)
    assert type(raised.value) is Unauthenticated
    assert await sessions.refresh(secret, POLICY, grace=GRACE)


async def test_an_expired_token_cannot_be_used(sessions, clock):
    _, secret = await login(sessions)
    clock.advance(12 * HOUR)
    with pytest.raises(SessionExpired):
        await sessions.refresh(secret, POLICY, grace=GRACE)


async def test_the_token_of_a_revoked_session_cannot_be_used(sessions):
    session, secret = await login(sessions)
    await sessions.revoke(session.id)
    with pytest.raises(SessionRevoked):
        await sessions.refresh(secret, POLICY, grace=GRACE)


async def test_a_refresh_is_capped_by_the_stored_absolute_expiry(sessions, clock):
    capped = ExpiryPolicy(ttl=12 * HOUR, absolute=13 * HOUR)
    session, secret = await login(sessions, capped)
    clock.advance(6 * HOUR)
    refreshed = await sessions.refresh(secret, capped, grace=GRACE)
    assert refreshed.session.expires_at == session.created_at + timedelta(hours=13)


async def test_a_session_stored_before_its_policy_had_a_cap_is_refreshed_only_up_to_the_policys_cap(sessions, clock):
    session, secret = await login(sessions)  # no absolute end stored
    assert session.absolute_expires_at is None
    clock.advance(6 * HOUR)
    capped = ExpiryPolicy(ttl=12 * HOUR, absolute=13 * HOUR)
    refreshed = await sessions.refresh(secret, capped, grace=GRACE)
    assert refreshed.session.expires_at == session.created_at + timedelta(hours=13)


async def test_a_refresh_without_a_policy_keeps_the_expiry(sessions, clock):
    session, secret = await login(sessions)
    clock.advance(HOUR)
    refreshed = await sessions.refresh(secret, None, grace=GRACE)
    assert refreshed.session.expires_at == session.expires_at
    assert (await sessions.get(session.id)).version == session.version


async def test_sweep_deletes_expired_tokens_only(sessions, clock):
    await login(sessions)
    clock.advance(HOUR)
    await login(sessions)
    clock.advance(11 * HOUR)
    assert await sessions.refresh_tokens.delete_expired(now=clock.now, batch=500) == 1
    assert await sessions.refresh_tokens.delete_expired(now=clock.now, batch=500) == 0


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


async def test_a_refresh_token_is_looked_up_only_while_a_refresh_would_accept_it(sessions, clock):
    session, secret = await login(sessions)
    stored, found = await sessions.refresh_token(secret)
    assert (found.id, stored.session_id, stored.created_at) == (session.id, session.id, session.created_at)
    assert secret not in stored.digest
    assert (await sessions.get(session.id)).version == session.version  # a lookup, not a use
    refreshed = await sessions.refresh(secret, POLICY, grace=GRACE)
    assert await sessions.refresh_token(secret) is None  # rotated
    assert await sessions.refresh_token("not-a-token") is None
    assert (await sessions.refresh_token(refreshed.refresh_token))[1].id == session.id
    await sessions.revoke(session.id)
    assert await sessions.refresh_token(refreshed.refresh_token) is None  # its session ended
