"""``ctx.storage``: a dialect's door to the tables of its own (those its migration branch makes).

A dialect's reads and writes go where the gateway's own go, through the statement runner (``storage.runner``): on
SQLite a write joins the writer thread's group commit and a read runs on a reader thread, so no dialect opens a
connection of its own beside the one writer SQLite allows (its ``database is locked`` waits were what the runner put an
end to); on PostgreSQL each is one statement in autocommit, one round trip. Rows that belong to a session are written
with it instead, in its transaction: ``SessionService.create(..., also_write=...)`` and ``revoke(..., also_write=...)``.

The statements are SQLAlchemy Core on the dialect's own tables (``memo_…``, never the core's ``sg_…``).
"""

from __future__ import annotations

from sessiongate.storage.runner import Outcome, ResultRow, Statement, StatementRunner

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

    async def write(self, statement: Statement) -> Outcome:
        """Run a changing statement and commit it before returning: its rows (``RETURNING``) and how many rows it
        changed. A failure changes nothing, and reaches the caller as any statement's does (an outage is a 503)."""
        outcome = await self._runner.write(statement)
        if outcome.rows and not outcome.rowcount:
            # SQLite counts a statement's changes only once its rows are stepped through, after SQLAlchemy has read
            # the count: with RETURNING it says 0. Each row returned is a row changed, on either database.
            return Outcome(rows=outcome.rows, rowcount=len(outcome.rows))
        return outcome
