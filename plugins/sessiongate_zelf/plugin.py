"""``ZelfDialect``: class attributes and the error body."""

from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request, Response

from sessiongate.core.errors import GatewayError
from sessiongate.core.models import ExpiryPolicy
from sessiongate.dialects.base import DialectOptions, DialectPlugin
from sessiongate_zelf import mapping, routes

__all__ = ("ZelfDialect", "ZelfOptions")


class ZelfOptions(DialectOptions, kw_only=True, forbid_unknown_fields=True):
    """zelf's options."""

    lifetime: int = 600
    """Seconds from activation to expiry (the vendor's Mongo TTL index: 600 s). Sessions do not slide."""


class ZelfDialect(DialectPlugin):
    """Zelf Name Service sessions: a device identifier in, a short-lived HS256 JWT out."""

    name = "zelf"
    title = "Zelf sessions"
    controllers: ClassVar = [routes.create_session]
    Options = ZelfOptions

    def expiry_policy(self) -> ExpiryPolicy:
        """Fixed lifetime from activation."""
        assert isinstance(self.options, ZelfOptions)
        return ExpiryPolicy(ttl=self.options.lifetime)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"error": "<message>"}`` with the error's status."""
        return Response(mapping.error_out(error), status_code=error.status, headers=error.headers)
