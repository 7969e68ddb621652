"""Where statements run: the async engine, or — for SQLite — one writer thread with group commit.

SQLite lets one connection write at a time; with a pool of async connections, concurrent writers meet
``database is locked`` and SQLite's busy handler sleeps in steps of up to 100 ms, which is where latency went.
:class:`SqliteRunner` instead queues every write to one thread that owns one connection, runs whatever has queued
up in one transaction (group commit: one commit for many writes), and answers each caller when that commit is
done, so nothing is acknowledged before it is committed. A group of creates alone (the driver's SQL, a few dozen at
most) is committed the same way on the event loop's own connection instead, when SQLite's write lock is free at that
moment (:meth:`SqliteRunner._run_inline`): the writer thread's commits waited for the interpreter's lock while the loop
served requests. Reads run on a few reader threads, one hop each, and see every committed write (WAL); the session
lookups every validate makes run on the event loop's connection too (:meth:`SqliteRunner.read_driver`). Statements
are SQLAlchemy Core on the same database file.

Every caller of a batch gets either a committed success or an error, never a success that a later rollback undid.
SQLite undoes a whole transaction, not just the failing statement, after ``SQLITE_FULL``, an I/O error, an interrupt
or a trigger's ``RAISE(ROLLBACK)``; and a statement under ``FAIL`` resolution (``OR FAIL``, ``RAISE(FAIL)``) keeps
the changes it made before failing. So a batch in which a statement fails is rolled back and run again without it,
each statement then between a ``SAVEPOINT`` and its ``RELEASE`` (or ``ROLLBACK TO``): the savepoints cost only the
rare batch that had a failure, and a failure that still undoes the transaction starts it over once more without that
statement. A failing ``COMMIT`` fails the whole batch.

Committed means what ``PRAGMA synchronous`` promises (``storage.database``): with ``NORMAL``, the default, a commit
survives the process crashing or being killed, but the last commits before a power loss or an operating-system crash
may be lost (the WAL is synced at checkpoints, not at every commit); the database stays consistent either way. With
``FULL`` (``SESSIONGATE_SQLITE_SYNCHRONOUS=FULL``) every commit is synced to the disk before it is acknowledged, and
survives a power loss too, at the cost of one fsync per group commit.

Every statement's (and transaction's) wait is timed into ``sessiongate_database_seconds`` (``sessiongate.meters``).

Copying the WAL back into the database file (a checkpoint, with its fsyncs) is left to a thread of its own,
:class:`WalCheckpointer`: SQLite would otherwise run it inside every thousandth page's commit, and the requests
waiting on that commit waited for the copy too, the slowest percent of a create's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeAlias, TypeVar

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its exception classes are used
from sqlalchemy import Connection, Engine, Executable, Row, Select, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool, PoolProxiedConnection
from sqlalchemy.util import await_only, greenlet_spawn

from sessiongate import meters

__all__ = (
    "AsyncEngineRunner",
    "DataVersion",
    "DriverStatement",
    "Outcome",
    "Query",
    "ResultRow",
    "SqliteRunner",
    "Statement",
    "StatementRunner",
    "WalCheckpointer",
    "runner_for",
)

MAX_BATCH = 256
MAX_INLINE_BATCH = 64
"""Most creates committed at once on the event loop's thread (:meth:`SqliteRunner._commit_inline`): about 10 ms."""
_SQLITE_WAITS = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED: what a connection with a busy timeout would wait out
CHECKPOINT_EVERY_S = 0.25
"""How often the checkpointer copies what was committed since its last run back into the database file."""
WRITER_AUTOCHECKPOINT_PAGES = 20_000
"""The writer checkpoints by itself only if the WAL reaches this many pages (80 MB): the checkpointer fell behind."""
MAX_CHANGES_READ = 4096
"""Most entries of the change log read at once; a process further behind forgets everything it kept instead."""
T = TypeVar("T")
Statement: TypeAlias = Executable
"""A SQLAlchemy Core statement, as the layers above storage name one without importing SQLAlchemy (a dialect's
statements on its own tables: ``sessiongate.dialects.storage``)."""
Query: TypeAlias = Select[Any]
"""A SQLAlchemy Core ``SELECT``, as :data:`Statement` names a statement (``DialectStorage.lookup`` takes one)."""
ResultRow: TypeAlias = Row[Any]
"""A row a statement returned."""
DataVersion = tuple[int, int]
"""``(generation, data_version)``: the generation counts the connections that read the counter, so a new one, whose
counter starts afresh, can never repeat a version an older one gave."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a statement returned: its rows (when it returns rows) and how many rows it changed."""

    rows: list[Row[Any]] = field(default_factory=list)
    rowcount: int = 0


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """SQL for the DBAPI connection itself, its parameters already in the driver's terms; rows come back raw.

    For the one statement every create runs (``storage.store``): SQLAlchemy's execution of a Core statement, its
    cache lookup, parameter and result processing and events, cost more than SQLite's own work on it.
    """

    sql: str
    params: dict[str, Any]
    then: tuple[DriverStatement, ...] = ()
    """Statements written with this one, as one: all or none of them commits (a failure of any undoes them all, and
    is this statement's error). The outcome is this statement's. For a create's audit event, written with its
    session."""


class StatementRunner(Protocol):
    """Runs one Core statement in its own short transaction (writes) or on a snapshot (reads)."""

    async def write(self, statement: Executable, params: dict[str, Any] | None = None) -> Outcome:
        """Run a changing statement and commit it before returning."""
        ...

    async def read(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """Run a query."""
        ...

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a connection inside one transaction: committed when it returns, undone when it raises.

        For a logical write of several statements that must happen together (a refresh-token rotation). A statement
        of ``work`` that fails undoes the transaction even when ``work`` catches its error: the caller gets that
        error (as PostgreSQL, which refuses every later statement of a failed transaction and turns its ``COMMIT``
        into a rollback, would otherwise answer as if it had committed).
        """
        ...

    def data_version(self) -> DataVersion | None:
        """A version that changes whenever any connection, in any process, commits a change to the database, and
        never comes back once it has changed.

        ``None`` when there is no cheap way to know: then no answer may be kept across calls.
        """
        ...

    def session_changes(self, after: int | None) -> tuple[int, list[bytes] | None] | None:
        """The sessions changed (updated or deleted) since entry ``after`` of the change log, read after
        :meth:`data_version`: ``(last entry, their raw ids)``; the ids are ``None`` when they cannot all be told
        (``after`` is ``None``, too far behind, or trimmed away), and the whole is ``None`` when the log cannot be read.
        """
        ...

    async def close(self) -> None:
        """Release threads and connections."""
        ...


class AsyncEngineRunner:
    """Statements on the shared async engine (PostgreSQL: concurrent writers are fine there)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._failures = _FailedStatements(engine.sync_engine)
        # On PostgreSQL one statement is a transaction of its own, atomic and on one snapshot: sent in autocommit,
        # it is one round trip, where BEGIN before it and COMMIT (or the pool's ROLLBACK) after it made three.
        self._single = (
            engine.execution_options(isolation_level="AUTOCOMMIT") if engine.dialect.name == "postgresql" else engine
        )

    async def write(self, statement: Executable, params: dict[str, Any] | None = None) -> Outcome:
        """One transaction per statement (on PostgreSQL, the statement's own: committed when it returns)."""
        start = time.perf_counter()
        try:
            async with self._single.begin() as conn:
                result = await conn.execute(statement, params)
                rows = list(result.all()) if result.returns_rows else []
                return Outcome(rows=rows, rowcount=max(result.rowcount, 0))
        finally:
            meters.DB_WRITE.observe(time.perf_counter() - start)

    async def read(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """One pooled connection per query."""
        start = time.perf_counter()
        try:
            async with self._single.connect() as conn:
                return list((await conn.execute(statement, params)).all())
        finally:
            meters.DB_READ.observe(time.perf_counter() - start)

    async def read_driver(self, statement: DriverStatement) -> list[tuple[Any, ...]]:
        """As :meth:`read`, for SQL asyncpg runs as it is: ``statement.params`` are its ``$1``, ``$2``… in order.

        For the lookups every validate runs on PostgreSQL (``storage.store``): SQLAlchemy's execution of the query
        (building it, its cache key, the execution context, the cursor adapter) cost as much of a worker's time as
        asyncpg's own work on it (issue 17). The connection is the pool's, checked out and in as SQLAlchemy does (the
        idle ping included); asyncpg prepares the statement once per connection and keeps it.

        Raises:
            DBAPIError: the statement failed; ``connection_invalidated`` when the connection was lost (it is dropped
                from the pool, as SQLAlchemy drops one), so the failure counts as an outage.
        """
        start = time.perf_counter()
        try:
            return await greenlet_spawn(self._fetch, statement)
        finally:
            meters.DB_READ.observe(time.perf_counter() - start)

    def _fetch(self, statement: DriverStatement) -> list[tuple[Any, ...]]:
        fairy = self.engine.sync_engine.raw_connection()  # in the greenlet: a new connection may be opened
        driver: Any = fairy.driver_connection  # asyncpg's Connection (untyped)
        try:
            records = await_only(driver.fetch(statement.sql, *statement.params.values()))
        except Exception as exc:
            lost = driver.is_closed() or _connection_lost(exc)  # SQLAlchemy's asyncpg dialect asks is_closed too
            if lost:
                # What SQLAlchemy's Connection does on a disconnect: this connection is dropped, and every pooled
                # one older than the failure is replaced at its next checkout (the server restarted: all are dead).
                self.engine.sync_engine.pool._invalidate(fairy, exc)
            raise DBAPIError(statement.sql, None, exc, hide_parameters=True, connection_invalidated=lost) from exc
        finally:
            fairy.close()
        return [tuple(record) for record in records]

    def data_version(self) -> DataVersion | None:
        """PostgreSQL has no cheap, synchronous change counter (LISTEN/NOTIFY would be the way): nothing is kept."""
        return None

    def session_changes(self, after: int | None) -> tuple[int, list[bytes] | None] | None:
        """No change log here (nothing is kept)."""
        return None

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """One transaction on a pooled connection, ``work`` running synchronously on it."""
        start = time.perf_counter()
        try:
            async with self.engine.begin() as conn:
                return await conn.run_sync(self._failures.run, work)
        finally:
            meters.DB_TRANSACTION.observe(time.perf_counter() - start)

    async def close(self) -> None:
        """Stop watching the engine's errors (the engine is disposed by its owner)."""
        self._failures.close()


class _Busy(Exception):
    """SQLite answered busy to a connection that does not wait: the statement goes where waiting is allowed."""


@dataclass(frozen=True, slots=True)
class _Together(Generic[T]):
    """Statements that stand or fall together, as one write of a group commit (:meth:`SqliteRunner.write_together`)."""

    work: Callable[[Connection], T]


_Write = Executable | DriverStatement | _Together[Any]
_Job = tuple[_Write, dict[str, Any] | None, "asyncio.Future[Any]"]


class SqliteRunner:
    """One writer thread with group commit and a few reader threads, on one SQLite file."""

    def __init__(
        self,
        url: str,
        pragmas: Callable[[Any, Any], None],
        *,
        readers: int = 4,
        checkpoint_every: float = CHECKPOINT_EVERY_S,
        writer_autocheckpoint: int = WRITER_AUTOCHECKPOINT_PAGES,
        json_codec: tuple[Callable[[Any], str], Callable[[str], Any]] | None = None,
    ) -> None:
        sync_url = url.replace("+aiosqlite", "+pysqlite", 1)
        # As every engine of the gateway (storage.database): no parameter (a digest, a key) in an error or a log.
        # JSON columns are encoded as the async engine's are (msgspec, given by runner_for): the same stored text
        # whichever engine wrote a row, and not the standard library's encoder (6 % of a create's time on the loop).
        codec = {} if json_codec is None else {"json_serializer": json_codec[0], "json_deserializer": json_codec[1]}
        self._engine: Engine = create_engine(sync_url, poolclass=NullPool, hide_parameters=True, **codec)
        self.dialect = self._engine.dialect
        """The writer's SQLAlchemy dialect: its type processors are what a :class:`DriverStatement` must match."""
        event.listen(self._engine, "connect", pragmas)
        self._failures = _FailedStatements(self._engine)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sg-sqlite-writer")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sg-sqlite-reader")
        self._local = threading.local()
        self._inline: PoolProxiedConnection | None = None
        self._inline_thread = 0
        self._inline_commits = False
        self._pending: list[_Job] = []
        self._flushing = False
        self._write_conn: Connection | None = None
        self._path = self._engine.url.database or ""
        self._version_conn: sqlite3.Connection | None = None
        self._version_generation = 0
        self._version_lock = threading.Lock()
        self._writer_autocheckpoint = writer_autocheckpoint
        self.checkpointer = WalCheckpointer(self._path, checkpoint_every)

    async def write(self, statement: Executable, params: dict[str, Any] | None = None) -> Outcome:
        """Queue the write; it commits with whatever else is queued, and this returns after that commit."""
        outcome: Outcome = await self._queue(statement, params)
        return outcome

    async def write_driver(self, statement: DriverStatement) -> Outcome:
        """As :meth:`write`, for SQL the DBAPI runs as it is (the rows are the driver's tuples)."""
        outcome: Outcome = await self._queue(statement, None)
        return outcome

    async def write_together(self, work: Callable[[Connection], T]) -> T:
        """Queue ``work``, statements on the writer's connection that must all commit or none, as one write of the
        next group commit; this returns what ``work`` returned, after that commit.

        For a write of several statements on a path that must keep group commit's speed (a create with a dialect's
        own rows): :meth:`transaction` would commit them apart from the batch, a commit (and, with ``FULL``, an
        fsync) of their own. Within the batch, ``work`` is one write as any other: a statement of it that fails
        fails ``work`` even if ``work`` caught its error, undoes whatever else ``work`` did, and fails no other
        caller (the batch runs again without it, each write then under a savepoint). So ``work`` may run more than
        once, its earlier runs undone: it must do nothing but run statements on the connection it is given.
        """
        result: T = await self._queue(_Together(work), None)
        return result

    async def _queue(self, statement: _Write, params: dict[str, Any] | None) -> Any:
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((statement, params, future))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())  # noqa: RUF006 - the futures it resolves are what callers await
        try:
            return await future
        finally:
            meters.DB_WRITE.observe(time.perf_counter() - start)

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                jobs = [(s, p) for s, p, _ in batch]
                try:
                    outcomes = await self._run_inline(jobs) if _inline_batch(jobs) else None
                    if outcomes is None:
                        outcomes = await loop.run_in_executor(self._writer, self._run_batch, jobs)
                except Exception as exc:  # noqa: BLE001 - the whole batch failed (commit): nobody is acknowledged
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._flushing = False

    def _writer_connection(self) -> Connection:
        if self._write_conn is None:
            conn = self._engine.connect()
            # Checkpoints are the checkpointer's; this connection only does one if the WAL grows far past that.
            conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(self._writer_autocheckpoint)}")
            conn.commit()
            self._write_conn = conn
            self.checkpointer.start()
        return self._write_conn

    def _run_batch(self, batch: Sequence[tuple[_Write, dict[str, Any] | None]]) -> list[object]:
        conn = self._writer_connection()
        outcomes: dict[int, object] = {}
        todo = list(range(len(batch)))
        guarded = False
        try:
            while (failed := self._attempt(conn, batch, todo, outcomes, guarded=guarded)) is not None:
                todo.remove(failed)
                guarded = True
        except BaseException:
            conn.close()  # never reuse a connection whose transaction failed; closing it rolls back what is left
            self._write_conn = None
            raise
        self.checkpointer.committed()
        return [outcomes[index] for index in range(len(batch))]

    def _attempt(
        self,
        conn: Connection,
        batch: Sequence[tuple[_Write, dict[str, Any] | None]],
        todo: list[int],
        outcomes: dict[int, object],
        *,
        guarded: bool,
    ) -> int | None:
        """Run the statements ``todo`` of ``batch`` in one transaction and commit it.

        Returns ``None`` once committed; or, having rolled the transaction back, the index of the failed statement
        to leave out of the next attempt. Unguarded, the first failure does that (SQLite may have undone the
        transaction, or kept part of the statement); guarded, each statement runs under a savepoint, and only a
        failure that undid the whole transaction does. Outcomes are those of the attempt that commits.
        """
        driver = _driver(conn)
        transaction = conn.begin()
        # Explicitly, not at the first write as sqlite3 would: a savepoint outside a transaction would begin one,
        # and its RELEASE commit it. IMMEDIATE: the write lock is taken (waited for) here, so a statement that reads
        # before it writes cannot meet a commit made since its snapshot (SQLite answers that busy, without waiting).
        driver.execute("BEGIN IMMEDIATE")
        for index in todo:
            statement, params = batch[index]
            if guarded:
                driver.execute("SAVEPOINT sg_statement")
            try:
                outcomes[index] = _run(conn, statement, params, self._failures)
            except Exception as exc:  # noqa: BLE001 - handed to the caller of that statement
                outcomes[index] = exc
                if not guarded or not driver.in_transaction:
                    transaction.rollback()  # a no-op for SQLite when it has already undone the transaction
                    return index
                driver.execute("ROLLBACK TO sg_statement")
            if guarded:
                driver.execute("RELEASE sg_statement")
        transaction.commit()
        return None

    async def _run_inline(self, batch: Sequence[tuple[_Write, dict[str, Any] | None]]) -> list[object] | None:
        """Commit ``batch``, creates only, on the event loop's own connection; ``None`` leaves it to the writer thread.

        The writer thread's commits waited for the interpreter's lock while the loop served validates: in issue 17's
        mix, a group commit of 5 ms took 47 ms, and a create's acknowledgement waited 194 ms at the median. Here
        the batch costs the loop SQLite's own work, a fraction of a millisecond a create, and waits for nothing: the
        connection never waits for a lock (``busy_timeout`` 0). Where the lock is taken (another process writing,
        or this one's writer thread in a transaction) or any statement fails, nothing is committed here and the
        batch goes to the writer thread, which waits its turn and settles failures statement by statement. Not with
        ``synchronous`` ``FULL``, whose commits wait for the disk: the loop would wait with them.
        """
        inline = await self._inline_connection()
        if inline is None or not self._inline_commits:
            return None
        return self._commit_inline(inline.driver_connection, batch)  # type: ignore[arg-type]

    def _commit_inline(
        self, driver: sqlite3.Connection, batch: Sequence[tuple[_Write, dict[str, Any] | None]]
    ) -> list[object] | None:
        try:
            driver.execute("BEGIN IMMEDIATE")
        except sqlite3.Error:
            self._close_inline()  # busy, or worse: a new connection next time, and this batch to the writer
            return None
        try:
            outcomes: list[object] = [_run_driver(driver, statement) for statement, _ in batch]  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - whichever it is, the writer thread gives it to its caller
            self._close_inline()  # closing rolls back what SQLite has not already undone
            return None
        try:
            driver.execute("COMMIT")
        except BaseException:
            self._close_inline()  # as the writer's failing COMMIT: the whole batch fails, nothing committed
            raise
        self.checkpointer.committed()
        return outcomes

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in its own transaction on the writer thread, between two group commits."""
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, self._run_work, work)
        finally:
            meters.DB_TRANSACTION.observe(time.perf_counter() - start)

    def _run_work(self, work: Callable[[Connection], T]) -> T:
        conn = self._writer_connection()
        try:
            with conn.begin():
                done = self._failures.run(conn, work)
        except BaseException:
            conn.close()  # as in _run_batch: never reuse a connection whose transaction failed
            self._write_conn = None
            raise
        self.checkpointer.committed()
        return done

    async def read(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """Run a query on a reader thread's own connection."""
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._readers, self._run_read, statement, params)
        finally:
            meters.DB_READ.observe(time.perf_counter() - start)

    def _run_read(self, statement: Executable, params: dict[str, Any] | None) -> list[Row[Any]]:
        conn = self._reader_connection()
        try:
            return list(conn.execute(statement, params).all())
        finally:
            conn.rollback()  # end the read transaction so the next read sees newer commits

    async def read_driver(self, statement: DriverStatement) -> list[tuple[Any, ...]]:
        """As :meth:`read`, for SQL the DBAPI runs as it is (the rows are the driver's tuples), on the caller's thread.

        For the lookups every validate that misses the kept rows runs (``storage.store``): one row by a unique index,
        a few pages already in memory, tens of microseconds. SQLAlchemy's execution of the query cost more than
        SQLite's own work on it, as for the create's insert; and the hop to a reader thread and back cost more than
        both: the reader waited for the interpreter's lock to hand its row back while the event loop ran Python, so
        with writes landing most lookups queued behind that handover (issue 17's mix of validates and creates: 2,000
        -> 2,900 req/s read here rather than on a reader). The connection here never waits for a lock
        (``busy_timeout`` 0): where SQLite answers busy (a database being recovered after a crash), the lookup goes
        to a reader thread, which waits as every other connection does.
        """
        inline = await self._inline_connection()
        if inline is not None:
            with contextlib.suppress(_Busy):
                return self._run_read_inline(inline, statement)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read_driver, statement)

    async def _inline_connection(self) -> PoolProxiedConnection | None:
        """The connection of the event loop's thread (lookups, and creates' commits), or ``None`` on any other."""
        if self._inline_thread not in (0, threading.get_ident()):  # one loop's thread keeps the connection
            return None
        if self._inline is not None:
            return self._inline
        # Opened on a reader, where its pragmas may wait for a lock as any connection's do.
        loop = asyncio.get_running_loop()
        return self._keep_inline(await loop.run_in_executor(self._readers, self._open_inline))

    def _open_inline(self) -> PoolProxiedConnection:
        inline = self._engine.raw_connection()  # the pragmas of every connection (file databases: any thread's)
        driver: sqlite3.Connection = inline.driver_connection  # type: ignore[assignment]
        driver.execute("PRAGMA busy_timeout=0")  # then never waits
        # As the writer's: a commit here must never copy the WAL back itself, with the whole loop waiting for it.
        driver.execute(f"PRAGMA wal_autocheckpoint={int(self._writer_autocheckpoint)}")
        self._inline_commits = driver.execute("PRAGMA synchronous").fetchone()[0] <= 1  # OFF or NORMAL: no fsync
        self.checkpointer.start()
        return inline

    def _keep_inline(self, opened: PoolProxiedConnection) -> PoolProxiedConnection:
        if self._inline is not None:  # another lookup opened one meanwhile
            opened.close()
            return self._inline
        self._inline, self._inline_thread = opened, threading.get_ident()
        return opened

    def _run_read_inline(self, inline: PoolProxiedConnection, statement: DriverStatement) -> list[tuple[Any, ...]]:
        try:
            cursor: sqlite3.Cursor = inline.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                rows: list[tuple[Any, ...]] = cursor.execute(statement.sql, statement.params).fetchall()
            finally:
                cursor.close()
        except sqlite3.Error as exc:
            self._close_inline()  # the next lookup opens a new one
            if (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_WAITS:
                raise _Busy from exc
            raise
        return rows

    def _close_inline(self) -> None:
        inline, self._inline = self._inline, None
        self._inline_thread = 0
        if inline is not None:
            with contextlib.suppress(sqlite3.Error):
                inline.close()

    def _run_read_driver(self, statement: DriverStatement) -> list[tuple[Any, ...]]:
        # The driver opens no transaction for a query: the statement reads one snapshot, released when the cursor
        # is done with it, so the next read sees newer commits.
        cursor = _driver(self._reader_connection()).cursor()
        try:
            rows: list[tuple[Any, ...]] = cursor.execute(statement.sql, statement.params).fetchall()
            return rows
        finally:
            cursor.close()

    def _reader_connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._engine.connect()
        return conn

    def data_version(self) -> DataVersion | None:
        """SQLite's ``PRAGMA data_version`` on a connection of its own that never writes, so every commit counts.

        A few microseconds, run on the caller's thread: it reads the WAL index in shared memory, no file I/O. It
        never waits for a lock (``timeout=0``); on any error it answers ``None`` and starts over with a new
        connection, whose counter starts afresh: the version pairs it with a generation that each new connection
        raises, so it never repeats one given before.
        """
        with self._version_lock:
            try:
                if self._version_conn is None:
                    self._version_conn = sqlite3.connect(
                        self._path, timeout=0, isolation_level=None, check_same_thread=False
                    )
                    self._version_generation += 1
                row = self._version_conn.execute("PRAGMA data_version").fetchone()
                return self._version_generation, int(row[0])
            except sqlite3.Error:
                self._close_version()
                return None

    def session_changes(self, after: int | None) -> tuple[int, list[bytes] | None] | None:
        """The entries of ``sg_session_change`` (migration 0010) after ``after``, on the version connection.

        Called after :meth:`data_version`, so they include every commit that version counts. One read transaction:
        the newest entry ever made (``sqlite_sequence``) and the entries after ``after``, which must follow it one by
        one up to that newest; a hole means entries were trimmed before this process read them, and then the ids are
        ``None``. A few microseconds for the handful of entries between two versions (pages in memory).
        """
        with self._version_lock:
            conn = self._version_conn
            if conn is None:
                return None
            try:
                conn.execute("BEGIN")
                try:
                    found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'sg_session_change'").fetchone()
                    newest = int(found[0]) if found else 0
                    if after is None or newest - after > MAX_CHANGES_READ:
                        return newest, None
                    rows = conn.execute(
                        "SELECT seq, session_id FROM sg_session_change WHERE seq > ? ORDER BY seq", (after,)
                    ).fetchall()
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error:
                self._close_version()  # never left inside a transaction, which would hold its counter still
                return None
        if len(rows) != newest - after or (rows and (rows[0][0] != after + 1 or rows[-1][0] != newest)):
            return newest, None
        return newest, [bytes(row[1]) for row in rows]

    def _close_version(self) -> None:
        if self._version_conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._version_conn.close()
            self._version_conn = None

    async def close(self) -> None:
        """Stop the threads and close their connections."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, self._close_writer)
        self._writer.shutdown(wait=True)
        await loop.run_in_executor(None, self.checkpointer.stop)
        self._readers.shutdown(wait=True)
        self._close_inline()
        with self._version_lock:
            self._close_version()
        self._failures.close()
        self._engine.dispose()

    def _close_writer(self) -> None:
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None


def _connection_lost(exc: BaseException) -> bool:
    """Whether asyncpg's ``exc`` says its connection is gone (closed, reset, never made), not the statement wrong."""
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | OSError | TimeoutError):
        return True
    # A backend terminated or the server shutting down (class 57): the connection goes with it.
    return str(getattr(exc, "sqlstate", None) or "")[:2] in {"08", "57"}


def _driver(conn: Connection) -> sqlite3.Connection:
    driver: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
    return driver


def _run(conn: Connection, statement: _Write, params: dict[str, Any] | None, failures: _FailedStatements) -> object:
    if isinstance(statement, DriverStatement):
        return _run_driver(_driver(conn), statement)
    if isinstance(statement, _Together):
        return failures.run(conn, statement.work)
    result = conn.execute(statement, params)
    rows = list(result.all()) if result.returns_rows else []
    return Outcome(rows=rows, rowcount=max(result.rowcount, 0))


def _inline_batch(batch: Sequence[tuple[_Write, dict[str, Any] | None]]) -> bool:
    """Whether ``batch`` may be committed on the event loop's thread: a few creates (the driver's SQL), nothing else."""
    return len(batch) <= MAX_INLINE_BATCH and all(isinstance(statement, DriverStatement) for statement, _ in batch)


def _run_driver(driver: sqlite3.Connection, statement: DriverStatement) -> Outcome:
    """Run ``statement`` on the DBAPI connection ``driver``, inside the transaction it has begun."""
    cursor = driver.cursor()
    try:
        rows = cursor.execute(statement.sql, statement.params).fetchall()
        outcome = Outcome(rows=rows, rowcount=max(cursor.rowcount, 0))
        for following in statement.then:
            cursor.execute(following.sql, following.params)
        return outcome
    finally:
        cursor.close()


class _FailedStatements:
    """Notes the first statement that fails inside :meth:`run`, so its transaction is never committed.

    SQLAlchemy's ``handle_error`` event sees every statement error on the engine's connections, including the ones
    the work then catches.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._first: dict[Connection, BaseException | None] = {}
        event.listen(engine, "handle_error", self._note)

    def run(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        """``work(conn)``; raises the first statement error of ``work`` even if ``work`` caught it.

        Raises:
            Exception: the first error of a statement of ``work``, or what ``work`` raised.
        """
        self._first[conn] = None
        try:
            done = work(conn)
            failed = self._first[conn]
        finally:
            del self._first[conn]
        if failed is not None:
            raise failed
        return done

    def close(self) -> None:
        """Stop listening to the engine."""
        if event.contains(self._engine, "handle_error", self._note):
            event.remove(self._engine, "handle_error", self._note)

    def _note(self, context: ExceptionContext) -> None:
        conn = context.connection
        if conn is not None and conn in self._first and self._first[conn] is None:
            self._first[conn] = context.sqlalchemy_exception or context.original_exception


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on a thread and connection of its own, after commits.

    A passive checkpoint copies the committed frames no reader still needs and waits for nobody; once it has copied
    everything, the writer's next transaction starts the WAL over from the beginning, so the WAL stays small. SQLite
    releases the GIL while it copies and syncs, so requests go on meanwhile. It never changes what any connection
    reads (``data_version`` stays put). Errors (another process checkpointing, say) are left for the next run.
    """

    def __init__(self, path: str, every: float) -> None:
        self._path = path
        self._every = every
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.runs = 0
        """Checkpoints run so far (for tests and curiosity)."""

    def start(self) -> None:
        """Start the thread, once."""
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._loop, name="sg-sqlite-checkpointer", daemon=True)
                self._thread.start()

    def committed(self) -> None:
        """Note that a commit added to the WAL (called by the writer, which never waits for the copy)."""
        self._dirty.set()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint of what is committed."""
        self._stopping.set()
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(self._every):
                if self._dirty.is_set():
                    self._dirty.clear()
                    self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.runs += 1


def runner_for(engine: AsyncEngine, url: str, pragmas: Callable[[Any, Any], None]) -> StatementRunner:
    """The runner suited to the database behind ``engine``."""
    if engine.dialect.name == "sqlite" and ":memory:" not in url:
        dialect: Any = engine.dialect
        return SqliteRunner(url, pragmas, json_codec=(dialect._json_serializer, dialect._json_deserializer))
    return AsyncEngineRunner(engine)
