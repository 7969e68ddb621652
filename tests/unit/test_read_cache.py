"""Answers kept until their rows change: never one older than the database, whoever committed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from sessiongate.core.errors import NotFound, SessionRevoked
from sessiongate.core.models import Device, ExpiryPolicy, NewSession
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage import store as store_module
from sessiongate.storage.database import sqlite_pragmas
from sessiongate.storage.read_cache import ReadCache
from sessiongate.storage.runner import DriverStatement, SqliteRunner
from sessiongate.storage.store import session_from_row
from sessiongate.storage.tables import SessionRecord

pytestmark = pytest.mark.anyio

FIXED = ExpiryPolicy(ttl=600, touch_interval=3600)


def test_an_answer_is_kept_while_the_version_stays():
    cache: ReadCache[str, int] = ReadCache(10)
    assert cache.get("k", 1) is None
    cache.put("k", 42, 1)
    assert cache.get("k", 1) == 42


def test_a_new_version_forgets_every_answer():
    cache: ReadCache[str, int] = ReadCache(10)
    cache.get("k", 1)
    cache.put("k", 42, 1)
    assert cache.get("k", 2) is None
    assert cache.get("k", 2) is None  # gone, not just hidden behind the old version
    assert len(cache) == 0


def test_an_answer_read_under_an_older_version_is_refused():
    cache: ReadCache[str, int] = ReadCache(10)
    cache.get("a", 1)  # a lookup starts at version 1 and goes to the database...
    cache.get("b", 2)  # ...meanwhile a commit, and another lookup sees version 2
    cache.put("a", 42, 1)  # the first answer may predate that commit
    assert cache.get("a", 2) is None


def test_without_a_version_nothing_is_kept():
    cache: ReadCache[str, int] = ReadCache(10)
    cache.get("k", None)
    cache.put("k", 42, None)
    assert cache.get("k", None) is None


def test_advancing_drops_the_answers_of_the_changed_rows_only():
    cache: ReadCache[str, tuple[str, int]] = ReadCache(10, lambda answer: answer[0])
    cache.advance(1, None)
    cache.put("a", ("row-a", 1), 1)
    cache.put("a-too", ("row-a", 1), 1)  # a second key for the same row (a session by digest and by id)
    cache.put("b", ("row-b", 2), 1)
    cache.advance(2, ["row-a", "row-z"])
    assert cache.get("a", 2) is None
    assert cache.get("a-too", 2) is None
    assert cache.get("b", 2) == ("row-b", 2)


def test_advancing_without_knowing_what_changed_forgets_everything():
    cache: ReadCache[str, tuple[str, int]] = ReadCache(10, lambda answer: answer[0])
    cache.advance(1, None)
    cache.put("b", ("row-b", 2), 1)
    cache.advance(2, None)
    assert len(cache) == 0
    cache.put("b", ("row-b", 2), 2)
    cache.advance(None, [])  # no version at all
    assert cache.get("b", None) is None
    assert len(cache) == 0


def test_an_answer_read_before_an_advance_is_refused_after_it():
    cache: ReadCache[str, tuple[str, int]] = ReadCache(10, lambda answer: answer[0])
    cache.advance(1, None)  # a lookup starts at version 1 and goes to the database...
    cache.advance(2, ["row-a"])  # ...meanwhile a commit changes its row, and another lookup advances past it
    cache.put("a", ("row-a", 1), 1)  # the first answer may predate that commit
    assert cache.get("a", 2) is None


def test_a_full_cache_starts_over():
    cache: ReadCache[str, int] = ReadCache(2)
    cache.get("a", 1)
    for key in ("a", "b", "c"):
        cache.put(key, 1, 1)
    assert len(cache) == 1
    assert cache.get("c", 1) == 1


@pytest.fixture
async def runners(tmp_path) -> AsyncIterator[tuple[SqliteRunner, SqliteRunner]]:
    url = f"sqlite+aiosqlite:///{tmp_path}/v.db"
    first, second = SqliteRunner(url, sqlite_pragmas), SqliteRunner(url, sqlite_pragmas)
    await first.write(text("CREATE TABLE t (a INTEGER)"))
    yield first, second
    await first.close()
    await second.close()


async def test_sqlite_data_version_moves_with_every_commit_from_any_connection(runners):
    first, second = runners
    before = first.data_version()
    await first.read(text("SELECT count(*) FROM t"))
    assert first.data_version() == before  # reads change nothing
    await first.write(text("INSERT INTO t VALUES (1)"))
    after_own = first.data_version()
    assert after_own != before
    await second.write(text("INSERT INTO t VALUES (2)"))  # another connection, as another process would be
    assert first.data_version() not in (before, after_own)


async def test_sqlite_data_version_never_comes_back_when_its_connection_is_opened_again(runners):
    first, _ = runners
    seen = {first.data_version()}
    for _ in range(3):
        first._close_version()  # what an error reading the counter does: the next read opens a new connection
        version = first.data_version()
        assert version is not None
        assert version not in seen  # a new connection's counter starts afresh, and may repeat an old number
        seen.add(version)


@pytest.fixture
async def two_processes(tmp_path) -> AsyncIterator[tuple[Services, Services]]:
    # Two sets of services on one SQLite file: what two workers, or a worker and the CLI, are.
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db", sweep_interval=0)
    async with open_services(settings, migrate=True) as one, open_services(settings, migrate=False) as other:
        yield one, other


async def test_a_revocation_by_another_process_is_seen_by_the_next_lookup(two_processes):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED, with_secret=True)
    for _ in range(2):  # the second lookup is answered from what the first kept
        assert (await one.sessions.resolve_secret(created.secret, FIXED)).id == created.session.id
    await other.sessions.revoke(created.session.id)
    with pytest.raises(SessionRevoked):
        await one.sessions.resolve_secret(created.secret, FIXED)


@pytest.fixture
def reads(two_processes, monkeypatch) -> list[object]:
    """Every read the first process's store sends to its database."""
    runner = two_processes[0].sessions.store.runner
    sent: list[object] = []
    for name in ("read", "read_driver"):  # through SQLAlchemy, and the lookups' precompiled SQL on the driver

        def counting(real):
            async def read(statement, *args, **kwargs):
                sent.append(statement)
                return await real(statement, *args, **kwargs)

            return read

        monkeypatch.setattr(runner, name, counting(getattr(runner, name)))
    return sent


async def test_repeated_lookups_skip_the_database_until_a_commit_changes_that_session(two_processes, reads):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED, with_secret=True)
    for _ in range(5):
        await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 1
    # Commits that change other sessions, in this process and in another, leave the kept row as it is.
    await one.sessions.create(NewSession(dialect="test"), FIXED)
    bystander = await other.sessions.create(NewSession(dialect="test"), FIXED)
    await other.sessions.revoke(bystander.session.id)
    await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 1
    now = other.sessions.now()
    await other.sessions.store.touch(created.session.id, now=now, expires_at=now + timedelta(seconds=600))  # changes it
    await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 2


async def test_a_session_changed_behind_the_store_is_read_again(two_processes):
    # Refresh tokens, the identity service and the operators' CLI update sessions with statements of their own.
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED, with_secret=True)
    await one.sessions.resolve_secret(created.secret, FIXED)
    session_id = uuid.UUID(created.session.id)
    await other.runner.transaction(
        lambda conn: conn.execute(
            text("UPDATE sg_session SET revoked_at = expires_at WHERE id = :id"), {"id": session_id.bytes}
        )
    )
    with pytest.raises(SessionRevoked):
        await one.sessions.resolve_secret(created.secret, FIXED)


async def test_a_process_whose_unread_changes_were_trimmed_away_forgets_what_it_kept(two_processes, reads):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED, with_secret=True)
    await one.sessions.resolve_secret(created.secret, FIXED)
    await other.sessions.revoke(created.session.id)
    await other.runner.write(text("DELETE FROM sg_session_change"))  # trimmed before the first process read it
    with pytest.raises(SessionRevoked):
        await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 2


async def test_the_sweeper_trims_the_change_log_to_its_newest_entries(two_processes, monkeypatch):
    one, _ = two_processes
    monkeypatch.setattr(store_module, "KEPT_CHANGES", 2)
    for _ in range(4):
        created = await one.sessions.create(NewSession(dialect="test"), FIXED)
        await one.sessions.revoke(created.session.id)
    await one.sessions.store.delete_expired(now=one.sessions.now(), batch=1)
    rows = await one.runner.read(text("SELECT seq FROM sg_session_change ORDER BY seq"))
    newest = rows[-1].seq
    assert [row.seq for row in rows] == [newest - 1, newest]


async def test_a_session_looked_up_by_id_is_kept_until_another_process_revokes_it(two_processes, reads):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED)
    for _ in range(3):
        assert (await one.sessions.get(created.session.id)).id == created.session.id
    assert len(reads) == 1
    await other.sessions.revoke(created.session.id)
    with pytest.raises(NotFound):
        await one.sessions.get(created.session.id)


@pytest.fixture
async def services(database_url) -> AsyncIterator[Services]:
    async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=True) as opened:
        yield opened


async def test_a_lookup_on_the_driver_returns_what_the_core_query_does(services):
    # A lookup that misses what was kept runs precompiled SQL on the driver's connection (a SQLite reader thread's,
    # asyncpg's), converting the row with SQLAlchemy's own type processors: the session must come out as SQLAlchemy's
    # execution of the query makes it.
    one = services
    store = one.sessions.store
    assert store._driver_lookups is not None
    device = Device(id="d-1", name="Till 1", kind="web", model="m", sdk_version="v1", env="CashRegister")
    new = NewSession(
        tenant="t",
        dialect="test",
        principal_id="p",
        subject="s",
        client_address="192.0.2.1",
        device=device,
        attributes={"email": "a@example.com", "nested": {"n": [1, 2.5, None, "ü"]}},
    )
    created = await one.sessions.create(new, FIXED, with_secret=True)
    table = SessionRecord.__table__
    columns = [c for c in table.c if c.name not in {"token_digest", "reuse_key", "sa_orm_sentinel", "updated_at"}]
    [row] = await one.runner.read(
        select(*columns, table.c.token_digest).where(table.c.id == uuid.UUID(created.session.id))
    )
    through_core = session_from_row(row)
    assert await store._select_by_digest(row.token_digest) == (through_core, row.token_digest)
    assert await store._select_by_id(uuid.UUID(created.session.id)) == through_core
    assert await store._select_by_digest("0" * 64) is None
    assert await store._select_by_id(uuid.uuid4()) is None


async def test_lookups_in_one_turn_of_the_event_loop_read_the_version_once(two_processes, monkeypatch):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED)
    runner, read = one.sessions.store.runner, []
    real = runner.data_version
    monkeypatch.setattr(runner, "data_version", lambda: read.append(1) or real())
    lookups = [one.sessions.store.by_id(created.session.id) for _ in range(5)]
    assert all(found is not None for found in await asyncio.gather(*lookups))  # their first steps share one turn
    assert len(read) == 1
    await other.sessions.revoke(created.session.id)  # acknowledged in a later turn than its commit...
    assert (await one.sessions.store.by_id(created.session.id)).revoked_at is not None  # ...and seen at once
    assert len(read) == 2


async def test_a_lookup_while_another_process_holds_the_database_waits_for_it_instead_of_failing(tmp_path):
    # Lookups run on the event loop's own connection, which must never block the loop waiting for a lock: it is
    # opened on a reader thread, and a lookup that finds the database busy goes to one; there they wait as long as
    # every connection of the gateway does (busy_timeout).
    path = tmp_path / "held.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (a INTEGER)")
    setup.execute("INSERT INTO t VALUES (7)")
    setup.close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")  # no other connection may read until it lets go
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE t SET a = 8")
    runner = SqliteRunner(f"sqlite+aiosqlite:///{path}", sqlite_pragmas)
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.3, holder.execute, "COMMIT")  # its commit is what the lookup then reads
        loop.call_later(0.3, holder.close)
        started = time.monotonic()
        assert await runner.read_driver(DriverStatement("SELECT a FROM t", {})) == [(8,)]
        assert time.monotonic() - started >= 0.25  # it waited for the lock: it did not fail, nor read around it
        assert await runner.read_driver(DriverStatement("SELECT a FROM t", {})) == [(8,)]  # and goes on
    finally:
        await runner.close()
