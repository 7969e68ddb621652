"""``MemoDialect``: its options, its table's migrations, its spec and its error body."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from litestar import Request

from sessiongate.dialect import DialectPlugin, ExpiryPolicy, GatewayError, Response
from sessiongate_memo import routes, wire
from sessiongate_memo.options import MemoOptions

__all__ = ("MemoDialect", "MemoOptions")

HERE = Path(__file__).parent


class MemoDialect(DialectPlugin[MemoOptions]):
    """Sessions that carry a note: an example of a third-party dialect with a table of its own."""

    name = "memo"
    title = "memo sessions"
    controllers: ClassVar = [routes.create_session, routes.read_session, routes.end_session]
    migrations = HERE / "migrations"
    opt_in = True  # an example: served only where SESSIONGATE_DIALECTS names it, never by "*"

    def expiry_policy(self) -> ExpiryPolicy:
        """A fixed lifetime from creation."""
        return ExpiryPolicy(ttl=self.options.lifetime)

    def spec_path(self, spec_dir: Path) -> Path:
        """The spec shipped in this package (the gateway's ``spec_dir`` holds only its own dialects')."""
        del spec_dir
        return HERE / "openapi.yaml"

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        """``{"error": "<message>"}`` with the error's status and headers."""
        del request
        return Response(wire.Error(error=error.message), status_code=error.status, headers=error.headers)
