"""Test databases: SQLite files, and PostgreSQL databases when SESSIONGATE_TEST_DATABASE_URL is set.

Two kinds of database are handed out:

- :func:`database` gives an empty one, never migrated, for tests of what a first start or a migration does.
- :func:`migrated_database` gives one with every migration applied and no rows, which is what almost every test
  needs: the core's, and the branches of the dialects a gateway enables by default (``SESSIONGATE_DIALECTS=*``:
  every installed one but the opt-in ones; portos's holds its devices), so that no app a test starts with them
  migrates anything. Migrating costs a quarter to half a second and creating and dropping a PostgreSQL database
  another second (both write and sync files), paid by every test of a suite of a thousand. So each process migrates
  one template per kind once: SQLite databases are copies of its file; PostgreSQL databases are made from it
  (``CREATE DATABASE … TEMPLATE``) and, once a test is done with one, emptied and handed to the next
  test instead of being dropped. A database whose schema a test changed is dropped, never handed on. What is left
  is dropped when the process exits. An opt-in dialect's branch (memo's) is migrated by the tests that enable it.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.dialects import registry
from sessiongate.storage.database import Migrations, alchemy_config, upgrade

PG_ENV = "SESSIONGATE_TEST_DATABASE_URL"
_VERSION_TABLE = "sg_alembic_version"
# What a test could change about a schema: tables, columns and their types, indexes, triggers and constraints.
_SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable AS item
        FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
) AS schema
"""


def default_migrations() -> Migrations:
    """The migrations a gateway with the default dialects (``*``) is held to: the core's and each one's own branch
    (portos's). What :func:`migrated_database` applies, and what a test that migrates a database of its own and then
    uses a dialect's tables (portos's devices) applies."""
    return registry.migrations(registry.load(("*",), {}))


def backends() -> list[str]:
    """The database kinds the suite runs on here: always SQLite, and PostgreSQL when configured."""
    return ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    """A SQLAlchemy async URL of an empty, unmigrated database of ``kind``, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'gateway.db'}"
        return
    name = f"sg_test_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def on_database(database_url: str, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    """``work``'s answer on an engine of ``database_url``, disposed of afterwards (a test's look into its database)."""

    async def run() -> Any:
        engine = alchemy_config(database_url).get_engine()
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


@contextmanager
def migrated_database(kind: str, directory: Path) -> Iterator[str]:
    """A SQLAlchemy async URL of a database of ``kind`` with every migration applied and no rows in it."""
    if kind == "sqlite":
        path = directory / "gateway.db"
        shutil.copyfile(_sqlite_template(), path)
        path.chmod(0o600)  # as the gateway creates its databases: a wider mode is tightened at start, with a warning
        yield f"sqlite+aiosqlite:///{path}"
        return
    pool = _postgres_pool()
    name = pool.take()
    try:
        yield _pg_url(name)
    finally:
        pool.give_back(name)


_sqlite_template_path: Path | None = None


def _sqlite_template() -> Path:
    global _sqlite_template_path  # noqa: PLW0603 - one template per process, made on first use
    if _sqlite_template_path is None:
        directory = Path(tempfile.mkdtemp(prefix="sg-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        path = directory / "template.db"
        asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
        _sqlite_template_path = path
    return _sqlite_template_path


class _PostgresPool:
    """Migrated PostgreSQL databases of this process: made from one template, emptied and reused."""

    def __init__(self) -> None:
        self.template = f"sg_tpl_{uuid.uuid4().hex[:12]}"
        self.idle: list[str] = []
        self.made: set[str] = set()
        _admin(f'CREATE DATABASE "{self.template}"')
        atexit.register(self.drop_all)
        asyncio.run(_migrate(_pg_url(self.template)))
        self.fingerprint = asyncio.run(_fingerprint(self.template))

    def take(self) -> str:
        if self.idle:
            return self.idle.pop()
        name = f"sg_test_{uuid.uuid4().hex[:12]}"
        _admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self.made.add(name)
        return name

    def give_back(self, name: str) -> None:
        if asyncio.run(_empty(name, self.fingerprint)):
            self.idle.append(name)
        else:
            self.made.discard(name)
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def drop_all(self) -> None:
        for name in [*self.made, self.template]:
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()
        self.idle.clear()


_pool: _PostgresPool | None = None


def _postgres_pool() -> _PostgresPool:
    global _pool  # noqa: PLW0603 - one pool per process, made on first use
    if _pool is None:
        _pool = _PostgresPool()
    return _pool


async def _migrate(url: str) -> None:
    engine = alchemy_config(url).get_engine()
    try:
        await upgrade(engine, migrations=default_migrations())
    finally:
        await engine.dispose()


async def _fingerprint(name: str) -> str:
    conn = await asyncpg.connect(_dsn(name))
    try:
        return str(await conn.fetchval(_SCHEMA_FINGERPRINT))
    finally:
        await conn.close()


async def _empty(name: str, fingerprint: str) -> bool:
    """Delete every row of ``name``; ``False`` when its schema is no longer the template's (then it is not reused)."""
    admin = await asyncpg.connect(_dsn())
    try:  # a server process killed mid-request, or a leaked engine, may still hold a connection (and its locks)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    conn = await asyncpg.connect(_dsn(name))
    try:
        if await conn.fetchval(_SCHEMA_FINGERPRINT) != fingerprint:
            return False
        tables = await conn.fetch(
            "SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public' AND tablename <> $1",
            _VERSION_TABLE,
        )
        async with conn.transaction():
            # DELETE, not TRUNCATE: on a few rows it is a hundred times faster (TRUNCATE makes and syncs new files).
            # Foreign keys are not checked meanwhile, so the order of the tables does not matter.
            await conn.execute("SET LOCAL session_replication_role = replica")
            for row in tables:
                await conn.execute(f"DELETE FROM {row['t']}")
        return True
    finally:
        await conn.close()


def _pg_url(name: str) -> str:
    return (
        make_url(os.environ[PG_ENV])
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


def _dsn(name: str | None = None) -> str:
    base = make_url(os.environ[PG_ENV]).set(drivername="postgresql")
    return (base if name is None else base.set(database=name)).render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(_dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())
