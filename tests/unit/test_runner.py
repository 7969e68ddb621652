from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, make_url, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from sessiongate.storage.database import alchemy_config, sqlite_pragmas, sqlite_pragmas_for
from sessiongate.storage.runner import DriverStatement, SqliteRunner, StatementRunner, runner_for

pytestmark = pytest.mark.anyio


@pytest.fixture
async def runner(tmp_path):
    r = SqliteRunner(f"sqlite+aiosqlite:///{tmp_path}/r.db", sqlite_pragmas)
    await r.write(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    yield r
    await r.close()


async def test_concurrent_writes_are_all_committed_before_they_are_acknowledged(runner):
    outcomes = await asyncio.gather(*[runner.write(text("INSERT INTO t VALUES (:a)"), {"a": i}) for i in range(500)])
    assert all(o.rowcount == 1 for o in outcomes)
    assert (await runner.read(text("SELECT count(*) FROM t")))[0][0] == 500


async def test_a_failing_write_fails_alone_and_its_batch_still_commits(runner):
    results = await asyncio.gather(
        runner.write(text("INSERT INTO t VALUES (1)")),
        runner.write(text("INSERT INTO t VALUES (1)")),
        runner.write(text("INSERT INTO t VALUES (2)")),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert not isinstance(results[0], BaseException)
    assert not isinstance(results[2], BaseException)
    assert [r[0] for r in await runner.read(text("SELECT a FROM t ORDER BY a"))] == [1, 2]


async def test_reads_see_writes_committed_before_them(runner):
    for i in range(20):
        await runner.write(text("INSERT INTO t VALUES (:a)"), {"a": i})
        assert (await runner.read(text("SELECT count(*) FROM t")))[0][0] == i + 1


async def test_returning_rows_come_back_to_their_caller(runner):
    outcomes = await asyncio.gather(
        *[runner.write(text("INSERT INTO t VALUES (:a) RETURNING a"), {"a": i}) for i in range(50)]
    )
    assert [o.rows[0][0] for o in outcomes] == list(range(50))


async def test_driver_statements_commit_with_their_batch_and_fail_alone(runner):
    results = await asyncio.gather(
        runner.write_driver(DriverStatement("INSERT INTO t VALUES (:a) RETURNING a", {"a": 7})),
        runner.write_driver(DriverStatement("INSERT INTO t VALUES (:a) RETURNING a", {"a": 7})),
        runner.write(text("INSERT INTO t VALUES (8)")),
        return_exceptions=True,
    )
    assert results[0].rows == [(7,)]
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert results[2].rowcount == 1
    assert [r[0] for r in await runner.read(text("SELECT a FROM t ORDER BY a"))] == [7, 8]


async def test_statements_written_together_commit_together_or_fail_together_and_alone(runner):
    def pair(a, b):
        return DriverStatement(
            "INSERT INTO t VALUES (:a) RETURNING a", {"a": a}, (DriverStatement("INSERT INTO t VALUES (:a)", {"a": b}),)
        )

    results = await asyncio.gather(
        runner.write_driver(pair(1, 2)),
        runner.write_driver(pair(3, 1)),  # its second statement fails: its first is undone with it
        runner.write(text("INSERT INTO t VALUES (4)")),
        runner.write_driver(pair(5, 6)),
        return_exceptions=True,
    )
    assert results[0].rows == [(1,)]  # the outcome is the first statement's
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert (results[2].rowcount, results[3].rows) == (1, [(5,)])
    assert [r[0] for r in await runner.read(text("SELECT a FROM t ORDER BY a"))] == [1, 2, 4, 5, 6]


ROW = 4096  # bytes of payload per row: 1500 rows are about 1500 pages, past SQLite's own checkpoint point (1000)


async def write_rows(runner, count, start=0):
    await runner.write(text("CREATE TABLE IF NOT EXISTS big (a INTEGER PRIMARY KEY, b BLOB)"))
    insert = text("INSERT INTO big VALUES (:a, randomblob(:n))")
    await asyncio.gather(*[runner.write(insert, {"a": start + i, "n": ROW}) for i in range(count)])


async def test_commits_leave_copying_the_wal_to_the_checkpointer_which_does_it_last_on_close(tmp_path):
    path = tmp_path / "quiet.db"
    runner = SqliteRunner(f"sqlite+aiosqlite:///{path}", sqlite_pragmas, checkpoint_every=3600)
    await write_rows(runner, 1500)
    assert path.stat().st_size < 1_000_000  # the rows are all in the WAL: no commit copied them
    assert runner.checkpointer.runs == 0
    await runner.close()
    assert path.stat().st_size > 1500 * ROW
    assert runner.checkpointer.runs == 1


async def test_the_checkpointer_copies_committed_writes_soon_after_they_commit(tmp_path):
    path = tmp_path / "copied.db"
    runner = SqliteRunner(f"sqlite+aiosqlite:///{path}", sqlite_pragmas, checkpoint_every=0.02)
    try:
        await write_rows(runner, 1500)
        for _ in range(250):
            if path.stat().st_size > 1500 * ROW:
                break
            await asyncio.sleep(0.02)
        assert path.stat().st_size > 1500 * ROW
        assert (await runner.read(text("SELECT count(*) FROM big")))[0][0] == 1500
    finally:
        await runner.close()


async def test_the_wal_is_reused_rather_than_grown_while_writes_go_on(tmp_path):
    path = tmp_path / "steady.db"
    runner = SqliteRunner(f"sqlite+aiosqlite:///{path}", sqlite_pragmas, checkpoint_every=0.02)
    try:
        for batch in range(20):
            await write_rows(runner, 100, start=batch * 100)  # 2000 rows in all, about 8 MB
            await asyncio.sleep(0.05)
        assert Path(f"{path}-wal").stat().st_size < 4_000_000
    finally:
        await runner.close()


def create(a: int, n: int | None = None) -> DriverStatement:
    """A write as a create is: the driver's SQL, committed on the event loop's connection when the lock is free."""
    if n is None:
        return DriverStatement("INSERT INTO t VALUES (:a) RETURNING a", {"a": a})
    return DriverStatement("INSERT INTO big VALUES (:a, randomblob(:n))", {"a": a, "n": n})


@contextlib.asynccontextmanager
async def writer_thread_held(runner: SqliteRunner) -> AsyncIterator[threading.Event]:
    """The writer thread busy with a transaction that takes no lock, until the event yielded is set (or the end)."""
    started, release = threading.Event(), threading.Event()

    def slow(conn: Connection) -> None:
        started.set()
        release.wait(10)

    busy = asyncio.create_task(runner.transaction(slow))
    try:
        assert await asyncio.to_thread(started.wait, 10)
        yield release
    finally:
        release.set()
        await busy


async def test_creates_commit_while_the_writer_thread_is_busy_with_other_work(runner):
    async with writer_thread_held(runner):
        outcomes = await asyncio.wait_for(asyncio.gather(*(runner.write_driver(create(a)) for a in range(3))), 5)
    assert [o.rows for o in outcomes] == [[(0,)], [(1,)], [(2,)]]
    assert [r[0] for r in await runner.read(text("SELECT a FROM t ORDER BY a"))] == [0, 1, 2]


async def test_with_full_sync_creates_commit_on_the_writer_thread_so_the_loop_never_waits_for_the_disk(tmp_path):
    runner = SqliteRunner(f"sqlite+aiosqlite:///{tmp_path}/full.db", sqlite_pragmas_for("FULL"))
    await runner.write(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    try:
        async with writer_thread_held(runner) as release:
            creates = asyncio.gather(*(runner.write_driver(create(a)) for a in range(3)))
            await asyncio.sleep(0.3)
            assert not creates.done()  # queued behind the writer thread's work, as every write
            release.set()
            outcomes = await asyncio.wait_for(creates, 10)
        assert [o.rows for o in outcomes] == [[(0,)], [(1,)], [(2,)]]
    finally:
        await runner.close()


async def test_creates_wait_for_the_write_lock_another_connection_holds_and_then_commit(runner, tmp_path):
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        creates = asyncio.gather(*(runner.write_driver(create(a)) for a in range(5)))
        await asyncio.sleep(0.3)
        assert not creates.done()  # nothing is acknowledged before it is committed
        other.execute("COMMIT")
        outcomes = await asyncio.wait_for(creates, 10)
    finally:
        other.close()
    assert [o.rows for o in outcomes] == [[(a,)] for a in range(5)]
    assert [r[0] for r in await runner.read(text("SELECT a FROM t ORDER BY a"))] == list(range(5))


async def test_creates_leave_copying_the_wal_to_the_checkpointer_too(tmp_path):
    # Creates commit on the event loop's connection: a checkpoint run inside one of those commits (SQLite's own, at
    # 1000 pages) would hold the whole loop for tens of milliseconds.
    path = tmp_path / "quiet.db"
    runner = SqliteRunner(f"sqlite+aiosqlite:///{path}", sqlite_pragmas, checkpoint_every=3600)
    await runner.write(text("CREATE TABLE big (a INTEGER PRIMARY KEY, b BLOB)"))
    for start in range(0, 1500, 50):  # groups of creates small enough to be committed on the loop's connection
        await asyncio.gather(*(runner.write_driver(create(a, ROW)) for a in range(start, start + 50)))
    assert path.stat().st_size < 1_000_000  # the rows are all in the WAL: no commit copied them
    assert runner.checkpointer.runs == 0
    await runner.close()
    assert path.stat().st_size > 1500 * ROW
    assert runner.checkpointer.runs == 1


# Nothing acknowledged is lost: every caller of a batch gets a durable success or an error, whatever SQLite undid.


@dataclass
class Store:
    """The runner the gateway uses on a database (SQLite: the writer thread; PostgreSQL: the async engine)."""

    runner: StatementRunner
    url: str
    closed: bool = False

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.runner.close()


@pytest.fixture
async def store(database_url) -> AsyncIterator[Store]:
    config = alchemy_config(database_url)
    built = Store(runner_for(config.get_engine(), database_url, sqlite_pragmas), database_url)
    await built.runner.write(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    yield built
    await built.close()
    await config.get_engine().dispose()


@pytest.fixture
async def sqlite_store(tmp_path) -> AsyncIterator[Store]:
    url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    built = Store(SqliteRunner(url, sqlite_pragmas), url)
    yield built
    await built.close()


async def refuse_a_2(runner: StatementRunner, url: str) -> None:
    """A trigger refusing the row ``a = 2``; on SQLite by ``RAISE(ROLLBACK)``, which undoes the whole transaction."""
    if url.startswith("sqlite"):
        await runner.write(
            text(
                "CREATE TRIGGER t_refuse BEFORE INSERT ON t WHEN NEW.a = 2 BEGIN SELECT RAISE(ROLLBACK, 'refused'); END"
            )
        )
        return
    await runner.write(
        text(
            "CREATE FUNCTION t_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.a = 2 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"
        )
    )
    await runner.write(text("CREATE TRIGGER t_refuse BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION t_refuse()"))


async def reopened_rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows read on a new connection once the runner is closed: what is really in the database."""
    await store.close()
    if store.url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(make_url(store.url).database or "")) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    engine = create_async_engine(store.url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


def acknowledged(results: list[Any]) -> set[int]:
    return {i + 1 for i, r in enumerate(results) if not isinstance(r, BaseException)}


async def test_a_statement_that_rolls_the_transaction_back_loses_no_acknowledged_write_of_its_batch(store):
    await refuse_a_2(store.runner, store.url)
    insert = text("INSERT INTO t VALUES (:a)")
    results = await asyncio.gather(*(store.runner.write(insert, {"a": a}) for a in (1, 2, 3)), return_exceptions=True)
    assert isinstance(results[1], DBAPIError)
    assert "refused" in str(results[1])
    assert acknowledged(results) == {1, 3}  # the refused row's neighbours are not failed with it either
    assert await reopened_rows(store, "SELECT a FROM t ORDER BY a") == [(1,), (3,)]


async def test_a_driver_statement_that_rolls_the_transaction_back_loses_no_acknowledged_write(sqlite_store):
    runner = sqlite_store.runner
    await runner.write(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    await refuse_a_2(runner, sqlite_store.url)
    results = await asyncio.gather(
        *(runner.write_driver(DriverStatement("INSERT INTO t VALUES (:a) RETURNING a", {"a": a})) for a in (1, 2, 3)),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [r.rows for r in (results[0], results[2])] == [[(1,)], [(3,)]]
    assert await reopened_rows(sqlite_store, "SELECT a FROM t ORDER BY a") == [(1,), (3,)]


async def test_a_full_database_loses_no_acknowledged_write_and_fails_the_write_that_did_not_fit(sqlite_store):
    runner = sqlite_store.runner
    await runner.write(text("CREATE TABLE big (a INTEGER PRIMARY KEY, b BLOB)"))
    pages = (await runner.read(text("PRAGMA page_count")))[0][0]
    # Room for one 20 kB row (five or six pages), not two: the second insert meets SQLITE_FULL, which undoes the
    # whole transaction; the third is a small row that fits in a page already there.
    await runner.write(text(f"PRAGMA max_page_count = {pages + 8}"))
    insert = text("INSERT INTO big VALUES (:a, randomblob(:n))")
    results = await asyncio.gather(
        runner.write(insert, {"a": 1, "n": 20_000}),
        runner.write(insert, {"a": 2, "n": 20_000}),
        runner.write(insert, {"a": 3, "n": 10}),
        return_exceptions=True,
    )
    assert isinstance(results[1], OperationalError)
    assert "full" in str(results[1])
    assert acknowledged(results) == {1, 3}
    assert await reopened_rows(sqlite_store, "SELECT a FROM big ORDER BY a") == [(1,), (3,)]


async def test_a_statement_that_fails_part_way_leaves_none_of_its_changes(sqlite_store):
    # UPDATE OR FAIL stops at the conflicting row and keeps what it changed before it (SQLite's FAIL resolution):
    # its caller is told it failed, so none of it may be committed with the rest of the batch.
    runner = sqlite_store.runner
    await runner.write(text("CREATE TABLE u (a INTEGER PRIMARY KEY, b INTEGER UNIQUE)"))
    await runner.write(text("INSERT INTO u VALUES (1, 10), (2, 20)"))
    results = await asyncio.gather(
        runner.write(text("INSERT INTO u VALUES (3, 30)")),
        runner.write(text("UPDATE OR FAIL u SET b = 5 WHERE a < 3")),
        runner.write(text("INSERT INTO u VALUES (4, 40)")),
        return_exceptions=True,
    )
    assert isinstance(results[1], IntegrityError)
    assert acknowledged(results) == {1, 3}
    rows = await reopened_rows(sqlite_store, "SELECT a, b FROM u ORDER BY a")
    assert rows == [(1, 10), (2, 20), (3, 30), (4, 40)]


async def parent_and_child(runner: StatementRunner) -> None:
    """Tables whose foreign key is checked only at the ``COMMIT`` (deferred)."""
    await runner.write(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
    await runner.write(
        text(
            "CREATE TABLE child (id INTEGER PRIMARY KEY,"
            " pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
        )
    )


async def test_a_failing_commit_fails_every_write_of_its_batch(sqlite_store):
    runner = sqlite_store.runner
    await parent_and_child(runner)
    results = await asyncio.gather(
        runner.write(text("INSERT INTO parent VALUES (1)")),
        runner.write(text("INSERT INTO child VALUES (1, 99)")),  # no parent 99: refused only by the COMMIT
        runner.write(text("INSERT INTO child VALUES (2, 1)")),
        return_exceptions=True,
    )
    assert all(isinstance(r, IntegrityError) for r in results)
    assert await reopened_rows(sqlite_store, "SELECT id FROM parent UNION ALL SELECT id FROM child") == []


async def test_a_failing_commit_of_creates_fails_every_create_of_its_batch(sqlite_store):
    runner = sqlite_store.runner
    await parent_and_child(runner)
    results = await asyncio.gather(
        runner.write_driver(DriverStatement("INSERT INTO parent VALUES (1)", {})),
        runner.write_driver(DriverStatement("INSERT INTO child VALUES (1, 99)", {})),  # refused only by the COMMIT
        runner.write_driver(DriverStatement("INSERT INTO child VALUES (2, 1)", {})),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) and "FOREIGN KEY constraint failed" in str(r) for r in results), results
    later = await runner.write_driver(DriverStatement("INSERT INTO parent VALUES (2) RETURNING id", {}))
    assert later.rows == [(2,)]  # the next create is served, on a connection with no failed transaction left
    assert await reopened_rows(sqlite_store, "SELECT id FROM parent UNION ALL SELECT id FROM child") == [(2,)]


async def test_a_transaction_whose_statement_failed_is_undone_even_when_its_work_caught_the_error(store):
    await refuse_a_2(store.runner, store.url)

    def work(conn: Connection) -> str:
        conn.execute(text("INSERT INTO t VALUES (1)"))
        with contextlib.suppress(DBAPIError):
            conn.execute(text("INSERT INTO t VALUES (2)"))
        return "done"

    with pytest.raises(DBAPIError, match="refused"):
        await store.runner.transaction(work)
    assert await store.runner.read(text("SELECT a FROM t")) == []
    await store.runner.transaction(lambda conn: conn.execute(text("INSERT INTO t VALUES (3)")))
    assert await reopened_rows(store, "SELECT a FROM t ORDER BY a") == [(3,)]
