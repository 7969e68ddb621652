"""The sweeper: what has run out is deleted in the background, a batch at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sessiongate.dialects.base import DialectPlugin
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog
from sessiongate.settings import Settings

__all__ = ("sweep_forever",)

log = logging.getLogger("sessiongate")


async def sweep_forever(services: Services, settings: Settings, dialects: Sequence[DialectPlugin]) -> None:
    """Every ``sweep_interval``, delete what has run out: expired sessions and refresh tokens, login failures past
    their window, audit events past their retention, and what each dialect sweeps of its own. A batch at a time, so
    no statement holds the writer long; a sweep that fails is logged and tried again at the next interval."""
    sessions = services.sessions
    audit, retention = AuditLog(services.runner, services.clock), timedelta(days=settings.gateway.audit_retention_days)
    batch = settings.sweep_batch
    sweeps: list[Callable[[], Awaitable[int]]] = [
        lambda: sessions.sweep_expired(batch=batch),
        lambda: sessions.sweep_expired_refresh_tokens(batch=batch),
        lambda: services.identity.sweep_failures(batch=batch),
        lambda: audit.sweep(retention=retention, batch=batch),
        *(step for dialect in dialects for step in dialect.sweeps(services, batch)),
    ]
    while True:
        await asyncio.sleep(settings.sweep_interval)
        for sweep in sweeps:
            try:
                while await sweep() == batch:
                    await asyncio.sleep(0)
            except Exception:
                log.warning("sweep failed", exc_info=True)
