"""The app's life: its services opened, its dialects bound to them, its background tasks run, all closed at the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager

from litestar import Litestar

from sessiongate.dialects.base import DialectPlugin
from sessiongate.heap import startup_objects_frozen
from sessiongate.observability import keep_counting_live_sessions
from sessiongate.runtime import Services, open_services
from sessiongate.sessions.service import Clock
from sessiongate.settings import Settings
from sessiongate.storage.database import Migrations
from sessiongate.storage.engine import DatabaseConfig
from sessiongate.sweeper import sweep_forever
from sessiongate.tokens.keys import say_if_kept_in_clear

__all__ = ("lifespan_of",)

log = logging.getLogger("sessiongate")


def lifespan_of(
    settings: Settings,
    dialects: Sequence[DialectPlugin],
    *,
    clock: Clock,
    db: DatabaseConfig,
    migrations: Migrations,
    announce: bool,
    freeze_heap: bool,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The app's lifespan (``create_app`` says what its arguments mean)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings, clock=clock, db=db, migrations=migrations) as services:
            if announce:
                say_if_kept_in_clear(settings, services.kept_in_clear)
            app.state.services = services
            services.sessions.caps = {d.name: cap for d in dialects if (cap := d.options.session_cap()) is not None}
            for dialect in dialects:
                dialect.bind(services)
            await _add_admin(services, settings)
            sweeper = (
                asyncio.create_task(sweep_forever(services, settings, dialects))
                if settings.sweep_interval > 0
                else None
            )
            counting = asyncio.create_task(
                keep_counting_live_sessions(services, [d.name for d in dialects], settings.metrics_interval)
            )
            log.info(
                "started", extra={"dialects": [d.name for d in dialects], "database": services.engine.dialect.name}
            )
            try:
                with startup_objects_frozen() if freeze_heap else contextlib.nullcontext():
                    yield
            finally:
                for task in (sweeper, counting):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                for dialect in dialects:
                    dialect.unbind()

    return lifespan


async def _add_admin(services: Services, settings: Settings) -> None:
    """The administrator the settings name (``SESSIONGATE_ADMIN_LOGIN``), made at the first start."""
    if settings.admin_login and settings.admin_password:
        await services.identity.add_principal_if_absent(
            login=settings.admin_login,
            password=settings.admin_password,
            email=settings.admin_email,
            roles=("admin",),
        )
