"""``create_app``: settings in, a Litestar app with the core and the enabled dialects out."""

from __future__ import annotations

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from sessiongate import __version__
from sessiongate.dialects import registry
from sessiongate.dialects.responses import Response
from sessiongate.docs import DocEntry, docs_router
from sessiongate.errors import ErrorDispatcher
from sessiongate.gate.plugin import gateway_plugins
from sessiongate.health import health_routes
from sessiongate.lifespan import lifespan_of
from sessiongate.observability import (
    RequestObserver,
    configure_logging,
    metrics_handler,
    metrics_registry,
)
from sessiongate.readiness import ReadinessCheck
from sessiongate.runtime import engine_config
from sessiongate.sessions.service import Clock, utc_now
from sessiongate.settings import Settings

__all__ = ("create_app",)


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
            (:func:`sessiongate.heap.startup_objects_frozen`): for a process that serves this one app, as
            ``sessiongate serve``'s workers do, not for one that builds app after app.

    Raises:
        ImproperlyConfiguredException: an unknown dialect, bad dialect options, or two dialects on one route.
    """
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    dialects = registry.load(settings.dialects, settings.dialect_options)
    registry.check_no_route_clash(dialects)
    migrations = registry.migrations(dialects)  # the core's and each enabled dialect's own branch
    db = engine_config(settings)  # its PostgreSQL pool as the settings size it

    lifespan = lifespan_of(
        settings, dialects, clock=clock, db=db, migrations=migrations, announce=announce, freeze_heap=freeze_heap
    )
    readiness = ReadinessCheck(db.get_engine(), migrations)
    docs = [
        DocEntry(name=d.name, title=d.title, spec_path=d.spec_path(settings.spec_dir), prefix=d.options.prefix)
        for d in dialects
    ]
    gate = gateway_plugins(settings.gateway, dialects)
    docs += [g.doc_entry(settings.spec_dir) for g in gate]
    # /metrics is served here unless it has a port of its own (served by ``sessiongate serve`` itself).
    scrape = [metrics_handler(metrics_registry(), settings.metrics_token)] if settings.metrics_port is None else []
    app = Litestar(
        route_handlers=[*health_routes(readiness), docs_router(docs), *scrape],
        # Not advanced-alchemy's Litestar plugin: the engine is the lifespan's (opened, migrated and disposed there),
        # and no handler takes a request-scoped SQLAlchemy session, whose commit hook the plugin would run on every
        # message the app sends.
        plugins=[*dialects, *gate],
        lifespan=[lifespan],
        exception_handlers={Exception: ErrorDispatcher(dialects, retry_after=settings.unavailable_retry_after)},
        # No middleware: Litestar would wrap every route in a second exception handler (RequestObserver counts).
        response_class=Response,  # a handler's data answered by the short path (sessiongate.dialects.responses)
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
        router=app.asgi_router,
        access_log=settings.access_log,
        settings=settings,
    )
    return app


def _local_swagger() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        js_url="/docs/static/swagger-ui-bundle.js",
        css_url="/docs/static/swagger-ui.css",
        standalone_preset_js_url="/docs/static/swagger-ui-standalone-preset.js",
        favicon='<link rel="icon" href="/docs/static/favicon.svg">',
    )
