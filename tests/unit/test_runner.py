from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from sessiongate.storage.database import sqlite_pragmas
from sessiongate.storage.runner import SqliteRunner

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
