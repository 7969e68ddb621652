"""``IsspDialect``: class attributes and the error body."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request

from sessiongate.dialect import DialectPlugin, ExpiryPolicy, GatewayError, Response, Session, request_cookie
from sessiongate_issp import mapping, routes
from sessiongate_issp.options import IsspOptions

__all__ = ("IsspDialect", "IsspOptions")


class IsspDialect(DialectPlugin[IsspOptions]):
    """The BCIT ISSP dashboard's sessions: a user id in, a JSON ``sessionCookie`` out, validated and slid, deleted."""

    name = "issp"
    title = "ISSP dashboard sessions"
    controllers: ClassVar = [
        routes.create_session,
        routes.validate_session,
        routes.validate_session_with_get,
        routes.delete_session,
        routes.delete_session_with_delete,
    ]

    def expiry_policy(self) -> ExpiryPolicy:
        """Sliding: every successful validate (at most once per touch interval) moves the expiry a lifetime ahead,
        never past the maximum lifetime from creation."""
        options = self.options
        return ExpiryPolicy(
            ttl=options.lifetime, sliding=True, absolute=options.max_lifetime, touch_interval=options.touch_interval
        )

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """``sessionCookie``, read, checked and slid as validate does."""
        if (raw := request_cookie(request, routes.COOKIE)) is None:
            return None
        return await routes.resolve_cookie(self.context, raw)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"message": ...}`` with the seed's wording (see ``mapping.error_out``)."""
        validating = request.scope["path"].endswith(routes.VALIDATE)
        status, body = mapping.error_out(error, validating=validating)
        return Response(body, status_code=status, headers=error.headers)
