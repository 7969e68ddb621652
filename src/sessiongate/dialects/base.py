"""``DialectPlugin``: everything a dialect would otherwise write five times, written once.

A dialect subclass gives its name, title, controllers, options and ``render_error``. The base mounts the
controllers (under the optional prefix), adds explicit ``OPTIONS`` handlers with a complete ``Allow`` header
(Litestar 2 lists only the first handler's method, litestar issue #4169), injects the plugin and its options,
and registers the dialect's paths so that every error on them, including
routing-level 404/405, is rendered in the dialect's own shape (see ``sessiongate.errors``).

A dialect that administers something of its own (portos's devices) adds it to the gateway's admin API
(``admin_controllers``, mounted by ``sessiongate.gate`` behind its guard) and to the command line (``commands``, groups
``sessiongate`` finds when they are named); both exist only while the dialect is enabled.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, cast, get_args, get_origin
from urllib.parse import SplitResult

import click
from litestar import Request, Router, route
from litestar import Response as LitestarResponse
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.enums import HttpMethod
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.plugins import InitPlugin
from litestar.routes import HTTPRoute

from sessiongate.addresses import client_address, forwarded_client
from sessiongate.core.errors import GatewayError, RateLimited
from sessiongate.core.models import ExpiryPolicy, Session
from sessiongate.dialects.context import DialectContext
from sessiongate.dialects.options import DialectOptions, OptionsT_co
from sessiongate.dialects.responses import Response

if TYPE_CHECKING:
    from pathlib import Path

    from litestar.config.app import AppConfig
    from litestar.controller import Controller
    from litestar.types import Message, Scope

    from sessiongate.runtime import Services

__all__ = (
    "DialectOptions",
    "DialectPlugin",
    "bearer_token",
    "client_address",
    "forwarded_client",
    "is_secure_request",
    "no_store",
    "request_host_name",
    "within_create_budget",
)

_NO_STORE = (b"cache-control", b"no-store")


class DialectPlugin(InitPlugin, Generic[OptionsT_co]):
    """Base of every dialect, generic in its options: ``class ZelfDialect(DialectPlugin[ZelfOptions])`` types
    ``self.options`` as ``ZelfOptions`` and makes ``ZelfOptions`` the Struct its settings are read into. Subclasses
    set the class attributes and implement ``expiry_policy`` and ``render_error``; a class that misses one cannot be
    made, so a dialect is refused when the app starts.

    Attributes:
        name: The slug: entry-point name, spec file stem, settings key, contracts folder, test file name.
        title: ``info.title`` of the dialect's hand-written spec.
        controllers: The dialect's route handlers and controllers.
        Options: The dialect's options Struct: the type argument of ``DialectPlugin[...]``.
        migrations: The folder of the dialect's own Alembic branch, for the tables it owns (``None``: it owns none).
            Its revision ids start with the dialect's name and ``_`` (``acme_0001``); its first revision has
            ``down_revision = None``, ``branch_labels = ("acme",)`` and ``needs_core``, the core revision it needs
            (``storage.database.Migrations``). Enabling the dialect applies them (with the core's, at start when
            auto-migrating, and by ``sessiongate db upgrade``), and readiness waits for them; disabling it leaves its
            tables alone.
        admin_controllers: Routes the dialect adds to the gateway's admin API (``{gateway prefix}/admin/…``): the
            gateway mounts them behind its admin-token guard, answers their failures in problem details (not in the
            dialect's own error body) and marks them ``no-store``; they are given ``ctx`` as the dialect's own
            routes are, and ``sessiongate.dialects.admin`` (the SDK's ``admin``) gives them the caller's audit
            origin and the admin API's checks. None while the dialect is not enabled, nor when the gateway's routes
            are turned off. Their contract is the gateway's spec (``openapi/gateway.yaml``).
        commands: click command groups the dialect adds to ``sessiongate`` (``sessiongate <group> …``), found when
            named among the enabled dialects; a command runs its work with ``run_command`` (the dialect's context,
            over the gateway's services). With the dialect not enabled, ``sessiongate <group>`` is refused in one
            line, exit status 2. Keep their names clear of the core's commands, which win.
        opt_in: Enabled only when named in ``SESSIONGATE_DIALECTS``, never by ``*`` (an example dialect, one installed
            for tests): ``*`` enables every other installed dialect.
        Context: What the dialect's handlers are given as ``ctx`` (:class:`DialectContext`, or a subclass adding what
            the dialect's handlers share); made by :meth:`bind` when the app's services open.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    controllers: ClassVar[Sequence[type[Controller] | BaseRouteHandler]]
    Options: ClassVar[type[DialectOptions]] = DialectOptions
    migrations: ClassVar[Path | None] = None
    admin_controllers: ClassVar[Sequence[type[Controller] | BaseRouteHandler]] = ()
    commands: ClassVar[Sequence[click.Command]] = ()
    opt_in: ClassVar[bool] = False
    Context: ClassVar[type[DialectContext[Any]]] = DialectContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is DialectPlugin and isinstance(arg := get_args(base)[0], type):
                cls.Options = arg

    def __init__(self, options: OptionsT_co | None = None) -> None:
        # Checked here, when the app starts and the registry makes its dialects, not at a first request: a dialect
        # missing one of these would otherwise fail on whichever request needed it first.
        if missing := [name for name in ("name", "title", "controllers") if not hasattr(type(self), name)]:
            msg = f"dialect class {type(self).__name__} does not set {', '.join(missing)}"
            raise TypeError(msg)
        # ``Options`` is ``OptionsT_co`` itself (``__init_subclass__``); a ClassVar cannot say so to the type checker.
        self.options: OptionsT_co = options if options is not None else cast("OptionsT_co", self.Options())
        self.path_patterns: list[tuple[re.Pattern[str], str]] = []
        """Each served path as a regex, with its ``Allow`` value."""
        self.claims: set[tuple[str, str]] = set()
        """Each (method, path template with parameter names erased) this dialect serves."""
        self._options_handlers: list[HTTPRouteHandler] = []
        self._context: DialectContext[OptionsT_co] | None = None
        probe = Router(path=self.options.prefix or "/", route_handlers=list(self.controllers))
        for r in probe.routes:
            if not isinstance(r, HTTPRoute):
                continue
            methods = sorted(m for m in r.methods if m not in {"OPTIONS", "HEAD"})
            allow = ", ".join(["OPTIONS", *methods])
            self.path_patterns.append((_path_regex(r.path), allow))
            self.claims.update((m, re.sub(r"\{[^}]*\}", "{}", r.path)) for m in methods)
            self._options_handlers.append(_options_handler(r.path.removeprefix(self.options.prefix), allow))

    @abstractmethod
    def expiry_policy(self) -> ExpiryPolicy:
        """The dialect's expiry policy, usually built from its options."""

    def dependencies(self) -> dict[str, Provide]:
        """Extra dependencies for this dialect's handlers: what each request derives (the caller its credential
        names). Each takes ``ctx`` (or another of them), so none is resolved beside another
        (``sessiongate.dialects.context``); what is shared for the app's life belongs in the dialect's ``Context``."""
        return {}

    def bind(self, services: Services) -> DialectContext[OptionsT_co]:
        """Make the dialect's context over ``services`` (the app's lifespan calls it once they are open; a test or a
        command may call it too) and serve it to the handlers from now on."""
        self._context = self.Context(self, services)
        return self._context

    def unbind(self) -> None:
        """Let go of the context (the lifespan calls it as the services close): whatever still holds the dialect, a
        cache of Litestar's keyed by its handlers say, holds none of the services and their engine."""
        self._context = None

    @property
    def context(self) -> DialectContext[OptionsT_co]:
        """The context :meth:`bind` made last.

        Raises:
            RuntimeError: the dialect is not bound to any services yet.
        """
        if self._context is None:
            msg = f"dialect {self.name!r} is not bound to the app's services yet"
            raise RuntimeError(msg)
        return self._context

    @abstractmethod
    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> LitestarResponse[Any]:
        """The vendor's response for ``error`` (status, body, headers): the SDK's ``Response`` or Litestar's own."""

    def sweeps(self, services: Services, batch: int) -> Sequence[Callable[[], Awaitable[int]]]:
        """What the app's sweeper deletes for this dialect beyond what all share (expired sessions and the like).

        Each step deletes at most ``batch`` rows and says how many went; the sweeper calls it again while it fills
        whole batches, every ``sweep_interval``.
        """
        del services, batch
        return ()

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """The live session that this dialect's credential in ``request`` names, used as the dialect's own validate
        uses it (a sliding dialect slides it); ``None`` when the request carries no credential of this dialect.

        The gateway's forward auth (``sessiongate.gate``) asks each enabled dialect in turn. A dialect implements it
        by calling the same lookup its own routes call (through :attr:`context`), and nothing else.

        Raises:
            GatewayError: the request carries such a credential and it does not hold (bad, expired, revoked, or
                another dialect's).
        """
        del request
        return None

    def spec_path(self, spec_dir: Path) -> Path:
        """Where this dialect's hand-written OpenAPI document is: ``<spec_dir>/<name>.yaml``, for a dialect whose spec
        the gateway ships; a third-party dialect returns the one in its own package."""
        return spec_dir / f"{self.name}.yaml"

    def allow_header(self, path: str) -> str | None:
        """The ``Allow`` value for a request path this dialect serves, or ``None`` if it serves no such path."""
        for pattern, allow in self.path_patterns:
            if pattern.fullmatch(path):
                return allow
        return None

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Mount the dialect's routes and remember its paths for error rendering."""
        router = Router(
            path=self.options.prefix or "/",
            route_handlers=[*self._options_handlers, *self.controllers],
            dependencies={"ctx": Provide(self._context_provider(), sync_to_thread=False), **self.dependencies()},
            opt={"dialect": self.name},
            response_class=Response,  # what a handler that returns data is answered with: the short path
            # The hand-written spec is the dialect's contract; /schema describes only the gateway's own routes.
            include_in_schema=False,
        )
        app_config.route_handlers.append(router)
        if no_store not in app_config.before_send:
            app_config.before_send.append(no_store)
        return app_config

    def admin_router(self) -> Router | None:
        """The dialect's admin routes (``admin_controllers``), given ``ctx`` as its own routes are, for the gateway to
        mount in its admin router; ``None`` when it has none."""
        if not self.admin_controllers:
            return None
        return Router(
            path="/",
            route_handlers=list(self.admin_controllers),
            dependencies={"ctx": Provide(self._context_provider(), sync_to_thread=False)},
            # Not "dialect": a failure of the admin API is problem details, whichever module serves the route.
            opt={"admin_of": self.name},
            include_in_schema=False,
        )

    def _context_provider(self) -> Callable[[], DialectContext[OptionsT_co]]:
        # A function, not a bound method: Litestar deep-copies a router's dependencies, and a bound method's copy
        # would carry a copy of the dialect, never bound to the services.
        def ctx() -> DialectContext[OptionsT_co]:
            # The attribute, not the property: this runs for every request, and the lifespan bound it before the first.
            return cast("DialectContext[OptionsT_co]", self._context)

        return ctx


async def no_store(message: Message, scope: Scope) -> None:
    """The app's ``before_send`` hook: ``Cache-Control: no-store`` on every response of a dialect's route (and of
    the gateway's own, ``sessiongate.gate``).

    Those responses carry tokens, session ids and cookies, or clear them, and no shared cache may keep one (OWASP
    ASVS V8.2.1). A hook rather than the routers' response headers, which miss the error responses the app's
    exception handler builds. It runs for every message the app sends, so it does no more than two lookups.
    """
    if message["type"] == "http.response.start":
        handler = scope.get("route_handler")
        if handler is not None and ("dialect" in handler.opt or "gateway" in handler.opt):
            message["headers"] = [*message.get("headers", ()), _NO_STORE]


def _path_regex(path: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(path)))


def _options_handler(path: str, allow: str) -> HTTPRouteHandler:
    def options_handler() -> Response[None]:
        return Response(content=None, status_code=204, headers={"Allow": allow})

    return route(path or "/", http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False)(
        options_handler
    )


def bearer_token(request: Request[Any, Any, Any], *schemes: str) -> str | None:
    """The credential of an ``Authorization: <scheme> <credential>`` header, for any of ``schemes``."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in {s.lower() for s in (schemes or ("Bearer",))} and value.strip():
        return value.strip()
    return None


async def within_create_budget(request: Request[Any, Any, Any]) -> None:
    """``before_request`` of the routes that create a session without a password: spend one create of the client's
    address, before the body is even read.

    Raises:
        RateLimited: the address has no create left (``SESSIONGATE_CREATE_RATE_LIMIT``), with ``Retry-After``.
    """
    # A coroutine though it never waits: Litestar would run a plain function on a worker thread, per request.
    services = request.app.state.services
    if services.create_budget is None:
        return
    address = client_address(request, trust_forwarded=services.settings.trust_forwarded)
    if (wait := services.create_budget.take(address)) is not None:
        raise RateLimited("too many sessions created from this address", headers={"Retry-After": str(wait)})


def is_secure_request(request: ASGIConnection[Any, Any, Any, Any], *, trust_forwarded: bool) -> bool:
    """Whether the request (or any connection, for a guard) arrived over TLS (directly, or at a trusted proxy)."""
    if trust_forwarded and request.headers.get("x-forwarded-proto", "").lower() == "https":
        return True
    # The scheme ``request.url`` would give, read from the scope: building the URL parses the Host header, and fails
    # on one whose port is no number (``Host: a:b``), which any client can send.
    scope = request.scope
    return bool(scope.get("server")) and scope.get("scheme", "http") in {"https", "wss"}


def request_host_name(request: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The name of the host the request was sent to, as ``request.url.hostname`` reads it, but for any ``Host``.

    That is the ``Host`` header's host, lower-cased, without its port, an IPv6 address without its brackets; without
    the header, the server's address; ``""`` when neither names one. ``request.url`` fails on a ``Host`` whose port
    is no number or out of range (``a:b``, ``a:99999``), which any client can send, where this reads ``a``, as a
    browser's server (Express's ``req.hostname``) would.
    """
    scope = request.scope
    host = next((value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"host"), "")
    if not host and (server := scope.get("server")):
        host = str(server[0])
    # The same reading of a network location as the URL's, which parses a port only when asked for it.
    return SplitResult("", host, "", "", "").hostname or ""
