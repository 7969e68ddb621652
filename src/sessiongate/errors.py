"""App-level error dispatch: every failure is rendered by the dialect that owns the path, or as problem details.

App-level handlers are needed because routing-level 404/405 never reach router-level handlers (the route
does not exist yet), so the owning dialect is found from the handler's ``opt`` or by matching the path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from litestar import Request
from litestar import Response as LitestarResponse
from litestar.exceptions import (
    HTTPException,
    InternalServerException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.utils import normalize_path

from sessiongate.core import errors
from sessiongate.dialects.base import DialectPlugin
from sessiongate.dialects.bodies import humanize
from sessiongate.dialects.responses import Response
from sessiongate.storage.outage import is_outage

__all__ = ("CLIENT_CLOSED_REQUEST", "ErrorDispatcher", "to_gateway_error")

log = logging.getLogger("sessiongate.errors")
CLIENT_CLOSED_REQUEST = 499
"""nginx's status for a request whose client closed the connection before the answer: what the metrics count."""
_DISCONNECTED = "client disconnected prematurely"  # Litestar's detail when the body stream ends in http.disconnect


class ErrorDispatcher:
    """Turns any exception into the response of the dialect owning the request's path."""

    def __init__(self, plugins: Sequence[DialectPlugin], *, retry_after: int = 5) -> None:
        self.plugins = {p.name: p for p in plugins}
        self.retry_after = retry_after

    def owner(self, request: Request[Any, Any, Any]) -> DialectPlugin | None:
        """The dialect whose route (or path, for routing errors) the request is on."""
        handler = request.scope.get("route_handler")
        if handler is not None and (name := handler.opt.get("dialect")) in self.plugins:
            return self.plugins[name]
        # A routing error has no handler: match the path, then the raw one. A parameter holding an encoded "/"
        # (%2F) is one segment of the raw path but two of the decoded one, which no route of the dialect matches.
        # The router matched the path with its slashes collapsed (//a//b is /a/b), and so does this.
        raw_path: bytes = request.scope.get("raw_path") or b""
        for path in (normalize_path(request.scope["path"]), raw_path.decode("latin-1")):
            for plugin in self.plugins.values():
                if plugin.allow_header(path) is not None:
                    return plugin
        return None

    def __call__(self, request: Request[Any, Any, Any], exc: Exception) -> LitestarResponse[Any]:
        """The exception handler registered for ``Exception`` on the app."""
        if isinstance(exc, InternalServerException) and exc.detail == _DISCONNECTED:
            # The client hung up while sending its body: not the gateway's failure, and nobody reads the answer.
            return Response(content=None, status_code=CLIENT_CLOSED_REQUEST)
        owner = self.owner(request)
        error = to_gateway_error(exc, retry_after=self.retry_after)
        allow = owner.allow_header(normalize_path(request.scope["path"])) if owner is not None else None
        if isinstance(error, errors.MethodNotAllowed) and allow:
            error.headers = {k: v for k, v in error.headers.items() if k.lower() != "allow"} | {"Allow": allow}
        if owner is not None:
            return owner.render_error(request, error)
        return problem_details(request, error)


def to_gateway_error(exc: Exception, *, retry_after: int = 5) -> errors.GatewayError:
    """The gateway's meaning of any exception; unexpected ones are logged (type and route only) as internal.

    Args:
        exc: What was raised.
        retry_after: The ``Retry-After`` seconds of a 503 for a database that cannot be reached or used.
    """
    if isinstance(exc, errors.GatewayError):
        return exc
    if is_outage(exc):
        # Logged as a warning with the driver's exception type only: its message can name hosts and databases.
        log.warning("database unavailable", extra={"exception": type(exc).__name__})
        return errors.Unavailable("service unavailable", headers={"Retry-After": str(retry_after)})
    if isinstance(exc, ValidationException):
        message, field = _validation_message(exc)
        return errors.InvalidRequest(message, field=field)
    if isinstance(exc, NotAuthorizedException):
        return errors.Unauthenticated(exc.detail)
    if isinstance(exc, PermissionDeniedException):
        return errors.Forbidden(exc.detail)
    if isinstance(exc, NotFoundException):
        return errors.NotFound("not found")
    if isinstance(exc, MethodNotAllowedException):
        return errors.MethodNotAllowed("method not allowed", headers=dict(exc.headers or {}))
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return errors.PayloadTooLarge("request body too large")
    if isinstance(exc, HTTPException) and 400 <= exc.status_code < 500:
        detail = _clean(exc.detail)
        return errors.InvalidRequest("invalid JSON body" if "JSON" in detail or "truncated" in detail else detail)
    if isinstance(exc, RecursionError):
        # The gateway's own code does not recurse on input: only a decoder handed deeply nested JSON (a cookie,
        # a body read outside json_body) gets this far, and the request is what is wrong.
        return errors.InvalidRequest("request is nested too deeply")
    log.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return errors.GatewayError("internal error")


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """Litestar's parameter validation failures, worded like body failures."""
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict) and item.get("message"):
            key = str(item.get("key") or "") or None
            if item["message"] == "'data'":
                return "request body is required", None
            return humanize(str(item["message"]), None if key == "data" else key)
    return "invalid request", None


def _clean(detail: str) -> str:
    # Litestar details sometimes echo the request; keep only the first line, never the payload.
    return detail.split("\n", 1)[0][:200]


def problem_details(request: Request[Any, Any, Any], error: errors.GatewayError) -> Response[Any]:
    """RFC 9457 problem details, for paths no dialect owns."""
    body = {
        "type": "about:blank",
        "title": error.code.replace("_", " "),
        "status": error.status,
        "detail": error.message,
        "instance": request.scope["path"],
    }
    return Response(body, status_code=error.status, media_type="application/problem+json", headers=error.headers)
