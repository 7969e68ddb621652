"""Query plans, on SQLite or PostgreSQL, for tests that prove a statement reads an index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Executable

from sessiongate.runtime import Services


async def explain(services: Services, sql: str, parameters: Any) -> str:
    """The plan of driver-level ``sql`` (seq scans discouraged on PostgreSQL's small test tables), one line."""
    async with services.engine.connect() as conn:
        if services.engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
            return " | ".join(str(r[-1]) for r in rows)
        await conn.exec_driver_sql("SET enable_seqscan = off")
        rows = await conn.exec_driver_sql(f"EXPLAIN {sql}", parameters)
        return " | ".join(str(r[0]) for r in rows)


async def explain_statement(services: Services, statement: Executable) -> str:
    """The plan of a SQLAlchemy ``statement``, compiled for the engine with its parameters bound."""
    compiled = statement.compile(dialect=services.engine.dialect)  # type: ignore[attr-defined]
    parameters = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return await explain(services, str(compiled), parameters)
