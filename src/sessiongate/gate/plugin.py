"""``GatewayPlugin``: mounts the gateway's own routes under their prefix, and describes them in ``/docs``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Router
from litestar.exceptions import ImproperlyConfiguredException, NotFoundException
from litestar.plugins import InitPlugin

from sessiongate.dialects.base import DialectPlugin, no_store
from sessiongate.docs import DocEntry
from sessiongate.gate import (
    admin_routes,
    api_token_routes,
    auth_token_routes,
    principal_routes,
    routes,
    tenant_key_routes,
)
from sessiongate.settings import GatewaySettings

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ("NAME", "TITLE", "GatewayPlugin")

NAME = "gateway"
"""The stem of its hand-written spec (``openapi/gateway.yaml``) and its name in ``/docs``. It is not a dialect."""
TITLE = "sessiongate gateway API"


WRITTEN_PREFIX = "/_sessiongate"
"""The prefix ``openapi/gateway.yaml`` writes its paths under (the default of ``SESSIONGATE_GATEWAY__PREFIX``)."""


class GatewayPlugin(InitPlugin):
    """The routes every deployment has whatever dialects it enables: forward auth, introspection, revocation, and
    the admin API, with the admin routes the enabled dialects add (``DialectPlugin.admin_controllers``: portos's
    devices).

    Args:
        settings: Whether and where to mount them.
        dialects: The enabled dialects; none may serve a path under the prefix (their admin routes are mounted here,
            behind the admin API's guard, and are no paths of theirs).

    Raises:
        ImproperlyConfiguredException: a dialect serves a path under the gateway's prefix.
    """

    def __init__(self, settings: GatewaySettings, dialects: Sequence[DialectPlugin]) -> None:
        self.settings = settings
        self.dialects = tuple(dialects)
        for dialect in dialects:
            for method, path in sorted(dialect.claims):
                if path == settings.prefix or path.startswith(f"{settings.prefix}/"):
                    msg = (
                        f"dialect {dialect.name!r} serves {method} {path}, under the gateway's prefix "
                        f"{settings.prefix!r}: set SESSIONGATE_GATEWAY__PREFIX to another path"
                    )
                    raise ImproperlyConfiguredException(msg)

    def doc_entry(self, spec_dir: Path) -> DocEntry:
        """The gateway's spec, for ``/docs``: its paths, written under the default prefix, moved to the one served."""
        return DocEntry(
            name=NAME,
            title=TITLE,
            spec_path=spec_dir / f"{NAME}.yaml",
            moved_paths=(WRITTEN_PREFIX, self.settings.prefix),
        )

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Mount the routes; their responses, errors too, say ``Cache-Control: no-store``."""
        router = Router(
            path=self.settings.prefix,
            route_handlers=[*routes.forward_auth, routes.introspect, routes.revoke],
            middleware=[refuse_empty_segments],
            opt={"gateway": True},
            include_in_schema=False,  # openapi/gateway.yaml is their contract, as the dialects' specs are theirs
        )
        admin = Router(
            path=self.settings.prefix,
            route_handlers=[
                *admin_routes.handlers,
                *principal_routes.handlers,
                *tenant_key_routes.handlers,
                *api_token_routes.handlers,
                *auth_token_routes.handlers,
                # Each enabled dialect's own (portos's devices): behind the same guard, failing in problem details.
                *(own for own in (dialect.admin_router() for dialect in self.dialects) if own is not None),
            ],
            guards=[admin_routes.admin_guard],
            middleware=[refuse_empty_segments],
            opt={"gateway": True},
            include_in_schema=False,
        )
        app_config.route_handlers.extend((router, admin))
        if no_store not in app_config.before_send:
            app_config.before_send.append(no_store)
        return app_config


def refuse_empty_segments(app: ASGIApp) -> ASGIApp:
    """404 for a path with an empty segment (``/admin/principals//enable``): routing would read it without the empty
    id (``/admin/principals/enable``) and reach another resource, answering for it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") or scope["path"].encode()
        if b"//" in raw.split(b"?", 1)[0]:
            raise NotFoundException()
        await app(scope, receive, send)

    return middleware


def gateway_plugins(settings: GatewaySettings, dialects: Sequence[DialectPlugin]) -> list[GatewayPlugin]:
    """The gateway's plugin, or none when it is turned off."""
    return [GatewayPlugin(settings, dialects)] if settings.enabled else []
