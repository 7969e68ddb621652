"""A Core query compiled once and run on the driver's own connection: the lookups on the request path.

SQLAlchemy's execution of a query (building it, its cache key, the execution context, the cursor adapter) costs more
than the database's own work on a lookup by a unique index, and on SQLite the hop to a reader thread and back costs
more than both (issue 17). A :class:`DriverQuery` is the same SQL SQLAlchemy would send, its parameters and rows
converted by the type processors SQLAlchemy itself applies for that database (or their equals,
:mod:`sessiongate.storage.processors`), so a row comes back as the Core query returns it (tests compare the two on
both databases).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import Select
from sqlalchemy.dialects import sqlite

from sessiongate.storage.processors import bind_processor, result_processor
from sessiongate.storage.runner import AsyncEngineRunner, DriverStatement, SqliteRunner, StatementRunner

__all__ = ("DriverQuery", "RenderedPerCall", "driver_query", "lookup")

_Convert = Callable[[Any], Any] | None


_MADE: weakref.WeakKeyDictionary[object, dict[Select[Any], DriverQuery | None]] = weakref.WeakKeyDictionary()
KEPT_PER_RUNNER = 256
"""Queries kept compiled per runner. They are module constants, a few dozen in all; a caller that builds a new query
for every call (what the SDK's ``lookup`` asks dialects not to do) gets it compiled each time, never a growing memo."""


def driver_query(query: Select[Any], runner: StatementRunner) -> DriverQuery | None:
    """``query`` ready for ``runner``'s driver, or ``None`` where the runner has no driver path (aiosqlite through an
    engine: the query runs through SQLAlchemy there).

    Compiled once per runner: a store made for each request (the gate's token stores are) asks again every time.
    """
    made = _MADE.setdefault(runner, {})
    if query in made:
        return made[query]
    compiled: DriverQuery | None = None
    try:
        if isinstance(runner, SqliteRunner):
            compiled = DriverQuery(query, runner)
        elif isinstance(runner, AsyncEngineRunner) and runner.engine.dialect.name == "postgresql":
            compiled = DriverQuery(query, runner)  # every PostgreSQL URL runs on asyncpg (storage.urls)
    except RenderedPerCall:
        compiled = None
    if len(made) < KEPT_PER_RUNNER:
        made[query] = compiled
    return compiled


async def lookup(query: Select[Any], runner: StatementRunner, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rows of ``query`` (named bind parameters, which ``params`` give), each a dict by column key: on the driver
    where ``runner`` has that path, else through SQLAlchemy (:meth:`StatementRunner.read`), alike."""
    compiled = driver_query(query, runner)
    if compiled is None:
        return [dict(row._mapping) for row in await runner.read(query, dict(params))]
    names = compiled.names
    return [dict(zip(names, row, strict=True)) for row in await compiled.rows(runner, params)]


class RenderedPerCall(Exception):
    """The query's SQL depends on its parameters (an expanding ``IN``, a parameter rendered into the text): it cannot
    be compiled once, and runs through SQLAlchemy."""


class DriverQuery:
    """One ``SELECT`` with named parameters, compiled for ``runner``'s database: SQLite's ``:name``, asyncpg's ``$1``
    (its parameters passed in the order the SQL numbers them)."""

    __slots__ = ("_binds", "_defaults", "_order", "_results", "_sql", "names")

    def __init__(self, query: Select[Any], runner: SqliteRunner | AsyncEngineRunner) -> None:
        if isinstance(runner, SqliteRunner):
            dialect = runner.dialect
            compiled = query.compile(dialect=sqlite.dialect(paramstyle="named"))
        else:
            dialect = runner.engine.dialect
            compiled = query.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise RenderedPerCall(str(query))
        self._sql = str(compiled)
        self._defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
        """The values the query holds itself (``== "x"``, ``.limit(1)``), used where ``params`` do not name them."""
        self._order: tuple[str, ...] = tuple(compiled.positiontup or compiled.binds)
        self._binds: dict[str, _Convert] = {
            name: bind_processor(bind.type, dialect) for name, bind in compiled.binds.items()
        }
        columns = list(query.selected_columns)
        self.names: tuple[str, ...] = tuple(str(c.key) for c in columns)
        """The selected columns' keys, in the order a row holds them."""
        self._results: list[_Convert] = [result_processor(c.type, dialect) for c in columns]

    async def rows(self, runner: StatementRunner, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows ``params`` select, read by ``runner`` (the runner it was made for, or what stands for it)."""
        bound: dict[str, Any] = {}
        for name in self._order:
            value = params[name] if name in params or name not in self._defaults else self._defaults[name]
            bind = self._binds[name]
            bound[name] = value if bind is None else bind(value)
        found = await cast("SqliteRunner", runner).read_driver(DriverStatement(self._sql, bound))
        results = self._results
        return [
            tuple(value if result is None else result(value) for value, result in zip(row, results, strict=True))
            for row in found
        ]
