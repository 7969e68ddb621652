"""``PortosDialect``: class attributes (its routes, its devices' table, admin routes and commands), dependencies and
the problem-details body."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, cast

from litestar import Request
from litestar.di import Provide

from sessiongate.dialect import DialectPlugin, ExpiryPolicy, GatewayError, Response, Session, bearer_token
from sessiongate_portos import device_commands, device_routes, mapping, routes
from sessiongate_portos.context import PortosContext
from sessiongate_portos.options import PortosOptions

__all__ = ("PortosDialect", "PortosOptions")

HERE = Path(__file__).parent


class PortosDialect(DialectPlugin[PortosOptions]):
    """PORTOS: log in to a device for a JWT and a refresh token; list, read and delete sessions with NData."""

    name = "portos"
    title = "PORTOS sessions"
    controllers: ClassVar = [
        routes.login,
        routes.profile,
        routes.refresh,
        routes.logout,
        routes.list_sessions,
        *routes.session_routes("/sessions"),
        *routes.session_routes("/api/sessions", "Api"),
    ]
    Context = PortosContext
    migrations = HERE / "migrations"  # its devices' table, sg_device (adopted where the core made it)
    admin_controllers: ClassVar = device_routes.handlers  # {gateway prefix}/admin/devices…
    commands: ClassVar = [device_commands.devices]  # sessiongate devices …

    def expiry_policy(self) -> ExpiryPolicy:
        """A fixed lifetime from login, extended only by a refresh; uses write ``lastAccessAt`` now and then."""
        return ExpiryPolicy(
            ttl=self.options.lifetime, absolute=self.options.max_lifetime, touch_interval=self.options.touch_interval
        )

    def dependencies(self) -> dict[str, Provide]:
        """``caller``: the bearer's session and user."""
        return {"caller": Provide(routes.authenticate)}

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """The bearer ``tokenId``, checked as every authenticated route checks it (its user too)."""
        if bearer_token(request) is None:
            return None
        return (await routes.authenticate(request, cast("PortosContext", self.context))).session

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """RFC 7807 problem details (S4), ``application/problem+json``."""
        body = mapping.problem_out(error, instance=request.scope["path"])
        # The body's status: the error's, but for a login the session cap refuses (S6's 403, spec decision 13).
        return Response(body, status_code=body.status, media_type="application/problem+json", headers=error.headers)
