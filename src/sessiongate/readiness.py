"""``/readyz``: whether the gateway can serve, and if not, why (the database cannot be reached, migrations pending).

The reasons name no host, database or driver message (they can say where a database is); only what an operator needs
to act: that the database is out, or which revision it is at and which one this gateway needs.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from sessiongate.storage.database import CORE, Migrations, ReadinessProbe
from sessiongate.storage.engine import Database

__all__ = ("NotReady", "Readiness", "ReadinessCheck")

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

    def __init__(self, engine: Database, migrations: Migrations = CORE) -> None:
        self.probe = ReadinessProbe(engine, migrations)

    async def __call__(self) -> Readiness:
        """The gateway's readiness now."""
        current = await self.probe.current()
        if current is None:
            return _unavailable(NotReady(check="database", message="the database cannot be reached"))
        heads, known = self.probe.expected()
        if current == heads or not current <= known:
            return Readiness(status="ok")
        said = ", ".join(sorted(current)) or "no schema"
        message = f"migrations pending: the database is at {said}, this gateway needs {', '.join(sorted(heads))}"
        reason = NotReady(
            check="migrations", message=f"{message}; {UPGRADE_HINT}", current=sorted(current), head=sorted(heads)
        )
        return _unavailable(reason)


def _unavailable(reason: NotReady) -> Readiness:
    return Readiness(status="unavailable", reasons=[reason])
