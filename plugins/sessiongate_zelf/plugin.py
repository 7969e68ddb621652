"""``ZelfDialect``: class attributes and the error body."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request

from sessiongate.dialect import DialectPlugin, ExpiryPolicy, GatewayError, Response, Session, bearer_token
from sessiongate_zelf import mapping, routes
from sessiongate_zelf.options import ZelfOptions

__all__ = ("ZelfDialect", "ZelfOptions")


class ZelfDialect(DialectPlugin[ZelfOptions]):
    """Zelf Name Service sessions: a device identifier in, a short-lived HS256 JWT out."""

    name = "zelf"
    title = "Zelf sessions"
    controllers: ClassVar = [routes.create_session]

    def expiry_policy(self) -> ExpiryPolicy:
        """Fixed lifetime from activation."""
        return ExpiryPolicy(ttl=self.options.lifetime)

    async def authenticate(self, request: Request[Any, Any, Any]) -> Session | None:
        """The bearer token create issued (zelf has no validate of its own: the token's ``session`` claim, checked as
        the JWT dialects check theirs). Sessions do not slide."""
        if (token := bearer_token(request)) is None:
            return None
        ctx = self.context
        session, _ = await ctx.sessions.resolve_jwt(
            token, ctx.policy, session_claim=mapping.SESSION_CLAIM, tenant=self.options.tenant, dialect="zelf"
        )
        return session

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"error": "<message>"}`` with the error's status."""
        return Response(mapping.error_out(error), status_code=error.status, headers=error.headers)
