"""The engine, its SQLite tuning, readiness and migrations."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = (
    "MIGRATIONS_DIR",
    "DatabaseProblem",
    "DatabaseUnusable",
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
    "where",
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "sg_alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 5000
POOL_SIZE = 20
"""PostgreSQL connections a process keeps open when not told (``sessiongate serve`` tells it, from its workers)."""
MAX_OVERFLOW = 10
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
        before_send_handler="autocommit",
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
    """The PostgreSQL pool's size and overflow for those asked: default :data:`POOL_SIZE` and :data:`MAX_OVERFLOW`, or
    half the size asked when only the size is."""
    size = POOL_SIZE if pool_size is None else pool_size
    overflow = (MAX_OVERFLOW if pool_size is None else size // 2) if max_overflow is None else max_overflow
    return size, overflow


def sqlite_pragmas_for(synchronous: SqliteSynchronous) -> Callable[[Any, Any], None]:
    """The ``connect`` hook giving every new SQLite connection WAL, ``synchronous``, a busy timeout and foreign keys."""
    if synchronous not in ("NORMAL", "FULL"):  # it is spliced into SQL: never anything else
        msg = f"synchronous must be NORMAL or FULL, not {synchronous!r}"
        raise ValueError(msg)

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
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


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Apply the migrations up to ``revision`` on ``engine`` (safe to run from several processes)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision)


def _upgrade_on(connection: Connection, revision: str) -> None:
    command.upgrade(_alembic_config(connection), revision)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands against this version's migrations."""

    current: tuple[str, ...]
    """The revisions the database is at (none: never migrated)."""
    heads: tuple[str, ...]
    """The revisions this version's migrations end at."""
    pending: tuple[str, ...]
    """The migrations ``sessiongate db upgrade`` would apply, in order."""
    unknown: tuple[str, ...]
    """Revisions of the database this version does not know (made by a newer version)."""

    @property
    def up_to_date(self) -> bool:
        """Whether the database's schema is this version's."""
        return not self.pending and not self.unknown


async def schema_state(engine: AsyncEngine) -> SchemaState:
    """Where ``engine``'s database stands against this version's migrations; it is not changed."""
    async with engine.connect() as conn:
        return await conn.run_sync(_state_on)


def _state_on(connection: Connection) -> SchemaState:
    script = _scripts()
    current = tuple(MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads())
    known, unknown = [], []
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:
            unknown.append(revision)
        else:
            known.append(revision)
    heads = tuple(script.get_heads())
    lower = tuple(known) or "base"
    pending = () if unknown else tuple(rev.revision for rev in reversed(list(script.iterate_revisions(heads, lower))))
    return SchemaState(current=current, heads=heads, pending=pending, unknown=tuple(unknown))


def history() -> list[Script]:
    """This version's migrations, the newest first."""
    return list(_scripts().walk_revisions())


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Undo the migrations after ``revision`` (``base``: all of them) on ``engine``; their tables and what they hold
    are dropped."""
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_on, revision)


def _downgrade_on(connection: Connection, revision: str) -> None:
    command.downgrade(_alembic_config(connection), revision)


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS_DIR))


def _alembic_config(connection: Connection) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


class DatabaseUnusable(Exception):
    """The database cannot be used as it is: :attr:`problem` says why."""

    def __init__(self, problem: DatabaseProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def require_schema(engine: AsyncEngine, url: str) -> None:
    """Check that ``engine``'s database is migrated to this version.

    Raises:
        DatabaseUnusable: it is not (never migrated, behind, or migrated by a newer version).
    """
    state = await schema_state(engine)
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


def where(url: str) -> str:
    """The database ``url`` names, for an operator: the SQLite file's absolute path, or PostgreSQL's host and port and
    database; never a password."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        database = parsed.database
        if not database or database == ":memory:":
            return "an in-memory SQLite database"
        return f"the SQLite file {Path(database).expanduser().resolve()}"
    host = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "its local socket"
    return f"PostgreSQL at {host} (database {parsed.database or parsed.username or '?'!r})"


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
