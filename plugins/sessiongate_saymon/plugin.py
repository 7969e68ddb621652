"""``SaymonDialect``: class attributes, options and the error body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from litestar import Request, Response
from litestar.di import Provide

from sessiongate.dialect import DialectOptions, DialectPlugin, ExpiryPolicy, GatewayError, Session
from sessiongate_saymon import mapping, routes

if TYPE_CHECKING:
    from sessiongate.dialect import Services

__all__ = ("SaymonDialect", "SaymonOptions")


class SaymonOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """saymon's options. SAYMON publishes no session lifetime, so both are gateway choices (decision D4)."""

    idle_timeout: Annotated[int, msgspec.Meta(gt=0)] = 86400
    """Seconds a session lives without use; every authenticated use starts the count again."""
    max_lifetime: Annotated[int, msgspec.Meta(gt=0)] = 7 * 86400
    """Seconds after login at which a session ends however often it is used, and when the ``sid`` cookie expires:
    7 days, within ASVS V3.3.2's 30 days at level 1 (an idle timeout of a day is already past level 2's)."""


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

    async def authenticate(self, request: Request[Any, Any, Any], services: Services) -> Session | None:
        """The ``sid`` cookie, used as every authenticated route uses it (an emptied one is none)."""
        return await routes.cookie_session(services.sessions, self, request.cookies.get(routes.COOKIE, ""))

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """restify's ``{"code", "message"}`` with the error's status (S7)."""
        return Response(mapping.error_out(error), status_code=mapping.error_status(error), headers=error.headers)
