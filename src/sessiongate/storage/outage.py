"""Which failures mean "the database cannot be reached or used just now", as opposed to a fault in a statement.

Those are answered 503 with ``Retry-After`` (``sessiongate.errors``): the request was fine and may be retried, and
nothing has to be restarted, because every connection that failed is replaced on its next use (SQLAlchemy's pool
with ``pool_pre_ping`` on PostgreSQL; the SQLite runner reopens its writer after a failed batch and opens a reader's
connection on first use). Everything else stays a 500.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its exception classes are used
from sqlalchemy import exc as sa

__all__ = ("is_outage",)

# SQLite's primary result codes for a database that is busy, locked, unreadable, unwritable, missing or damaged
# (https://sqlite.org/rescode.html): PERM, BUSY, LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL,
# NOTADB. SQLITE_ERROR (1), a statement's own fault, is not among them.
_SQLITE_OUTAGES = frozenset({3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 26})
# PostgreSQL's SQLSTATE classes for a connection lost or refused, resources exhausted, an operator's intervention
# (shutdown, a terminated backend, "cannot connect now") and system errors.
_SQLSTATE_OUTAGES = ("08", "53", "57", "58")
_NETWORK_ERRNOS = frozenset({errno.ENETDOWN, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ETIMEDOUT})


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database is unavailable rather than the statement wrong."""
    for cause in _causes(exc):
        if isinstance(cause, sa.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, sa.DisconnectionError | sa.TimeoutError):  # a dead connection; the pool ran dry
            return True
        if isinstance(cause, sqlite3.Error) and (getattr(cause, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_OUTAGES:
            return True
        if isinstance(cause, asyncpg.PostgresConnectionError | asyncpg.InterfaceError):
            return True
        if str(getattr(cause, "sqlstate", None) or "")[:2] in _SQLSTATE_OUTAGES:
            return True
        if isinstance(cause, asyncpg.PostgresError) and not isinstance(exc, sa.DBAPIError):
            # SQLAlchemy wraps every error of a statement; one it did not wrap came from connecting (a database
            # that was dropped, or does not accept connections now).
            return True
        if _network_failure(cause):
            return True
    return False


def _network_failure(exc: BaseException) -> bool:
    """The database's host refused, reset, timed out, could not be resolved or reached (not a file error)."""
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
        return True
    # asyncio reports several refused addresses (::1 and 127.0.0.1) as one OSError without an errno.
    return type(exc) is OSError and (exc.errno is None or exc.errno in _NETWORK_ERRNOS)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error SQLAlchemy wraps in it, and their causes, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
