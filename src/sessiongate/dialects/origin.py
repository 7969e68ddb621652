"""Refusing cross-site requests to the routes that authenticate by cookie, or set one.

A browser sends a site's cookies with any request to it, whichever site's page made the request, so a page of
another site could log a visitor out, or in as someone else. Browsers say where a request comes from: ``Origin``
(RFC 6454) on every request but GET and HEAD, and ``Sec-Fetch-Site`` (Fetch Metadata). A route opts in with
``guards=[refuse_cross_site]``; a request naming another origin, or marked ``cross-site``, is refused with
:class:`CrossSiteRequest` (403, in the dialect's shape), unless its origin is one of the configured
``allowed_origins``. Requests that send neither header (curl, server-side callers, the seeds' Node examples) are
not browsers' and pass.
"""

from __future__ import annotations

import functools
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from sessiongate.core.errors import Forbidden
from sessiongate.dialects.base import is_secure_request
from sessiongate.settings import Origin, Settings, parse_origin

__all__ = ("CrossSiteRequest", "is_cross_site", "own_origin", "refuse_cross_site")


class CrossSiteRequest(Forbidden):
    """A state-changing request made by a page of another site."""

    code = "cross_site_request"


def refuse_cross_site(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A route guard: refuse the request when a browser made it from another site (see the module's docstring).

    Raises:
        CrossSiteRequest: the request names another origin (or ``null``, or one it cannot be read), or says
            ``Sec-Fetch-Site: cross-site``, and its origin is not allowed.
    """
    del handler  # the guard is the same for every route that opts in
    settings: Settings = connection.app.state.settings
    if is_cross_site(connection, settings):
        raise CrossSiteRequest("cross-site request refused")


def is_cross_site(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> bool:
    """Whether a browser made the request from a page of another origin than the request's own, not allowed."""
    headers = connection.headers
    origin_header = headers.get("origin")
    if origin_header is None:
        # Without Origin only Fetch Metadata can tell: "same-origin" and "same-site" come from the gateway's own
        # site, "none" from the user (typed, bookmarked). Browsers send Origin with every POST and DELETE anyway.
        return headers.get("sec-fetch-site", "").strip().lower() == "cross-site"
    origin = parse_origin(origin_header)
    if origin is None:
        # "null" is an opaque origin (a sandboxed frame, a file, a redirect across sites): any page can be one.
        return True
    return origin != own_origin(connection, settings) and origin not in allowed_origins(settings.allowed_origins)


def own_origin(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> Origin | None:
    """The origin the request was sent to: its scheme (as the client saw it) and its ``Host``."""
    scheme = "https" if is_secure_request(connection, trust_forwarded=settings.trust_forwarded) else "http"
    forwarded = connection.headers.get("x-forwarded-host", "") if settings.trust_forwarded else ""
    host = (forwarded or connection.headers.get("host", "")).split(",", 1)[0].strip()
    return parse_origin(f"{scheme}://{host}") if host else None


@functools.lru_cache(maxsize=8)
def allowed_origins(configured: tuple[str, ...]) -> frozenset[Origin]:
    """The configured origins, as compared (the settings refused any that is not one at start-up)."""
    return frozenset(origin for text in configured if (origin := parse_origin(text)) is not None)
