"""What the metrics read from the database: counts the gauges show, each one statement through the runner."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select

from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.tables import SessionRecord

__all__ = ("live_sessions_by_dialect",)

_S = cast("Table", SessionRecord.__table__)
_LIVE_BY_DIALECT = (
    select(_S.c.dialect, func.count())
    .where(_S.c.revoked_at.is_(None), _S.c.expires_at > bindparam("now"))
    .group_by(_S.c.dialect)
)


async def live_sessions_by_dialect(runner: StatementRunner, *, now: datetime) -> dict[str, int]:
    """How many sessions of each dialect are neither revoked nor expired at ``now`` (a dialect without one is
    absent): one grouped count."""
    return {row[0]: int(row[1]) for row in await runner.read(_LIVE_BY_DIALECT, {"now": now})}
