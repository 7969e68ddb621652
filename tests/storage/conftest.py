"""One storage conformance suite, run alike on SQLite and PostgreSQL: the stores as the gateway builds them, a clock
the tests move, the rows as another connection sees them, and faults injected into the real databases."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sessiongate.core.models import Device, NewSession, Session
from sessiongate.core.store import RefreshStore, SessionStore
from sessiongate.sessions.audit import AuditLog, NewEvent
from sessiongate.storage.database import alchemy_config, sqlite_pragmas
from sessiongate.storage.refresh_store import SqlRefreshStore
from sessiongate.storage.runner import StatementRunner, runner_for
from sessiongate.storage.store import SqlSessionStore
from tests.support.clock import FakeClock
from tests.support.databases import PG_ENV, backends, migrated_database

TTL = timedelta(hours=1)
FAULT = "sg_fault"
"""The name of the trigger (and its PostgreSQL function) a test injects a fault with."""


def _pragmas(dbapi_connection: Any, record: Any) -> None:
    """The gateway's SQLite pragmas, and ``sg_fault_interrupt()``: a statement that calls it (through a trigger) is
    interrupted, as a connection lost mid-statement, and SQLite undoes the whole transaction it ran in."""
    sqlite_pragmas(dbapi_connection, record)
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.create_function("sg_fault_interrupt", 0, dbapi_connection.interrupt)


_INTERRUPTED = (
    "SELECT sg_fault_interrupt(); "
    # SQLite acts on an interrupt only at a step of a loop: a statement of no loop would go on and commit.
    "SELECT count(*) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
    "SELECT i FROM n)"
)


@dataclass
class Backend:
    """The two storage Protocols over one database, as ``runtime.open_services`` wires them (one runner for both)."""

    kind: str
    url: str
    engine: AsyncEngine
    runner: StatementRunner
    sessions: SessionStore
    refresh: RefreshStore
    clock: FakeClock
    closed: bool = False

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.runner.close()

    @property
    def now(self) -> datetime:
        return self.clock.now

    async def insert(
        self,
        *,
        ttl: timedelta = TTL,
        digest: str | None = None,
        audit: dict[str, Any] | None = None,
        absolute: timedelta | None = None,
        **fields: Any,
    ) -> Session:
        """A new session of dialect ``test`` (tenant ``default``) living ``ttl`` from now; must not be a reuse."""
        fields.setdefault("dialect", "test")
        session, reused = await self.sessions.insert(
            NewSession(**fields),
            now=self.now,
            expires_at=self.now + ttl,
            absolute_expires_at=None if absolute is None else self.now + absolute,
            token_digest=digest,
            audit=audit,
        )
        assert not reused
        return session

    def audit_row(self, kind: str = "session.created", **about: Any) -> dict[str, Any]:
        return AuditLog(self.runner, self.clock).row(NewEvent(kind=kind, actor="user", **about))  # type: ignore[arg-type]

    async def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """What a connection of the engine (not the runner) reads: what is committed."""
        async with self.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(text(sql), params)).all()]

    async def execute(self, sql: str) -> None:
        """DDL through the runner (on SQLite, the writer thread's own connection sees it at once)."""
        await self.runner.write(text(sql))

    async def inject(self, table: str, event: str, when: str, *, fault: str) -> None:
        """A trigger ``BEFORE <event> ON <table>`` that, for the rows ``when`` holds of, refuses the statement
        (``refused``: SQLite's ``RAISE(ROLLBACK)``, which undoes the whole transaction; PostgreSQL's ``RAISE``) or
        loses the connection running it (``connection-lost``: SQLite interrupts it, PostgreSQL terminates its backend
        and the statement dies before it can commit)."""
        if self.kind == "sqlite":
            lost = fault == "connection-lost"
            action = _INTERRUPTED if lost else "SELECT RAISE(ROLLBACK, 'refused')"
            await self.execute(f"CREATE TRIGGER {FAULT} BEFORE {event} ON {table} WHEN {when} BEGIN {action}; END")
            return
        action = (
            "PERFORM pg_terminate_backend(pg_backend_pid()); PERFORM pg_sleep(10);"
            if fault == "connection-lost"
            else "RAISE EXCEPTION 'refused';"
        )
        await self.execute(
            f"CREATE FUNCTION {FAULT}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {action} RETURN NEW; END $$"
        )
        await self.execute(
            f"CREATE TRIGGER {FAULT} BEFORE {event} ON {table} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {FAULT}()"
        )

    async def heal(self, table: str) -> None:
        """Drop the injected fault (on PostgreSQL also so the database is handed on to the next test, not dropped)."""
        await self.execute(f"DROP TRIGGER IF EXISTS {FAULT}" + ("" if self.kind == "sqlite" else f" ON {table}"))
        if self.kind != "sqlite":
            await self.execute(f"DROP FUNCTION IF EXISTS {FAULT}()")


@asynccontextmanager
async def opened(kind: str, url: str, clock: FakeClock) -> AsyncIterator[Backend]:
    """The stores as ``runtime.open_services`` builds them: the shared engine, the runner suited to it (SQLite: the
    writer thread with group commit), ``SqlSessionStore`` and ``SqlRefreshStore`` over that one runner."""
    engine = alchemy_config(url).get_engine()
    runner = runner_for(engine, url, _pragmas)
    built = Backend(
        kind=kind,
        url=url,
        engine=engine,
        runner=runner,
        sessions=SqlSessionStore(engine, runner),
        refresh=SqlRefreshStore(runner),
        clock=clock,
    )
    try:
        yield built
    finally:
        await built.close()
        await engine.dispose()


def start_of_time() -> FakeClock:
    # Microseconds on purpose: both databases must keep every instant exactly.
    return FakeClock(datetime.now(UTC).replace(microsecond=654_321))


@pytest.fixture
async def backend(database_url: str) -> AsyncIterator[Backend]:
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    async with opened(kind, database_url, start_of_time()) as built:
        yield built


@pytest.fixture
def both_urls(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A migrated SQLite and a migrated PostgreSQL database, for one test that compares them."""
    if "postgresql" not in backends():
        pytest.skip(f"{PG_ENV} is not set: there is no second backend to compare SQLite with")
    with migrated_database("sqlite", tmp_path) as lite, migrated_database("postgresql", tmp_path) as pg:
        yield {"sqlite": lite, "postgresql": pg}


async def committed_rows(backend: Backend, sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows on a brand-new connection once the stores are closed: what is really in the database."""
    await backend.close()
    if backend.kind == "sqlite":
        conn = sqlite3.connect(make_url(backend.url).database or "")
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    engine = create_async_engine(backend.url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


class ThroughSqlAlchemy:
    """A runner the driver path does not know (as aiosqlite's through an engine is): every call goes to ``runner``, so
    a lookup runs through SQLAlchemy, for tests that compare the two paths."""

    def __init__(self, runner: Any) -> None:
        self._runner = runner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runner, name)


def device(name: str) -> Device:
    return Device(id=name, name=f"{name} name")
