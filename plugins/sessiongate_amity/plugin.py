"""``AmityDialect``: class attributes, dependencies and the error body."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, ClassVar, cast

from litestar import Request
from litestar.di import Provide
from litestar.enums import MediaType

from sessiongate.dialect import (
    NETWORK_REALM,
    DialectPlugin,
    ExpiryPolicy,
    GatewayError,
    Response,
    Services,
    Session,
    Unauthenticated,
    bearer_token,
)
from sessiongate_amity import mapping, routes
from sessiongate_amity.context import AmityContext
from sessiongate_amity.options import AmityOptions

__all__ = ("AmityDialect", "AmityOptions")

TOKEN_PATH = "/authentication/token"  # noqa: S105 - a path, not a secret


class AmityDialect(DialectPlugin[AmityOptions]):
    """Amity Social Cloud: register a device session with an API key for a 30-day JWT; verify, revoke, renew."""

    name = "amity"
    title = "Amity sessions"
    controllers: ClassVar = [
        *(routes.register_route(v) for v in (3, 4, 5)),
        routes.verify_session,
        routes.revoke_session,
        routes.revoke_user_sessions,
        routes.chat_settings,
        routes.token_v4,
        routes.token_v3,
    ]
    Context = AmityContext

    @property
    def settings(self) -> AmityOptions:
        """The options, typed."""
        return self.options

    def expiry_policy(self) -> ExpiryPolicy:
        """A fixed lifetime from registration; renewing means registering again."""
        return ExpiryPolicy(ttl=self.settings.lifetime, touch_interval=self.settings.touch_interval)

    def dependencies(self) -> dict[str, Provide]:
        """``network`` (by API key), ``server_network`` (by server key), ``caller`` (by token) and ``credential`` (by
        access token or admin token)."""
        return {
            "network": Provide(routes.network),
            "server_network": Provide(routes.server_network),
            "caller": Provide(routes.authenticate),
            "credential": Provide(routes.credential),
        }

    def sweeps(self, services: Services, batch: int) -> Sequence[Callable[[], Awaitable[int]]]:
        """Users registrations made and have not used for longer than a token lives (spec decision 23)."""
        idle = timedelta(seconds=self.settings.lifetime) + routes.use_interval(self.settings)
        return [lambda: services.identity.sweep_unused(realm=NETWORK_REALM, idle=idle, batch=batch)]

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """The bearer access token, checked as verify checks it (in the network of ``x-api-key`` when sent)."""
        if bearer_token(request) is None:
            return None
        return (await routes.authenticate(request, cast("AmityContext", self.context))).session

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"status": "error", "code", "message", "data"?}``; the auth-token routes answer a bad server key with
        ``text/plain`` ``Unauthorized`` and validation failures with 422 (S2)."""
        token_route = request.scope["path"].endswith(TOKEN_PATH)
        if token_route and isinstance(error, Unauthenticated):
            return Response("Unauthorized", status_code=401, media_type=MediaType.TEXT, headers=error.headers)
        status, body = mapping.error_out(error, validation_status=422 if token_route else 400)
        return Response(body, status_code=status, headers=error.headers)
