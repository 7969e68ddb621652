"""``IsspDialect``: class attributes, options and the error body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from litestar import Request, Response

from sessiongate.dialect import DialectOptions, DialectPlugin, ExpiryPolicy, GatewayError, SameSite, Session
from sessiongate_issp import mapping, routes

if TYPE_CHECKING:
    from sessiongate.dialect import Services

__all__ = ("IsspDialect", "IsspOptions")


class IsspOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """issp's options."""

    lifetime: Annotated[int, msgspec.Meta(gt=0)] = 7200
    """Seconds a session lives after its creation or its last successful validate (the vendor's 2 hours)."""
    max_lifetime: Annotated[int, msgspec.Meta(gt=0)] = 43200
    """Seconds after its creation at which a session ends however often it is validated: 12 hours, ASVS V3.3.2's
    re-authentication period at level 2 (the vendor's sessions slid forever)."""
    touch_interval: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    """Validates closer together than this many seconds do not slide the session again (one write at most)."""
    cookie_domain: str | None = None
    """``Domain`` attribute of ``sessionCookie`` and its ``domain`` member; default: host-only, named by the Host."""
    same_site: SameSite = "Lax"
    """``SameSite`` of ``sessionCookie``. The vendor's ``None`` (for a dashboard on another site) implies ``Secure``."""


class IsspDialect(DialectPlugin):
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
    Options = IsspOptions

    def expiry_policy(self) -> ExpiryPolicy:
        """Sliding: every successful validate (at most once per touch interval) moves the expiry a lifetime ahead,
        never past the maximum lifetime from creation."""
        assert isinstance(self.options, IsspOptions)
        options = self.options
        return ExpiryPolicy(
            ttl=options.lifetime, sliding=True, absolute=options.max_lifetime, touch_interval=options.touch_interval
        )

    async def authenticate(self, request: Request[Any, Any, Any], services: Services) -> Session | None:
        """``sessionCookie``, read, checked and slid as validate does."""
        if (raw := request.cookies.get(routes.COOKIE)) is None:
            return None
        return await routes.resolve_cookie(services.sessions, self, raw)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"message": ...}`` with the seed's wording (see ``mapping.error_out``)."""
        validating = request.scope["path"].endswith(routes.VALIDATE)
        status, body = mapping.error_out(error, validating=validating)
        return Response(body, status_code=status, headers=error.headers)
