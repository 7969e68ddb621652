"""``/readyz``: whether the gateway can serve, and if not, why (the database cannot be reached, migrations pending).

The reasons name no host, database or driver message (they can say where a database is); only what an operator needs
to act: that the database is out, or which revision it is at and which one this gateway needs.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from sessiongate.storage.database import CORE, Migrations, is_ready, revisions

__all__ = ("NotReady", "Readiness", "ReadinessCheck")

VERSION_TABLE = "sg_alembic_version"
"""Where the gateway's migrations note the database's revision (``storage/migrations/env.py``)."""
UPGRADE_HINT = "run `sessiongate db upgrade` (or set SESSIONGATE_AUTO_MIGRATE=true)"


class NotReady(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One reason the gateway is not ready."""

    check: Literal["database", "migrations"]
    """What is not ready."""
    message: str
    """What is wrong, and what to do about it."""
    current: list[str] | None = None
    """Migrations: the revisions the database is at (none: it has no schema)."""
    head: list[str] | None = None
    """Migrations: the revisions this gateway needs."""


class Readiness(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of ``/readyz``: ``{"status": "ok"}``, or ``"unavailable"`` and the reasons."""

    status: Literal["ok", "unavailable"]
    reasons: list[NotReady] = msgspec.field(default_factory=list)


class ReadinessCheck:
    """Checks the database answers and carries every migration this gateway has: the core's and its enabled
    dialects' (``migrations``). A database at a revision this gateway does not know, migrated by a newer version
    during a rolling upgrade, is not held against it; nor are the revisions of dialects it does not enable."""

    def __init__(self, engine: AsyncEngine, migrations: Migrations = CORE) -> None:
        self.engine = engine
        self.migrations = migrations
        self._script: tuple[frozenset[str], frozenset[str]] | None = None

    async def __call__(self) -> Readiness:
        """The gateway's readiness now."""
        if not await is_ready(self.engine):
            return _unavailable(NotReady(check="database", message="the database cannot be reached"))
        try:
            async with self.engine.connect() as conn:
                rows = await conn.run_sync(_current_heads)
            current = frozenset(rev for rev in rows if self.migrations.holds(rev))
        except Exception:  # noqa: BLE001 - the database went away between the two checks, which is the answer
            return _unavailable(NotReady(check="database", message="the database cannot be reached"))
        heads, known = self._revisions()
        if current == heads or not current <= known:
            return Readiness(status="ok")
        said = ", ".join(sorted(current)) or "no schema"
        message = f"migrations pending: the database is at {said}, this gateway needs {', '.join(sorted(heads))}"
        reason = NotReady(
            check="migrations", message=f"{message}; {UPGRADE_HINT}", current=sorted(current), head=sorted(heads)
        )
        return _unavailable(reason)

    def _revisions(self) -> tuple[frozenset[str], frozenset[str]]:
        if self._script is None:
            self._script = revisions(self.migrations)
        return self._script


def _current_heads(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_heads()


def _unavailable(reason: NotReady) -> Readiness:
    return Readiness(status="unavailable", reasons=[reason])
