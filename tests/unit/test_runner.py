from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sessiongate.storage.database import sqlite_pragmas
from sessiongate.storage.runner import DriverStatement, SqliteRunner

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
