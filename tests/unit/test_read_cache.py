"""Answers kept between commits: never one older than the database, whoever committed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from sessiongate.core.errors import NotFound, SessionRevoked
from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage.database import sqlite_pragmas
from sessiongate.storage.read_cache import ReadCache
from sessiongate.storage.runner import SqliteRunner

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
    real_read, sent = runner.read, []

    async def counting_read(statement, *args, **kwargs):
        sent.append(statement)
        return await real_read(statement, *args, **kwargs)

    monkeypatch.setattr(runner, "read", counting_read)
    return sent


async def test_repeated_lookups_between_commits_skip_the_database(two_processes, reads):
    one, _ = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED, with_secret=True)
    for _ in range(5):
        await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 1
    await one.sessions.create(NewSession(dialect="test"), FIXED)  # any commit
    await one.sessions.resolve_secret(created.secret, FIXED)
    assert len(reads) == 2


async def test_a_session_looked_up_by_id_is_kept_until_another_process_revokes_it(two_processes, reads):
    one, other = two_processes
    created = await one.sessions.create(NewSession(dialect="test"), FIXED)
    for _ in range(3):
        assert (await one.sessions.get(created.session.id)).id == created.session.id
    assert len(reads) == 1
    await other.sessions.revoke(created.session.id)
    with pytest.raises(NotFound):
        await one.sessions.get(created.session.id)
