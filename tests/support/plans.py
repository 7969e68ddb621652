"""Query plans, on SQLite or PostgreSQL, for tests that prove a statement reads an index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable

from sessiongate.runtime import Services


async def explain(services: Services, sql: str, parameters: Any) -> str:
    """The plan of driver-level ``sql``, one line.

    On PostgreSQL, with the tables analyzed first and sequential scans and sorts discouraged: a test database is
    reused (emptied) from test to test, and on tables this small the planner's choice followed the statistics an
    earlier test had left, sorting a handful of rows rather than reading them in an index's order. Discouraged, a
    sort is still planned when no index gives the order asked: what these tests prove is that one does.
    """
    async with services.engine.connect() as conn:
        if services.engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
            return " | ".join(str(r[-1]) for r in rows)
        await conn.exec_driver_sql("ANALYZE")
        for setting in ("enable_seqscan", "enable_sort", "enable_incremental_sort"):
            await conn.exec_driver_sql(f"SET {setting} = off")
        rows = await conn.exec_driver_sql(f"EXPLAIN {sql}", parameters)
        return " | ".join(str(r[0]) for r in rows)


async def explain_statement(services: Services, statement: Executable) -> str:
    """The plan of a SQLAlchemy ``statement``, compiled for the engine with its parameters bound."""
    compiled = statement.compile(dialect=services.engine.dialect)  # type: ignore[attr-defined]
    parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return await explain(services, str(compiled), parameters)
