"""``PortosDialect``: class attributes, dependencies and the problem-details body."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request, Response
from litestar.di import NamedDependency, Provide

from sessiongate.dialect import (
    Devices,
    DialectPlugin,
    ExpiryPolicy,
    GatewayError,
    Services,
    Session,
    bearer_token,
)
from sessiongate_portos import mapping, routes
from sessiongate_portos.options import PortosOptions

__all__ = ("PortosDialect", "PortosOptions")


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

    def expiry_policy(self) -> ExpiryPolicy:
        """A fixed lifetime from login, extended only by a refresh; uses write ``lastAccessAt`` now and then."""
        return ExpiryPolicy(
            ttl=self.options.lifetime, absolute=self.options.max_lifetime, touch_interval=self.options.touch_interval
        )

    def dependencies(self) -> dict[str, Provide]:
        """``caller`` (the bearer's session and user) and ``devices``."""
        return {
            "caller": Provide(routes.authenticate),
            "devices": Provide(_devices, sync_to_thread=False),
        }

    async def authenticate(self, request: Request[Any, Any, Any], services: Services) -> Session | None:
        """The bearer ``tokenId``, checked as every authenticated route checks it (its user too)."""
        if bearer_token(request) is None:
            return None
        devices = Devices(services.runner)
        return (await routes.authenticate(request, services.sessions, services.identity, self, devices)).session

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """RFC 7807 problem details (S4), ``application/problem+json``."""
        body = mapping.problem_out(error, instance=request.scope["path"])
        # The body's status: the error's, but for a login the session cap refuses (S6's 403, spec decision 13).
        return Response(body, status_code=body.status, media_type="application/problem+json", headers=error.headers)


def _devices(services: NamedDependency[Services], dialect: NamedDependency[DialectPlugin]) -> Devices:
    del dialect  # after the app's dependency chain, not beside it (DEPENDENCY_CHAIN in sessiongate.app)
    return Devices(services.runner)
