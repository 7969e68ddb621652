"""The engine, its SQLite tuning, readiness and migrations."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
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
from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = (
    "MIGRATIONS_DIR",
    "SqliteSynchronous",
    "alchemy_config",
    "is_ready",
    "sqlite_pragmas",
    "sqlite_pragmas_for",
    "upgrade",
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
OWNER_ONLY = 0o600
SQLITE_FILES = ("", "-wal", "-shm", "-journal")
"""The suffixes of a SQLite database's files: the database itself, its WAL, its shared memory and its journal."""

log = logging.getLogger("sessiongate.storage")

SqliteSynchronous = Literal["NORMAL", "FULL"]
"""How SQLite syncs commits in WAL mode (``PRAGMA synchronous``); what each promises is said in ``storage.runner``."""


_CONFIGS = itertools.count(1)


def alchemy_config(url: str, *, sqlite_synchronous: SqliteSynchronous = "NORMAL") -> SQLAlchemyAsyncConfig:
    """The advanced-alchemy config every part of the gateway shares (one engine per process).

    SQLite gets WAL, ``synchronous`` as asked (:data:`SqliteSynchronous`) and a busy timeout so concurrent processes
    wait instead of failing.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        _owner_only_sqlite_file(url)
    else:
        engine_kwargs = {"pool_size": 20, "max_overflow": 10, "pool_pre_ping": True}
    # advanced-alchemy makes each config's state keys unique by recursing once per earlier config of the process
    # (RecursionError after ~1000): a counter of our own keeps them unique in one step.
    n = next(_CONFIGS)
    config = SQLAlchemyAsyncConfig(
        connection_string=url,
        session_scope_key=f"_sg_db_session_{n}",
        engine_app_state_key=f"sg_db_engine_{n}",
        session_maker_app_state_key=f"sg_session_maker_{n}",
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(script_location=str(MIGRATIONS_DIR), version_table_name="sg_alembic_version"),
        before_send_handler="autocommit",
        engine_config=EngineConfig(**engine_kwargs),
    )
    if url.startswith("sqlite"):
        event.listen(config.get_engine().sync_engine, "connect", sqlite_pragmas_for(sqlite_synchronous))
    return config


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
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)
