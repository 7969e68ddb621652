"""A dialect's own rows, written with the session they belong to (``also_write`` of ``SessionStore.insert``,
``insert_capped`` and ``revoke``, ``sessiongate.core.store``) and read and written through ``DialectStorage``, on each
database alike: the session and its rows commit together or not at all, a reused or no-longer-live session gets
none, and on SQLite a failing row inside a group commit fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import StaticPool

from sessiongate.core.errors import SessionLimitReached
from sessiongate.core.models import NewSession, Session, SessionCap
from sessiongate.dialects.storage import DialectStorage
from sessiongate.sessions.audit import AuditLog, NewEvent
from sessiongate.storage.runner import AsyncEngineRunner, SqliteRunner
from sessiongate.storage.store import SqlSessionStore
from sessiongate.storage.tables import SessionRecord
from tests.storage.conftest import TTL, Backend, committed_rows
from tests.storage.test_faults import FAULTS, assert_clean, batches_of, outcomes

pytestmark = pytest.mark.anyio

NOTES = sa.Table(
    "test_note",
    sa.MetaData(),
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("note", sa.String(100), nullable=False),
)
"""A dialect's table, as a dialect declares one (its migration branch would create it)."""


@pytest.fixture
async def rows_backend(backend: Backend) -> Backend:
    """The stores over a database that also holds a dialect's table (on PostgreSQL then dropped, not handed on)."""
    await backend.execute(
        "CREATE TABLE test_note (session_id VARCHAR(36) PRIMARY KEY, tenant VARCHAR(64) NOT NULL, "
        "note VARCHAR(100) NOT NULL)"
    )
    return backend


class Notes:
    """A dialect's ``also_write``: keeps ``note`` for the session it is given, and says which sessions it was given."""

    def __init__(self, note: str = "note") -> None:
        self.note = note
        self.given: list[Session] = []

    def __call__(self, session: Session) -> Sequence[sa.Executable]:
        self.given.append(session)
        return [sa.insert(NOTES).values(session_id=session.id, tenant=session.tenant, note=self.note)]


def forget(session: Session) -> Sequence[sa.Executable]:
    return [sa.delete(NOTES).where(NOTES.c.session_id == session.id)]


async def create(
    backend: Backend, also_write: Any, *, audit: dict[str, Any] | None = None, **fields: Any
) -> tuple[Session, bool]:
    fields.setdefault("dialect", "test")
    return await backend.sessions.insert(
        NewSession(**fields),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest=None,
        audit=audit,
        also_write=also_write,
    )


async def notes(backend: Backend) -> list[tuple[Any, ...]]:
    return sorted(await backend.rows("SELECT session_id, note FROM test_note"))


# create


async def test_a_new_sessions_rows_are_committed_with_it_and_its_audit_event_given_the_session_as_stored(rows_backend):
    backend = rows_backend
    keep = Notes("buy milk")
    session, reused = await create(backend, keep, subject="alice", audit=backend.audit_row(principal_id="alice"))

    assert not reused
    assert keep.given == [session]
    assert await backend.sessions.by_id(session.id) == session
    sessions = await committed_rows(backend, "SELECT subject FROM sg_session")
    assert sessions == [("alice",)]
    # committed_rows closed the stores: what a brand-new connection reads is what was committed, all three together.
    assert await backend.rows("SELECT session_id, kind FROM sg_audit_event") == [(session.id, "session.created")]
    assert await notes(backend) == [(session.id, "buy milk")]


async def test_a_reused_session_gets_no_rows_and_its_dialect_is_not_asked_for_any(rows_backend):
    backend = rows_backend
    first, second = Notes("first"), Notes("second")
    created, _ = await create(backend, first, reuse_key="device-1", audit=backend.audit_row())

    again, reused = await create(backend, second, reuse_key="device-1", audit=backend.audit_row())

    assert (reused, again.id) == (True, created.id)
    assert (len(first.given), second.given) == (1, [])
    assert await notes(backend) == [(created.id, "first")]
    assert await backend.rows("SELECT count(*) FROM sg_audit_event") == [(1,)]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_row_that_fails_takes_its_session_and_audit_event_with_it(rows_backend, fault):
    backend = rows_backend
    await backend.inject("test_note", "INSERT", "NEW.note = 'poison'", fault=fault)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await create(backend, Notes("poison"), subject="doomed", audit=backend.audit_row(principal_id="doomed"))

    assert_clean(backend, raised.value, fault)
    after, _ = await create(backend, Notes("fine"), subject="after", audit=backend.audit_row(principal_id="after"))
    await backend.heal("test_note")
    assert await committed_rows(backend, "SELECT subject FROM sg_session") == [("after",)]
    assert await backend.rows("SELECT principal_id FROM sg_audit_event") == [("after",)]
    assert await notes(backend) == [(after.id, "fine")]


async def test_a_dialect_whose_writes_are_no_statements_or_raise_creates_nothing(rows_backend):
    backend = rows_backend

    def broken(session: Session) -> Sequence[object]:
        raise RuntimeError("the dialect's own bug")

    with pytest.raises(TypeError, match="must be a SQLAlchemy Core statement, not str"):
        await create(backend, lambda session: ["INSERT INTO test_note VALUES ('x', 'y', 'z')"], subject="typo")
    with pytest.raises(RuntimeError, match="the dialect's own bug"):
        await create(backend, broken, subject="bug", audit=backend.audit_row())

    assert await committed_rows(backend, "SELECT count(*) FROM sg_session") == [(0,)]
    assert await backend.rows("SELECT count(*) FROM sg_audit_event") == [(0,)]
    assert await notes(backend) == []


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failing_row_inside_a_group_commit_fails_only_its_own_caller(rows_backend, monkeypatch, fault):
    backend = rows_backend
    touched = await backend.insert(subject="touched", digest="touched")
    victim = await backend.insert(subject="victim")
    await backend.inject("test_note", "INSERT", "NEW.note = 'poison'", fault=fault)
    sizes = batches_of(backend, monkeypatch)
    now = backend.now

    def broken(session: Session) -> Sequence[object]:
        raise RuntimeError("the dialect's own bug")

    results = await asyncio.gather(
        backend.insert(subject="plain", audit=backend.audit_row(principal_id="plain")),
        create(backend, Notes("kept"), subject="kept", audit=backend.audit_row(principal_id="kept")),
        create(backend, Notes("poison"), subject="poison", audit=backend.audit_row(principal_id="poison")),
        create(backend, broken, subject="bug", audit=backend.audit_row(principal_id="bug")),
        create(backend, Notes("reused"), subject="keyed", reuse_key="k", audit=backend.audit_row(principal_id="k")),
        backend.sessions.touch(touched.id, now=now, expires_at=now + 2 * TTL),
        backend.sessions.revoke(victim.id, now=now, also_write=forget),
        return_exceptions=True,
    )

    assert outcomes(results) == ["ok", "ok", "failed", "failed", "ok", "ok", "ok"]
    assert_clean(backend, results[2], fault)
    assert isinstance(results[3], RuntimeError)
    if backend.kind == "sqlite":
        assert sizes[0] == 7, sizes  # the fault struck inside one group commit of all seven
    kept, keyed = results[1][0], results[4][0]
    await backend.heal("test_note")
    rows = await committed_rows(backend, "SELECT subject, version, revoked_at IS NULL FROM sg_session")
    assert sorted(rows) == [
        ("kept", 1, True),
        ("keyed", 1, True),
        ("plain", 1, True),
        ("touched", 2, True),
        ("victim", 2, False),
    ]
    events = await backend.rows("SELECT principal_id FROM sg_audit_event ORDER BY principal_id")
    assert events == [("k",), ("kept",), ("plain",)]
    assert await notes(backend) == sorted([(kept.id, "kept"), (keyed.id, "reused")])


# insert_capped


async def capped(backend: Backend, cap: SessionCap, also_write: Any, **fields: Any) -> tuple[Session, bool, list]:
    return await backend.sessions.insert_capped(
        NewSession(dialect="test", principal_id="p", **fields),
        now=backend.now,
        expires_at=backend.now + TTL,
        absolute_expires_at=None,
        token_digest=None,
        cap=cap,
        also_write=also_write,
    )


async def test_a_capped_create_writes_rows_with_a_new_session_only_and_a_refused_one_none(rows_backend):
    backend = rows_backend
    oldest, _, _ = await capped(backend, SessionCap(most=2), Notes("oldest"), subject="oldest")
    backend.clock.advance(1)
    newer, _, _ = await capped(backend, SessionCap(most=2), Notes("newer"), reuse_key="k")
    backend.clock.advance(1)

    reused = Notes("never")
    again, was_reused, _ = await capped(backend, SessionCap(most=2), reused, reuse_key="k")
    assert (was_reused, again.id, reused.given) == (True, newer.id, [])
    with pytest.raises(SessionLimitReached):
        await capped(backend, SessionCap(most=2, action="refuse"), Notes("refused"))
    made, _, evicted = await capped(backend, SessionCap(most=2), Notes("newest"))

    assert [s.id for s in evicted] == [oldest.id]
    assert await notes(backend) == sorted([(oldest.id, "oldest"), (newer.id, "newer"), (made.id, "newest")])


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_capped_create_whose_row_fails_creates_nothing_and_evicts_nothing(rows_backend, fault):
    backend = rows_backend
    oldest, _, _ = await capped(backend, SessionCap(most=1), None)
    backend.clock.advance(1)
    await backend.inject("test_note", "INSERT", "NEW.note = 'poison'", fault=fault)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await capped(backend, SessionCap(most=1), Notes("poison"))

    assert_clean(backend, raised.value, fault)
    assert await backend.sessions.by_id(oldest.id) == oldest
    await backend.heal("test_note")
    assert await committed_rows(backend, "SELECT count(*), count(revoked_at) FROM sg_session") == [(1, 0)]
    assert await notes(backend) == []


# revoke


async def test_a_revoke_changes_its_rows_with_it_given_the_session_as_revoked(rows_backend):
    backend = rows_backend
    session, _ = await create(backend, Notes("gone"))
    kept, _ = await create(backend, Notes("kept"))
    given: list[Session] = []

    def forgetting(ended: Session) -> Sequence[sa.Executable]:
        given.append(ended)
        return forget(ended)

    revoked = await backend.sessions.revoke(session.id, now=backend.now, also_write=forgetting)

    assert revoked is not None
    assert (revoked.revoked_at, revoked.version) == (backend.now, 2)
    assert given == [revoked]
    assert await backend.sessions.revoke(session.id, now=backend.now, also_write=forgetting) is None
    assert given == [revoked]  # no live session: nothing asked, nothing written
    assert await committed_rows(backend, "SELECT count(revoked_at) FROM sg_session") == [(1,)]
    assert await notes(backend) == [(kept.id, "kept")]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_revoke_whose_row_fails_revokes_nothing(rows_backend, fault):
    backend = rows_backend
    session, _ = await create(backend, Notes("doomed"))
    await backend.inject("test_note", "DELETE", "OLD.note = 'doomed'", fault=fault)

    with pytest.raises(Exception) as raised:  # noqa: PT011 - which error is the fault's: checked below
        await backend.sessions.revoke(session.id, now=backend.now, also_write=forget)

    assert_clean(backend, raised.value, fault)
    assert await backend.sessions.by_id(session.id) == session
    await backend.heal("test_note")
    assert await committed_rows(backend, "SELECT count(revoked_at) FROM sg_session") == [(0,)]
    assert await notes(backend) == [(session.id, "doomed")]


# DialectStorage: the dialect's own reads and plain writes


async def test_dialect_storage_writes_through_the_runner_and_reads_what_is_committed(rows_backend, monkeypatch):
    backend = rows_backend
    storage = DialectStorage(backend.runner)
    sizes = batches_of(backend, monkeypatch)

    written = await asyncio.gather(
        *(storage.write(sa.insert(NOTES).values(session_id=f"s{i}", tenant="t", note=f"n{i}")) for i in range(3)),
        backend.insert(subject="beside"),
    )
    changed = await storage.write(sa.update(NOTES).where(NOTES.c.note != "n1").values(note="x").returning(NOTES.c.note))

    assert [outcome.rowcount for outcome in written[:3]] == [1, 1, 1]
    assert (changed.rowcount, sorted(row.note for row in changed.rows)) == (2, ["x", "x"])
    if isinstance(backend.runner, SqliteRunner):
        assert sizes[0] == 4, sizes  # the dialect's writes joined the writer's group commit
    read = await storage.read(sa.select(NOTES.c.session_id, NOTES.c.note).order_by(NOTES.c.session_id))
    assert [tuple(row) for row in read] == [("s0", "x"), ("s1", "n1"), ("s2", "x")]
    assert await notes(backend) == [("s0", "x"), ("s1", "n1"), ("s2", "x")]


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_dialect_storage_write_that_fails_changes_nothing_and_fails_only_its_caller(
    rows_backend, monkeypatch, fault
):
    backend = rows_backend
    storage = DialectStorage(backend.runner)
    await backend.inject("test_note", "INSERT", "NEW.note = 'poison'", fault=fault)
    sizes = batches_of(backend, monkeypatch)

    results = await asyncio.gather(
        storage.write(sa.insert(NOTES).values(session_id="a", tenant="t", note="fine")),
        storage.write(sa.insert(NOTES).values(session_id="b", tenant="t", note="poison")),
        backend.insert(subject="beside"),
        return_exceptions=True,
    )

    assert outcomes(results) == ["ok", "failed", "ok"]
    assert_clean(backend, results[1], fault)
    if backend.kind == "sqlite":
        assert sizes[0] == 3, sizes
    await backend.heal("test_note")
    assert await committed_rows(backend, "SELECT session_id, note FROM test_note") == [("a", "fine")]


async def test_without_the_writer_thread_a_create_and_its_rows_are_one_transaction_of_the_engine(clock):
    # SQLite in memory runs on the async engine (no writer thread): the create, its event and its rows are one
    # transaction there too, and a reused session adds none.
    engine = create_async_engine("sqlite+aiosqlite:///:memory:", poolclass=StaticPool)
    async with engine.begin() as conn:
        await conn.run_sync(SessionRecord.metadata.create_all)
        await conn.run_sync(NOTES.metadata.create_all)
    store = SqlSessionStore(engine, AsyncEngineRunner(engine))
    audit = AuditLog(store.runner, lambda: clock.now)
    new = NewSession(tenant="t", dialect="test", reuse_key="k")
    times = {"now": clock.now, "expires_at": clock.now + TTL, "absolute_expires_at": None, "token_digest": None}

    async def create(new: NewSession, note: str | None) -> tuple[Session, bool]:
        row = audit.row(NewEvent(kind="session.created", actor="user"))
        return await store.insert(new, **times, audit=row, also_write=Notes(note))  # type: ignore[arg-type]

    try:
        first, _ = await create(new, "first")
        again, reused = await create(new, "again")
        with pytest.raises(IntegrityError):  # NOT NULL: the row fails, and its session and event with it
            await create(NewSession(dialect="test"), None)
        async with engine.connect() as conn:
            stored = (await conn.exec_driver_sql("SELECT session_id, note FROM test_note")).all()
            events = (await conn.exec_driver_sql("SELECT count(*) FROM sg_audit_event")).scalar_one()
            sessions = (await conn.exec_driver_sql("SELECT count(*) FROM sg_session")).scalar_one()
        assert (reused, again.id) == (True, first.id)
        assert (stored, events, sessions) == ([(first.id, "first")], 1, 1)
    finally:
        await engine.dispose()
