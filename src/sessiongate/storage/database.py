"""The engine, its SQLite tuning, readiness and migrations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from alembic.config import Config as AlembicConfig
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationStep
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import column, delete, event, insert, make_url, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.storage.urls import where

__all__ = (
    "CORE",
    "MIGRATIONS_DIR",
    "SET_ASIDE",
    "DatabaseProblem",
    "DatabaseUnusable",
    "Migrations",
    "MigrationsInvalid",
    "ReadinessProbe",
    "SchemaState",
    "SqliteSynchronous",
    "alchemy_config",
    "describe_failure",
    "downgrade",
    "history",
    "is_ready",
    "not_migrated",
    "pool_of",
    "require_schema",
    "schema_state",
    "sqlite_pragmas",
    "sqlite_pragmas_for",
    "upgrade",
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CORE_VERSIONS = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "sg_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 5000
POOL_SIZE = 30
"""PostgreSQL connections a process keeps open when not told (``sessiongate serve`` tells it, from its workers)."""
MAX_OVERFLOW = 0
"""No overflow by default: under load beyond the pool, SQLAlchemy opens an overflow connection for one checkout and
closes it at checkin, so a steady load above the pool connected (TCP, the TLS offer, authentication) on every request:
issp validate at 64 connections, two workers, went from 947 to 1,658 req/s with the same 30 connections as a pool
(issue 17). A request beyond the pool waits for a connection instead, at most the pool's timeout."""
OWNER_ONLY = 0o600
SQLITE_FILES = ("", "-wal", "-shm", "-journal")
"""The suffixes of a SQLite database's files: the database itself, its WAL, its shared memory and its journal."""

log = logging.getLogger("sessiongate.storage")

SqliteSynchronous = Literal["NORMAL", "FULL"]
"""How SQLite syncs commits in WAL mode (``PRAGMA synchronous``); what each promises is said in ``storage.runner``."""


_CONFIGS = itertools.count(1)


def alchemy_config(
    url: str,
    *,
    sqlite_synchronous: SqliteSynchronous = "NORMAL",
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> SQLAlchemyAsyncConfig:
    """The advanced-alchemy config every part of the gateway shares (one engine per process).

    SQLite gets WAL, ``synchronous`` as asked (:data:`SqliteSynchronous`) and a busy timeout so concurrent processes
    wait instead of failing. PostgreSQL gets a pool of ``pool_size`` connections and ``max_overflow`` more under load
    (default :data:`POOL_SIZE` and :data:`MAX_OVERFLOW`). No engine ever puts a statement's parameters in an error or
    a log: they hold keys, digests and passwords' hashes.
    """
    engine_kwargs: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        _owner_only_sqlite_file(url)
    else:
        size, overflow = pool_of(pool_size, max_overflow)
        engine_kwargs |= {"pool_size": size, "max_overflow": overflow}
    # advanced-alchemy makes each config's state keys unique by recursing once per earlier config of the process
    # (RecursionError after ~1000): a counter of our own keeps them unique in one step.
    n = next(_CONFIGS)
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        session_scope_key=f"_sg_db_session_{n}",
        engine_app_state_key=f"sg_db_engine_{n}",
        session_maker_app_state_key=f"sg_session_maker_{n}",
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(script_location=str(MIGRATIONS_DIR), version_table_name=VERSION_TABLE),
        engine_config=EngineConfig(**engine_kwargs),
    )
    if url.startswith("sqlite"):
        event.listen(config.get_engine().sync_engine, "connect", sqlite_pragmas_for(sqlite_synchronous))
    else:
        ping_when_idle(config.get_engine())
    return config


IDLE_BEFORE_PING_S = 1.0
"""A pooled connection unused for longer is pinged before it is handed out (a round trip); a busier one is not."""


def ping_when_idle(engine: AsyncEngine, idle: float = IDLE_BEFORE_PING_S) -> None:
    """Ping a pooled connection at checkout only when it has lain unused for ``idle`` seconds.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one more round trip on every request, as many as the
    request's own statement (issue 17). A connection used less than a second ago is as good as a pinged one; one that
    has lain idle (the database restarted meanwhile, a proxy dropped it) is pinged, and a dead one is replaced before
    any request sees it. A connection that dies under load fails its statement, and SQLAlchemy then drops every pooled
    connection older than that failure.
    """
    pool_engine = engine.sync_engine

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["sg_checked_in"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get("sg_checked_in")
        if last is None or time.monotonic() - last < idle:
            return
        try:
            alive = pool_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("ping failed")

    event.listen(pool_engine, "checkin", checked_in)
    event.listen(pool_engine, "checkout", checked_out)


def pool_of(pool_size: int | None, max_overflow: int | None) -> tuple[int, int]:
    """The PostgreSQL pool's size and overflow for those asked: default :data:`POOL_SIZE` and :data:`MAX_OVERFLOW`
    (none, whatever the size: see there)."""
    size = POOL_SIZE if pool_size is None else pool_size
    overflow = MAX_OVERFLOW if max_overflow is None else max_overflow
    return size, overflow


def sqlite_pragmas_for(synchronous: SqliteSynchronous) -> Callable[[Any, Any], None]:
    """The ``connect`` hook giving every new SQLite connection WAL, ``synchronous``, a busy timeout and foreign keys."""
    if synchronous not in ("NORMAL", "FULL"):  # it is spliced into SQL: never anything else
        msg = f"synchronous must be NORMAL or FULL, not {synchronous!r}"
        raise ValueError(msg)

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # First: the next pragma waits for a lock another connection holds, instead of failing at once.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return pragmas


sqlite_pragmas = sqlite_pragmas_for("NORMAL")
"""The default ``connect`` hook (``synchronous=NORMAL``)."""


def _owner_only_sqlite_file(url: str) -> None:
    """Create the database file readable by its owner only, before SQLite does; tighten an existing one.

    The database holds every session and the gateway's generated keys. SQLite creates a new database with the
    process's umask (world-readable under the usual 022), and gives its WAL, SHM and journal files the database
    file's own mode: so a database file created owner-only here keeps all of them owner-only. Files an earlier
    version (or a copy) left readable by others are made owner-only, with a warning naming the file.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OWNER_ONLY)
    except FileExistsError:
        for suffix in SQLITE_FILES:
            _tighten(Path(f"{path}{suffix}"))
    else:
        os.fchmod(fd, OWNER_ONLY)  # whatever the umask took away
        os.close(fd)


def _tighten(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        path.chmod(mode & 0o700)
    except OSError as exc:
        log.warning(
            "database file is readable by others and could not be made owner-only",
            extra={"path": str(path), "mode": f"{mode:04o}", "error": exc.strerror},
        )
        return
    log.warning(
        "database file was readable by others: made owner-only",
        extra={"path": str(path), "mode": f"{mode:04o}", "now": f"{mode & 0o700:04o}"},
    )


async def is_ready(engine: AsyncEngine) -> bool:
    """Whether the database answers a trivial query (SQLite: and its file can still be opened)."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        if engine.dialect.name == "sqlite" and (path := engine.url.database) and path != ":memory:":
            await asyncio.to_thread(_sqlite_file_opens, path)
    except Exception:  # noqa: BLE001 - any failure means "not ready", which is the answer
        return False
    return True


def _sqlite_file_opens(path: str) -> None:
    # Open connections go on working on a file whose directory was unmounted, moved or deleted, while every new one
    # fails: only a new connection tells. mode=rw, so a missing file is an error here instead of a new empty database.
    conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=1)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        conn.close()


class MigrationsInvalid(ValueError):
    """A dialect's migrations folder breaks the rules of a dialect's branch (:class:`Migrations`)."""


NEEDS_CORE = "needs_core"
"""The attribute of a dialect branch's first revision naming the core revision the branch needs."""


@dataclass(frozen=True, slots=True)
class Migrations:
    """The migrations a database is held to: the core's, and the branches of the enabled dialects.

    A dialect's branch is a folder of Alembic revisions of its own (``DialectPlugin.migrations``), all in the one
    version table. Each revision id starts with the dialect's name and ``_`` (``memo_0001``); the first has
    ``down_revision = None``, ``branch_labels = ("<name>",)`` and ``needs_core = "<core revision>"``, the core
    revision its tables need. Not Alembic's ``depends_on``: with it, Alembic replaces the core's row of the version
    table by the branch's, and a gateway without that dialect could no longer tell where the core stands. The core
    is migrated first, then each branch, so every branch finds the core at its head, which must reach ``needs_core``.

    The core's revision ids never hold a ``_``, so every row of the version table says whose it is. The row of a
    dialect not enabled here (disabled, or uninstalled) is left alone: its tables are neither migrated nor undone,
    and it does not count against readiness.
    """

    branches: tuple[tuple[str, Path], ...] = ()
    """Each enabled dialect's name and its migrations folder."""
    _names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", frozenset(name for name, _ in self.branches))

    @classmethod
    def of(cls, branches: Mapping[str, Path]) -> Migrations:
        """The migrations of the core and of ``branches`` (each enabled dialect's name and folder), checked.

        Raises:
            MigrationsInvalid: a folder is missing, or a revision in it is not of its dialect's branch.
        """
        migrations = cls(tuple(sorted(branches.items())))
        _scripts(migrations)
        return migrations

    def holds(self, revision: str) -> bool:
        """Whether ``revision`` (a row of the version table) is the core's or an enabled dialect's."""
        name, underscore, _ = revision.partition("_")
        return not underscore or name in self._names


CORE = Migrations()
"""The core's migrations alone (no dialect's branch)."""


async def upgrade(engine: AsyncEngine, revision: str = "heads", migrations: Migrations = CORE) -> None:
    """Apply the migrations up to ``revision`` on ``engine`` (safe to run from several processes).

    ``heads`` is the core's head, then the head of each enabled dialect's branch (``migrations``); a disabled
    dialect's tables are left as they are.
    """
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision, migrations)


def _upgrade_on(connection: Connection, revision: str, migrations: Migrations) -> None:
    script = _scripts(migrations)
    for target in _targets(script, migrations, revision):
        if not _upgrades(script, target, _ours(_current_heads(connection), migrations)):
            continue  # already there (every start of a migrated gateway): no Alembic environment to run for it

        def steps(current: tuple[str, ...], _context: MigrationContext, target: str = target) -> list[MigrationStep]:
            return [
                MigrationStep.upgrade_from_script(script.revision_map, rev)
                for rev in _upgrades(script, target, _ours(current, migrations))
            ]

        _run_env(connection, script, steps, target)


def _targets(script: ScriptDirectory, migrations: Migrations, revision: str) -> list[str]:
    """What ``revision`` means, one Alembic destination at a time: the core's head first, then each branch's."""
    if revision != "heads":
        return [revision]
    core = [head for head in script.get_heads() if "_" not in head]
    return [*core, *(f"{name}@head" for name, _ in migrations.branches)]


def _ours(current: tuple[str, ...], migrations: Migrations) -> tuple[str, ...]:
    return tuple(rev for rev in current if migrations.holds(rev))


def _upgrades(script: ScriptDirectory, target: str, current: tuple[str, ...]) -> list[Script]:
    """The revisions an upgrade to ``target`` from ``current`` applies, in order."""
    return list(reversed(list(script.iterate_revisions(target, current, implicit_base=True))))


def _run_env(
    connection: Connection, script: ScriptDirectory, steps: Any, revision: str, *, set_aside: tuple[str, ...] = ()
) -> None:
    # What alembic.command.upgrade/downgrade do, but only over the version table's rows that are the core's or an
    # enabled dialect's: alembic cannot place a row whose revision it has no script of (a disabled dialect's).
    config = _alembic_config(connection)
    config.attributes[SET_ASIDE] = set_aside
    with EnvironmentContext(config, script, fn=steps, destination_rev=revision):
        script.run_env()


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this version's migrations."""

    current: tuple[str, ...]
    """The revisions the database is at (none: never migrated), the core's and the enabled dialects'."""
    heads: tuple[str, ...]
    """The revisions this version's migrations end at."""
    pending: tuple[str, ...]
    """The migrations ``sessiongate db upgrade`` would apply, in order."""
    unknown: tuple[str, ...]
    """Revisions of the database this version does not know (made by a newer version)."""
    others: tuple[str, ...] = ()
    """Revisions of dialects not enabled here, whose tables are left alone."""

    @property
    def up_to_date(self) -> bool:
        """Whether the database's schema is this version's."""
        return not self.pending and not self.unknown


async def schema_state(engine: AsyncEngine, migrations: Migrations = CORE) -> SchemaState:
    """Where ``engine``'s database stands against this version's migrations (``migrations``); it is not changed."""
    async with engine.connect() as conn:
        return await conn.run_sync(_state_on, migrations)


def _state_on(connection: Connection, migrations: Migrations = CORE) -> SchemaState:
    script = _scripts(migrations)
    rows = tuple(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads())
    current = _ours(rows, migrations)
    known, unknown = [], []
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
        else:
            known.append(revision)
    pending: list[str] = []
    if not unknown:
        for target in _targets(script, migrations, "heads"):
            pending += [rev.revision for rev in _upgrades(script, target, tuple(known)) if rev.revision not in pending]
    others = tuple(rev for rev in rows if rev not in current)
    heads = tuple(script.get_heads())
    return SchemaState(current=current, heads=heads, pending=tuple(pending), unknown=tuple(unknown), others=others)


class ReadinessProbe:
    """What ``/readyz`` asks the database: whether it answers, and which of ``migrations``' revisions it is at.

    Args:
        engine: The database's engine.
        migrations: The core's migrations and the enabled dialects' branches: the version table's rows of other
            dialects are none of this gateway's business.
    """

    def __init__(self, engine: AsyncEngine, migrations: Migrations = CORE) -> None:
        self.engine = engine
        self.migrations = migrations
        self._script: tuple[frozenset[str], frozenset[str]] | None = None

    async def current(self) -> frozenset[str] | None:
        """The revisions of ``migrations`` the database is at (none: it has no schema); ``None`` when it cannot be
        reached (:func:`is_ready`), or went away before its version table was read."""
        if not await is_ready(self.engine):
            return None
        try:
            async with self.engine.connect() as conn:
                rows = await conn.run_sync(_current_heads)
        except Exception:  # noqa: BLE001 - the database went away between the two reads, which is the answer
            return None
        return frozenset(rev for rev in rows if self.migrations.holds(rev))

    def expected(self) -> tuple[frozenset[str], frozenset[str]]:
        """The heads of ``migrations`` and every revision they know (read from the scripts once)."""
        if self._script is None:
            self._script = revisions(self.migrations)
        return self._script


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads())


def revisions(migrations: Migrations = CORE) -> tuple[frozenset[str], frozenset[str]]:
    """The heads of ``migrations`` and every revision they know, for a check of the version table's rows."""
    script = _scripts(migrations)
    return frozenset(script.get_heads()), frozenset(rev.revision for rev in script.walk_revisions())


def history(migrations: Migrations = CORE) -> list[Script]:
    """This version's migrations (the core's and the enabled dialects'), the newest first."""
    return list(_scripts(migrations).walk_revisions())


async def downgrade(engine: AsyncEngine, revision: str, migrations: Migrations = CORE) -> None:
    """Undo the migrations after ``revision`` (``base``: all of them) on ``engine``, the enabled dialects' branches
    included; their tables and what they hold are dropped. A disabled dialect's tables are left alone."""
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_on, revision, migrations)


def _downgrade_on(connection: Connection, revision: str, migrations: Migrations) -> None:
    script = _scripts(migrations)
    rows = _current_heads(connection)
    others = sorted(set(rows) - set(_ours(rows, migrations)))
    if revision == "base" and others:
        # The core's tables would go while those dialects' stayed, their rows saying they are migrated.
        msg = (
            f"the database also holds the migrations {', '.join(others)} of dialects not enabled: enable them to "
            "undo theirs as well, or downgrade to a revision other than base"
        )
        raise CommandError(msg)

    def steps(current: tuple[str, ...], _context: MigrationContext) -> list[MigrationStep]:
        found = script.iterate_revisions(current, revision, select_for_downgrade=True)
        return [MigrationStep.downgrade_from_script(script.revision_map, rev) for rev in found]

    # Alembic places every row of the version table before each step it undoes, and cannot place a row it has no
    # script of (a disabled dialect's): those rows are set aside while the steps run, and put back after them, all in
    # the one transaction of the downgrade. A migration that asks whose a table is reads them in SET_ASIDE.
    with _set_aside(connection, others):
        _run_env(connection, script, steps, revision, set_aside=tuple(others))


SET_ASIDE = "sessiongate.set_aside"
"""The key, in the Alembic config's ``attributes`` (``op.get_context().config.attributes``), of the version table's
rows of dialects not enabled, set aside while a downgrade runs: a migration that decides by the rows (core 0003: is
``sg_device`` portos's?) counts them as rows all the same."""


@contextlib.contextmanager
def _set_aside(connection: Connection, revisions: list[str]) -> Iterator[None]:
    """The version table without ``revisions`` meanwhile; they are back afterwards (a failure undoes both, with the
    whole transaction)."""
    versions = table(VERSION_TABLE, column("version_num"))
    for revision in revisions:
        connection.execute(delete(versions).where(versions.c.version_num == revision))
    yield
    for revision in revisions:
        connection.execute(insert(versions).values(version_num=revision))


@functools.cache
def _scripts(migrations: Migrations = CORE) -> ScriptDirectory:
    for name, folder in migrations.branches:
        if "_" in name:  # a row's owner is what precedes its first "_"
            msg = f"dialect {name!r}: a dialect with migrations has no '_' in its name"
            raise MigrationsInvalid(msg)
        if not folder.is_dir():
            msg = f"dialect {name!r}: its migrations folder {folder} does not exist"
            raise MigrationsInvalid(msg)
    locations = [str(CORE_VERSIONS), *(str(folder) for _, folder in migrations.branches)]
    script = ScriptDirectory(str(MIGRATIONS_DIR), version_locations=locations)
    _check_branches(script, migrations)
    return script


def _check_branches(script: ScriptDirectory, migrations: Migrations) -> None:
    folders = {folder.resolve(): name for name, folder in migrations.branches}
    revisions = list(script.walk_revisions())
    core = {rev.revision for rev in revisions if Path(rev.path).parent.resolve() not in folders}
    for rev in revisions:
        name = folders.get(Path(rev.path).parent.resolve())
        if name is None:
            if "_" in rev.revision:
                msg = f"core revision {rev.revision!r} holds a '_', which marks a dialect's revision"
                raise MigrationsInvalid(msg)
            continue
        where = f"dialect {name!r}: its revision {rev.revision!r}"
        if not rev.revision.startswith(f"{name}_"):
            msg = f"{where} does not start with {name + '_'!r}"
            raise MigrationsInvalid(msg)
        if rev.dependencies:
            msg = f"{where} has depends_on: name the core revision it needs as {NEEDS_CORE} in its first revision"
            raise MigrationsInvalid(msg)
        downs = (rev.down_revision,) if isinstance(rev.down_revision, str) else tuple(rev.down_revision or ())
        if any(not down.startswith(f"{name}_") for down in downs):
            msg = f"{where} revises a revision of another branch"
            raise MigrationsInvalid(msg)
        if rev.down_revision is not None:
            continue
        if name not in rev.branch_labels:
            msg = f"{where} is its first and is not labelled branch_labels = ({name!r},)"
            raise MigrationsInvalid(msg)
        needs = getattr(rev.module, NEEDS_CORE, None)
        if needs not in core:
            known = max(core, default="none")
            msg = f"{where} needs core revision {needs!r} ({NEEDS_CORE}), which this sessiongate (up to {known}) lacks"
            raise MigrationsInvalid(msg)


def _alembic_config(connection: Connection) -> AlembicConfig:
    # The env script reads only the connection from it: the revisions come from the ScriptDirectory handed in.
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


class DatabaseUnusable(Exception):
    """The database cannot be used as it is: :attr:`problem` says why."""

    def __init__(self, problem: DatabaseProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def require_schema(engine: AsyncEngine, url: str, migrations: Migrations = CORE) -> None:
    """Check that ``engine``'s database is migrated to this version: the core and the enabled dialects' branches
    (``migrations``); a disabled dialect's revisions are not held against it.

    Raises:
        DatabaseUnusable: it is not (never migrated, behind, or migrated by a newer version).
    """
    state = await schema_state(engine, migrations)
    if not state.up_to_date:
        raise DatabaseUnusable(not_migrated(url, state))


@dataclass(frozen=True, slots=True)
class DatabaseProblem:
    """Why a database cannot be used, in one line an operator can act on (never a parameter or a password)."""

    message: str
    unreachable: bool
    """The database cannot be reached or refuses the connection (else: its schema is not this version's)."""


_UNREACHABLE_STATES = {
    "28P01": "refused the password",
    "28000": "refused the user",
    "3D000": "has no such database",
    "57P03": "is not accepting connections yet",
    "53300": "has no connection left",
}
_UNDEFINED_TABLE = "42P01"


def describe_failure(exc: BaseException, url: str) -> DatabaseProblem | None:
    """What ``exc`` (raised while connecting to or using ``url``'s database) means, or ``None`` if it is not a
    failure of the database's reach or schema."""
    for cause in _causes(exc):
        state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        if state in _UNREACHABLE_STATES:
            said = (str(cause).strip().splitlines() or [""])[0]  # the server's own words: never a password
            message = f"{where(url)} {_UNREACHABLE_STATES[state]}{f': {said}' if said else ''}"
            return DatabaseProblem(message, unreachable=True)
        if state == _UNDEFINED_TABLE or (isinstance(cause, sqlite3.OperationalError) and "no such table" in str(cause)):
            return DatabaseProblem(_not_migrated(url), unreachable=False)
        if isinstance(cause, sqlite3.OperationalError) and "unable to open database file" in str(cause):
            return DatabaseProblem(f"cannot open {where(url)}", unreachable=True)
        if isinstance(cause, TimeoutError):
            return DatabaseProblem(f"cannot reach {where(url)}: no answer in time", unreachable=True)
        if isinstance(cause, OSError) and not isinstance(cause, sqlite3.Error):
            errno = cause.errno or 0
            reason = os.strerror(errno) if errno > 0 else cause.strerror or str(cause) or "failed"
            return DatabaseProblem(f"cannot reach {where(url)}: {reason}", unreachable=True)
    return None


def not_migrated(url: str, state: SchemaState) -> DatabaseProblem:
    """The problem of a database whose schema is not this version's."""
    if state.unknown:
        message = (
            f"{where(url)} is at revision {', '.join(state.unknown)}, which this version of sessiongate does not know "
            "(a newer version migrated it): run that version, or `sessiongate db downgrade` from it"
        )
        return DatabaseProblem(message, unreachable=False)
    return DatabaseProblem(_not_migrated(url, len(state.pending)), unreachable=False)


def _not_migrated(url: str, pending: int | None = None) -> str:
    count = "" if pending is None else f" ({pending} migration{'s' if pending != 1 else ''} pending)"
    return (
        f"{where(url)} is not migrated to this version{count}: run `sessiongate db upgrade` "
        "(or set SESSIONGATE_AUTO_MIGRATE=true)"
    )


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            todo += list(current.exceptions)
    return seen
