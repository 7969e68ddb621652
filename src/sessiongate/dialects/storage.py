"""``ctx.storage``: a dialect's door to the tables of its own (those its migration branch makes).

A dialect's reads and writes go where the gateway's own go, through the statement runner (``storage.runner``): on
SQLite a write joins the writer thread's group commit and a read runs on a reader thread, so no dialect opens a
connection of its own beside the one writer SQLite allows (its ``database is locked`` waits were what the runner put an
end to); on PostgreSQL each is one statement in autocommit, one round trip. Rows that belong to a session are written
with it instead, in its transaction: ``SessionService.create(..., also_write=...)`` and ``revoke(..., also_write=...)``.

The statements are SQLAlchemy Core on the dialect's own tables (``memo_…``, never the core's ``sg_…``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sessiongate.storage.driver_query import lookup
from sessiongate.storage.runner import Outcome, Query, ResultRow, Statement, StatementRunner

__all__ = ("DialectStorage",)


class DialectStorage:
    """Reads and plain writes of a dialect's own tables, each its own short transaction, through the runner.

    Args:
        runner: The process's statement runner (``services.runner``).
    """

    __slots__ = ("_runner",)

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

    async def read(self, statement: Statement) -> list[ResultRow]:
        """The rows of a query, read from one snapshot: every write acknowledged before it is seen."""
        return await self._runner.read(statement)

    async def lookup(self, query: Query, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows of ``query`` as :meth:`read` returns them, each a dict by column key, for the reads a dialect makes
        on every request (a row by a unique key).

        ``query`` is built once, a module's constant, with named ``bindparam``s that ``params`` give. It is compiled
        once per process and run on the driver's own connection, without SQLAlchemy's execution around it: on SQLite
        on the event loop's connection rather than a reader thread, on PostgreSQL on a pooled asyncpg connection (the
        gateway's own lookups run so: the hop to a reader thread and back cost more than the read). A query built
        anew for each call is compiled each time: correct, and slower than :meth:`read`.
        """
        return await lookup(query, self._runner, params)

    async def write(self, statement: Statement) -> Outcome:
        """Run a changing statement and commit it before returning: its rows (``RETURNING``) and how many rows it
        changed. A failure changes nothing, and reaches the caller as any statement's does (an outage is a 503)."""
        outcome = await self._runner.write(statement)
        if outcome.rows and not outcome.rowcount:
            # SQLite counts a statement's changes only once its rows are stepped through, after SQLAlchemy has read
            # the count: with RETURNING it says 0. Each row returned is a row changed, on either database.
            return Outcome(rows=outcome.rows, rowcount=len(outcome.rows))
        return outcome
