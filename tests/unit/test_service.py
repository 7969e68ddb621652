from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool
from uuid_utils.compat import uuid7

from sessiongate.core.errors import NotFound, SessionExpired, SessionRevoked, Unauthenticated
from sessiongate.core.models import ExpiryPolicy, NewSession, PageRequest, SessionQuery
from sessiongate.runtime import Services, open_services
from sessiongate.sessions.audit import AuditLog, NewEvent
from sessiongate.settings import Settings
from sessiongate.storage.audit_table import LIMITS, ROW_COLUMNS
from sessiongate.storage.runner import AsyncEngineRunner, Outcome
from sessiongate.storage.store import SqlSessionStore, reuse_key_digest, session_from_row
from sessiongate.storage.tables import SessionRecord
from tests.support.plans import explain_statement

pytestmark = pytest.mark.anyio

FIXED = ExpiryPolicy(ttl=600, touch_interval=0)
SLIDING = ExpiryPolicy(ttl=7200, sliding=True, touch_interval=60)


@pytest.fixture
async def services(database_url, clock) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url), clock=clock, migrate=True) as built:
        yield built


def new(**kw) -> NewSession:
    return NewSession(dialect="test", **kw)


async def test_create_with_secret_stores_only_a_digest(services):
    created = await services.sessions.create(new(subject="u1"), FIXED, with_secret=True)
    assert created.secret
    async with services.engine.connect() as conn:
        rows = (await conn.exec_driver_sql("SELECT * FROM sg_session")).all()
    assert all(created.secret not in str(value) for row in rows for value in row)


async def test_secret_resolves_to_its_session_until_it_expires(services, clock):
    created = await services.sessions.create(new(), FIXED, with_secret=True)
    assert (await services.sessions.resolve_secret(created.secret, FIXED)).id == created.session.id
    clock.advance(600)
    with pytest.raises(SessionExpired):
        await services.sessions.resolve_secret(created.secret, FIXED)


async def test_unknown_secret_is_unauthenticated(services):
    with pytest.raises(Unauthenticated):
        await services.sessions.resolve_secret("nope", FIXED)


async def test_sliding_session_moves_its_expiry_on_use(services, clock):
    created = await services.sessions.create(new(), SLIDING, with_secret=True)
    clock.advance(3600)
    used = await services.sessions.resolve_secret(created.secret, SLIDING)
    assert used.expires_at == clock.now + timedelta(seconds=7200)
    assert used.last_seen_at == clock.now
    assert used.version == created.session.version + 1
    clock.advance(7199)
    assert await services.sessions.resolve_secret(created.secret, SLIDING)


async def test_use_within_the_touch_interval_writes_nothing(services, clock):
    created = await services.sessions.create(new(), SLIDING, with_secret=True)
    clock.advance(30)
    used = await services.sessions.resolve_secret(created.secret, SLIDING)
    assert used.version == created.session.version
    assert used.expires_at == created.session.expires_at


async def test_absolute_cap_ends_a_sliding_session(services, clock):
    policy = ExpiryPolicy(ttl=100, sliding=True, absolute=250, touch_interval=0)
    created = await services.sessions.create(new(), policy, with_secret=True)
    for _ in range(2):
        clock.advance(90)
        await services.sessions.resolve_secret(created.secret, policy)
    clock.advance(69)
    used = await services.sessions.resolve_secret(created.secret, policy)
    assert used.expires_at == created.session.created_at + timedelta(seconds=250)
    clock.advance(1)
    with pytest.raises(SessionExpired):
        await services.sessions.resolve_secret(created.secret, policy)


async def test_a_session_stored_without_an_absolute_end_still_ends_at_the_policys_cap(services, clock):
    # A row written before its dialect had a maximum lifetime (absolute_expires_at is NULL) must not slide forever.
    uncapped = ExpiryPolicy(ttl=100, sliding=True, touch_interval=0)
    created = await services.sessions.create(new(), uncapped, with_secret=True)
    assert created.session.absolute_expires_at is None
    capped = ExpiryPolicy(ttl=100, sliding=True, absolute=250, touch_interval=0)
    clock.advance(90)
    await services.sessions.resolve_secret(created.secret, capped)
    clock.advance(90)
    used = await services.sessions.resolve_secret(created.secret, capped)
    assert used.expires_at == created.session.created_at + timedelta(seconds=250)
    clock.advance(69)
    await services.sessions.resolve_secret(created.secret, capped)
    clock.advance(1)
    with pytest.raises(SessionExpired):
        await services.sessions.resolve_secret(created.secret, capped)


async def test_a_session_stored_without_an_absolute_end_is_refused_once_past_the_policys_cap(services, clock):
    uncapped = ExpiryPolicy(ttl=100, sliding=True, touch_interval=0)
    created = await services.sessions.create(new(), uncapped, with_secret=True)
    for _ in range(4):
        clock.advance(90)
        await services.sessions.resolve_secret(created.secret, uncapped)
    with pytest.raises(SessionExpired):
        await services.sessions.resolve_secret(created.secret, ExpiryPolicy(ttl=100, absolute=300, touch_interval=0))


async def test_idle_timeout_ends_an_unused_session(services, clock):
    policy = ExpiryPolicy(ttl=3600, idle=300, touch_interval=0)
    created = await services.sessions.create(new(), policy, with_secret=True)
    clock.advance(299)
    await services.sessions.resolve_secret(created.secret, policy)
    clock.advance(300)
    with pytest.raises(SessionExpired):
        await services.sessions.resolve_secret(created.secret, policy)


async def test_revoked_session_is_rejected_at_once(services):
    created = await services.sessions.create(new(), FIXED, with_secret=True)
    await services.sessions.revoke(created.session.id)
    with pytest.raises(SessionRevoked):
        await services.sessions.resolve_secret(created.secret, FIXED)
    with pytest.raises(NotFound):
        await services.sessions.revoke(created.session.id)


async def test_jwt_resolves_to_a_live_session_only(services):
    created = await services.sessions.create(new(), FIXED)
    token = services.sessions.issue_jwt(created.session, {"session": created.session.id})
    session, claims = await services.sessions.resolve_jwt(token.value, FIXED, session_claim="session")
    assert session.id == claims["session"] == created.session.id
    await services.sessions.revoke(created.session.id)
    with pytest.raises(SessionRevoked):
        await services.sessions.resolve_jwt(token.value, FIXED, session_claim="session")


async def test_sessions_of_another_tenant_are_invisible(services):
    created = await services.sessions.create(new(tenant="a"), FIXED, with_secret=True)
    with pytest.raises(Unauthenticated):
        await services.sessions.resolve_secret(created.secret, FIXED, tenant="b")
    with pytest.raises(NotFound):
        await services.sessions.get(created.session.id, tenant="b")
    with pytest.raises(NotFound):
        await services.sessions.revoke(created.session.id, tenant="b")


async def test_reuse_key_returns_the_live_session_unchanged(services, clock):
    first = await services.sessions.create(new(reuse_key="k"), FIXED)
    clock.advance(10)
    again = await services.sessions.create(new(reuse_key="k"), FIXED)
    assert again.reused
    assert again.session == first.session


async def test_reuse_key_of_an_expired_session_starts_a_new_one(services, clock):
    first = await services.sessions.create(new(reuse_key="k"), FIXED)
    clock.advance(600)
    again = await services.sessions.create(new(reuse_key="k"), FIXED)
    assert not again.reused
    assert again.session.id != first.session.id


async def test_replace_ends_the_live_holder_of_the_key(services):
    first = await services.sessions.create(new(reuse_key="k"), FIXED)
    second = await services.sessions.replace(new(reuse_key="k"), FIXED)
    assert second.session.id != first.session.id
    with pytest.raises(NotFound):
        await services.sessions.get(first.session.id)


async def test_replace_and_hand_over_write_the_dialects_rows_with_the_new_session_only(services):
    # A dialect's own rows (also_write) come with a session made by a takeover as with a plain create: once, for the
    # session created, never for one the key was found with.
    notes = sa.Table(
        "test_note",
        sa.MetaData(),
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("note", sa.String(20)),
    )

    def keeping(note: str):
        return lambda session: [sa.insert(notes).values(session_id=session.id, note=note)]

    await services.runner.transaction(notes.create)
    try:
        await services.sessions.create(new(reuse_key="k", principal_id="p"), FIXED)
        replaced = await services.sessions.replace(new(reuse_key="k", principal_id="p"), FIXED, also_write=keeping("r"))
        handed = await services.sessions.hand_over(new(reuse_key="k", principal_id="q"), FIXED, also_write=keeping("h"))
        rows = await services.runner.read(sa.select(notes.c.session_id, notes.c.note))
        assert sorted(map(tuple, rows)) == sorted([(replaced.session.id, "r"), (handed.session.id, "h")])
        with pytest.raises(NotFound):
            await services.sessions.get(replaced.session.id)  # handed over: the key's holder is another principal
    finally:
        await services.runner.transaction(notes.drop)  # not handed on with the database


async def test_revoke_all_for_principal_spares_the_excepted_session(services):
    keep = await services.sessions.create(new(principal_id="p"), FIXED)
    drop = await services.sessions.create(new(principal_id="p"), FIXED)
    other = await services.sessions.create(new(principal_id="q"), FIXED)
    assert await services.sessions.revoke_all_for_principal("p", except_id=keep.session.id) == 1
    assert await services.sessions.get(keep.session.id)
    assert await services.sessions.get(other.session.id)
    with pytest.raises(NotFound):
        await services.sessions.get(drop.session.id)


async def test_sweep_deletes_dead_sessions_in_batches(services, clock):
    for _ in range(5):
        await services.sessions.create(new(), FIXED)
    live = await services.sessions.create(new(), ExpiryPolicy(ttl=10_000))
    clock.advance(601)
    assert await services.sessions.sweep_expired(batch=3) == 3
    assert await services.sessions.sweep_expired(batch=3) == 2
    assert await services.sessions.sweep_expired(batch=3) == 0
    assert await services.sessions.get(live.session.id)


async def test_sweep_deletes_revoked_sessions_before_they_expire(services, clock):
    expiring = [await services.sessions.create(new(), FIXED) for _ in range(2)]
    revoked = [await services.sessions.create(new(), ExpiryPolicy(ttl=10_000)) for _ in range(2)]
    live = await services.sessions.create(new(), ExpiryPolicy(ttl=10_000))
    for created in revoked:
        await services.sessions.revoke(created.session.id)
    clock.advance(601)
    assert await services.sessions.sweep_expired(batch=3) == 3
    assert await services.sessions.sweep_expired(batch=3) == 1
    assert await services.sessions.sweep_expired(batch=3) == 0
    for gone in (*expiring, *revoked):
        with pytest.raises(NotFound):
            await services.sessions.get(gone.session.id)
    assert await services.sessions.get(live.session.id)


async def test_sweep_searches_its_victims_and_never_scans_the_sessions(services, clock):
    # It runs on the writer: a scan of every session would hold every create for as long.
    for _ in range(20):
        await services.sessions.create(new(), FIXED)
    sent: list[Executable] = []
    runner = services.sessions.store.runner
    write = runner.write

    async def recording(statement: Executable, params: dict[str, object] | None = None) -> Outcome:
        sent.append(statement)
        return await write(statement, params)

    runner.write = recording  # type: ignore[method-assign]
    await services.sessions.sweep_expired(batch=5)
    sqlite = services.engine.dialect.name == "sqlite"
    assert len(sent) == (3 if sqlite else 2)  # expired, then revoked; on SQLite, then the change log's trim
    if sqlite:
        plan = await explain_statement(services, sent.pop())
        assert "SCAN sg_session_change" not in plan, plan  # the entries before a sequence number, by the key
    for statement in sent:
        plan = await explain_statement(services, statement)
        if services.engine.dialect.name == "sqlite":
            assert "SCAN sg_session" not in plan, plan
            assert "SEARCH sg_session USING INDEX ix_sg_session_" in plan, plan
        else:
            # A Filter means rows read and thrown away: the victims must come from an index condition or the
            # partial index of revoked rows.
            assert "Seq Scan" not in plan, plan
            assert "Filter:" not in plan, plan
            assert "Index Cond: (expires_at <=" in plan or "ix_sg_session_revoked" in plan, plan


async def test_list_shows_live_sessions_of_the_tenant(services, clock):
    for i in range(3):
        await services.sessions.create(new(subject=f"s{i}"), FIXED)
    await services.sessions.create(new(tenant="other"), FIXED)
    page = await services.sessions.list(SessionQuery(page=PageRequest(skip=0, take=2)))
    assert page.total == 3
    assert len(page.items) == 2
    clock.advance(600)
    assert (await services.sessions.list(SessionQuery())).total == 0


async def test_concurrent_creates_are_all_stored_and_distinct(services):
    created = await asyncio.gather(*[services.sessions.create(new(reuse_key=f"k{i}"), FIXED) for i in range(200)])
    assert len({c.session.id for c in created}) == 200
    assert (await services.sessions.list(SessionQuery(page=PageRequest(take=1)))).total == 200


@pytest.fixture
async def sqlite_services(tmp_path, clock) -> AsyncIterator[Services]:
    url = f"sqlite+aiosqlite:///{tmp_path}/driver.db"
    async with open_services(Settings(database_url=url), clock=clock, migrate=True) as built:
        yield built


async def test_the_creates_dbapi_insert_stores_and_returns_what_sqlalchemys_execution_of_it_does(
    sqlite_services, clock
):
    # On SQLite (only) a create's INSERT runs on the writer's DBAPI connection (storage.store._DriverInsert), converting
    # parameters and the returned row itself; the same statement run by SQLAlchemy on the same runner is the reference.
    services = sqlite_services
    store = services.sessions.store
    assert store._driver_inserts is not None
    now = clock.now

    def values(key: str) -> dict[str, object]:
        return {
            "id": uuid7(),
            "tenant": "t",
            "dialect": "test",
            "principal_id": "p1",
            "subject": "s ü",
            "client_address": "10.0.0.1",
            "token_digest": services.digester.digest(key),
            "reuse_key": reuse_key_digest(key),
            "device_id": "dev-1",
            "device_name": "Kassa ☃",
            "device_kind": "phone",
            "device_model": "X",
            "device_sdk_version": "6.35.3",
            "device_env": None,
            "created_at": now,
            "updated_at": now,
            "last_seen_at": now,
            "expires_at": now + timedelta(seconds=600),
            "absolute_expires_at": now + timedelta(seconds=900),
            "revoked_at": None,
            "version": 1,
            "attributes": {"roles": ["a", "b"], "n": 1.5, "text": "☃"},
        }

    by_driver = await store._driver_inserts[1].run(values("driver"))
    by_sqlalchemy = session_from_row((await services.runner.write(store._upsert, values("sqlalchemy"))).rows[0])
    assert by_driver == await services.sessions.get(by_driver.id, tenant="t")
    assert msgspec.structs.replace(by_driver, id=by_sqlalchemy.id) == by_sqlalchemy

    columns = [c.name for c in SessionRecord.__table__.columns if c.name not in {"id", "token_digest", "reuse_key"}]
    typed = ", ".join(f"{c}, typeof({c})" for c in columns)
    async with services.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(f"SELECT {typed}, typeof(id), length(id) FROM sg_session")).all()
    assert len(rows) == 2
    assert rows[0] == rows[1]


async def test_the_writer_stores_json_columns_as_the_async_engine_encodes_them(sqlite_services):
    # The writer thread has an engine of its own: JSON columns it writes are the same text the app's engine writes
    # (and reads), not the standard library's spacing and escapes.
    services = sqlite_services
    attributes = {"roles": ["a", "b"], "name": "Kassa ☃", "n": 1.5}
    created = await services.sessions.create(new(tenant="t", subject="s", attributes=attributes), FIXED)
    async with services.engine.connect() as conn:
        stored = (await conn.exec_driver_sql("SELECT attributes FROM sg_session")).scalar_one()
        encoded = conn.dialect._json_serializer(attributes)  # type: ignore[attr-defined]
    assert stored == encoded == '{"roles":["a","b"],"name":"Kassa ☃","n":1.5}'
    assert (await services.sessions.get(created.session.id, tenant="t")).attributes == attributes


ODD = {"actor": "user", "tenant": "t", "dialect": "test", "principal_id": "p\x00☃", "user_agent": "é" * 300}


async def test_a_creates_audit_event_written_with_its_session_is_stored_as_the_audit_log_stores_one(
    sqlite_services, clock
):
    # The event a create writes with its session (the writer's DBAPI statement on SQLite) against the same event
    # written by AuditLog.record through SQLAlchemy: the same values, of the same SQLite types, cut and cleaned alike.
    services = sqlite_services
    audit = services.sessions.audit
    assert audit is not None
    event = NewEvent(kind="session.created", **ODD, detail={"note": "x\x00y", "n": 2, "ok": True})
    new = NewSession(tenant="t", dialect="test", principal_id="p1")
    session, reused = await services.sessions.store.insert(
        new,
        now=clock.now,
        expires_at=clock.now + timedelta(seconds=60),
        absolute_expires_at=None,
        token_digest=None,
        audit=audit.row(event),
    )
    assert not reused
    await audit.record(msgspec.structs.replace(event, session_id=session.id))
    typed = ", ".join(f"{c}, typeof({c})" for c in ROW_COLUMNS if c != "id")
    async with services.engine.connect() as conn:
        rows = (await conn.exec_driver_sql(f"SELECT {typed}, typeof(id), length(id) FROM sg_audit_event")).all()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert rows[0][ROW_COLUMNS.index("user_agent") * 2 - 2] == "é" * LIMITS["user_agent"]


async def test_an_in_memory_databases_create_writes_its_event_in_the_sessions_transaction(clock):
    # SQLite without the writer thread (an in-memory database, on the async engine): the insert and its event are
    # one transaction of two statements, and a reused session adds no event.
    engine = create_async_engine("sqlite+aiosqlite:///:memory:", poolclass=StaticPool)
    async with engine.begin() as conn:
        await conn.run_sync(SessionRecord.metadata.create_all)
    store = SqlSessionStore(engine, AsyncEngineRunner(engine))
    row = AuditLog(store.runner, lambda: clock.now).row(NewEvent(kind="session.created", actor="user"))
    new = NewSession(tenant="t", dialect="test", principal_id="p1", reuse_key="k")
    later = clock.now + timedelta(seconds=60)
    first, reused = await store.insert(
        new, now=clock.now, expires_at=later, absolute_expires_at=None, token_digest=None, audit=row
    )
    again, reused_again = await store.insert(
        new, now=clock.now, expires_at=later, absolute_expires_at=None, token_digest=None, audit=row
    )
    assert (reused, reused_again, again.id) == (False, True, first.id)
    async with engine.connect() as conn:
        stored = (await conn.exec_driver_sql("SELECT session_id, kind FROM sg_audit_event")).all()
    assert stored == [(first.id, "session.created")]
    await engine.dispose()
