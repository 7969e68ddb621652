"""``create_app``: settings in, a Litestar app with the core and the enabled dialects out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin

from sessiongate import __version__
from sessiongate.dialects import registry
from sessiongate.dialects.base import DialectPlugin
from sessiongate.docs import DocEntry, docs_router
from sessiongate.errors import ErrorDispatcher
from sessiongate.gate.plugin import gateway_plugins
from sessiongate.identity.service import IdentityService
from sessiongate.observability import (
    RequestMetrics,
    RequestObserver,
    configure_logging,
    keep_counting_live_sessions,
    metrics_handler,
    metrics_registry,
)
from sessiongate.readiness import Readiness, ReadinessCheck
from sessiongate.runtime import Services, engine_config, open_services
from sessiongate.sessions.audit import AuditLog
from sessiongate.sessions.service import Clock, SessionService, utc_now
from sessiongate.settings import Settings
from sessiongate.storage.refresh_store import SqlRefreshStore
from sessiongate.tokens.keys import say_if_kept_in_clear

__all__ = ("create_app",)

log = logging.getLogger("sessiongate")


def create_app(
    settings: Settings | None = None, *, clock: Clock = utc_now, announce: bool = True, freeze_heap: bool = False
) -> Litestar:
    """Build the gateway.

    Args:
        settings: What to build; read from the environment when not given (the only place that reads it).
        clock: The service's clock; tests pass a controllable one.
        announce: Log at start what the operator should know about the deployment (keys kept in clear).
            ``sessiongate serve`` says it itself, once, before its workers start.
        freeze_heap: While serving, keep what start-up built out of the cyclic collector's scans
            (:func:`_startup_objects_frozen`): for a process that serves this one app, as ``sessiongate serve``'s
            workers do, not for one that builds app after app.

    Raises:
        ImproperlyConfiguredException: an unknown dialect, bad dialect options, or two dialects on one route.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    dialects = registry.load(settings.dialects, settings.dialect_options)
    registry.check_no_route_clash(dialects)
    migrations = registry.migrations(dialects)  # the core's and each enabled dialect's own branch
    db = engine_config(settings)  # its PostgreSQL pool as the settings size it

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_services(settings, clock=clock, db=db, migrations=migrations) as services:
            if announce:
                say_if_kept_in_clear(settings, services.kept_in_clear)
            app.state.services = services
            app.state.sessions = services.sessions
            services.sessions.caps = {d.name: cap for d in dialects if (cap := d.options.session_cap()) is not None}
            if settings.admin_login and settings.admin_password:
                await services.identity.add_principal_if_absent(
                    login=settings.admin_login,
                    password=settings.admin_password,
                    email=settings.admin_email,
                    roles=("admin",),
                )
            sweeper = asyncio.create_task(_sweep(services, settings, dialects)) if settings.sweep_interval > 0 else None
            names = [d.name for d in dialects]
            counting = asyncio.create_task(keep_counting_live_sessions(services, names, settings.metrics_interval))
            log.info(
                "started", extra={"dialects": [d.name for d in dialects], "database": services.engine.dialect.name}
            )
            try:
                with _startup_objects_frozen() if freeze_heap else contextlib.nullcontext():
                    yield
            finally:
                for task in (sweeper, counting):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task

    @get("/healthz", include_in_schema=True, tags=["operations"], sync_to_thread=False)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    readiness = ReadinessCheck(db.get_engine(), migrations)

    @get(
        "/readyz",
        tags=["operations"],
        responses={503: ResponseSpec(data_container=Readiness, description="Not ready: the reasons why")},
    )
    async def readyz() -> Response[Readiness]:
        """The database answers and has every migration this gateway needs; if not (503), the reasons why."""
        answer = await readiness()
        return Response(answer, status_code=200 if answer.status == "ok" else 503)

    docs = [
        DocEntry(name=d.name, title=d.title, spec_path=d.spec_path(settings.spec_dir), prefix=d.options.prefix)
        for d in dialects
    ]
    gate = gateway_plugins(settings.gateway, dialects)
    docs += [g.doc_entry(settings.spec_dir) for g in gate]
    # /metrics is served here unless it has a port of its own (served by ``sessiongate serve`` itself).
    scrape = [metrics_handler(metrics_registry(), settings.metrics_token)] if settings.metrics_port is None else []
    app = Litestar(
        route_handlers=[healthz, readyz, docs_router(docs), *scrape],
        plugins=[SQLAlchemyPlugin(config=db), *dialects, *gate],
        lifespan=[lifespan],
        # settings -> services -> sessions -> identity -> dialect -> the dialect's own (DEPENDENCY_CHAIN below).
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
            "services": Provide(_services, sync_to_thread=False),
            "sessions": Provide(_sessions, sync_to_thread=False),
            "identity": Provide(_identity, sync_to_thread=False),
        },
        exception_handlers={Exception: ErrorDispatcher(dialects, retry_after=settings.unavailable_retry_after)},
        middleware=[RequestMetrics],
        logging_config=None,  # configure_logging's: Litestar's own would replace its handler with a plain-text one
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="sessiongate (gateway routes)",
            version=__version__,
            path="/schema",
            render_plugins=[_local_swagger()],
        ),
        state=State({"settings": settings, "dialects": {d.name: d for d in dialects}}),
    )
    app.asgi_handler = RequestObserver(
        app.asgi_handler,
        access_log=settings.access_log,
        settings=settings,
    )
    return app


# DEPENDENCY_CHAIN: each of the gateway's dependencies takes the one before it, even where it does not use it.
# Litestar resolves dependencies that do not depend on each other concurrently, in an anyio task group per request
# (litestar#4563); for these lookups, with nothing to overlap, that task group was a fifth of a validate's time.
# Chained, each is resolved alone and in order; the dialects' own dependencies follow ``dialect``.
# tests/unit/test_dependency_chain.py keeps every route that way.


def _services(request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Services:
    # Through the request, which exists anyway: a ``state: State`` parameter built a State (and its lock) per request.
    del settings  # a link of the chain (DEPENDENCY_CHAIN)
    services: Services = request.app.state.services
    return services


def _sessions(services: NamedDependency[Services]) -> SessionService:
    return services.sessions


def _identity(services: NamedDependency[Services], sessions: NamedDependency[SessionService]) -> IdentityService:
    del sessions  # a link of the chain (DEPENDENCY_CHAIN)
    return services.identity


def _local_swagger() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        js_url="/docs/static/swagger-ui-bundle.js",
        css_url="/docs/static/swagger-ui.css",
        standalone_preset_js_url="/docs/static/swagger-ui-standalone-preset.js",
        favicon='<link rel="icon" href="/docs/static/favicon.svg">',
    )


@contextlib.contextmanager
def _startup_objects_frozen() -> Iterator[None]:
    """Keep what imports and start-up built out of the cyclic collector's scans while serving.

    That is about 140 000 objects which live as long as the app. Under load the collector's full pass came about
    every second (requests in flight get promoted to its oldest generation) and scanned them all with the GIL
    held: 70-100 ms on a slow core, which was the whole of the creates' p99. Frozen, a full pass scans only what
    was made since. The young generations are collected first, which is where start-up's garbage is, so little
    is frozen; not the full pass itself, which cost 0.3 s at every start of a process that had built and thawed
    apps before (the tests build a thousand). Thawed at shutdown.

    Only for a process that serves one app (``freeze_heap``, which ``sessiongate serve`` sets). One that builds app
    after app (a test worker) froze the garbage of each app it was done with into the next one's permanent
    generation before any full pass could free it: a full run's test worker grew past 2 GB, and its collector, once
    it did scan that heap, stopped it for up to 21 s.
    """
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _sweep(services: Services, settings: Settings, dialects: Sequence[DialectPlugin]) -> None:
    """Every ``sweep_interval``, delete what has run out, a batch at a time so no statement holds the writer long."""
    refresh = SqlRefreshStore(services.runner)
    audit, retention = AuditLog(services.runner, services.clock), timedelta(days=settings.gateway.audit_retention_days)
    sweeps: list[Callable[[], Awaitable[int]]] = [
        lambda: services.sessions.sweep_expired(batch=settings.sweep_batch),
        lambda: refresh.delete_expired(now=services.clock(), batch=settings.sweep_batch),
        lambda: services.identity.sweep_failures(batch=settings.sweep_batch),
        lambda: audit.sweep(retention=retention, batch=settings.sweep_batch),
        *(step for dialect in dialects for step in dialect.sweeps(services, settings.sweep_batch)),
    ]
    while True:
        await asyncio.sleep(settings.sweep_interval)
        for sweep in sweeps:
            try:
                while await sweep() == settings.sweep_batch:
                    await asyncio.sleep(0)
            except Exception:
                log.warning("sweep failed", exc_info=True)


def enabled_names(app: Litestar) -> Sequence[str]:
    """The dialects an app was built with."""
    dialects: dict[str, Any] = app.state.dialects
    return list(dialects)
