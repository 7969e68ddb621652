"""``SaymonDialect``: class attributes, options and the error body."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request
from litestar.di import Provide

from sessiongate.dialect import DialectPlugin, ExpiryPolicy, GatewayError, Response, Session, request_cookie
from sessiongate_saymon import mapping, routes
from sessiongate_saymon.options import SaymonOptions

__all__ = ("SaymonDialect", "SaymonOptions")


class SaymonDialect(DialectPlugin[SaymonOptions]):
    """SAYMON's session-id authentication: log in, a ``sid`` cookie, who am I, verify, log out."""

    name = "saymon"
    title = "SAYMON session authentication"
    controllers: ClassVar = [routes.create_session, routes.delete_session, routes.current_user, routes.verify_session]

    def expiry_policy(self) -> ExpiryPolicy:
        """An idle timeout: each use slides the expiry, never past the maximum lifetime from login."""
        idle = self.options.idle_timeout
        # Record uses at most once a minute (or a tenth of a short timeout), sparing the database.
        return ExpiryPolicy(
            ttl=idle, sliding=True, absolute=self.options.max_lifetime, touch_interval=min(60.0, idle / 10)
        )

    def dependencies(self) -> dict[str, Provide]:
        """``caller``: the authenticated user of a request (session id or Basic auth)."""
        return {"caller": Provide(routes.authenticate)}

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """The ``sid`` cookie, used as every authenticated route uses it (an emptied one is none)."""
        return await routes.cookie_session(self.context, request_cookie(request, routes.COOKIE) or "")

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """restify's ``{"code", "message"}`` with the error's status (S7)."""
        return Response(mapping.error_out(error), status_code=mapping.error_status(error), headers=error.headers)
