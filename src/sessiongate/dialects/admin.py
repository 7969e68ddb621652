"""What the admin API's routes share, the gateway's own and those a dialect adds (``DialectPlugin.admin_controllers``):
who is calling, how a change names them in its audit event, and how parameters are checked and answers written.

A dialect's admin routes are mounted by the gateway under its admin router (``sessiongate.gate.plugin``): behind the
same guard, which lets in only a live ``admin``-scope API token and leaves it in the request's state
(:data:`CALLER_KEY`); under the same prefix; failing in the same problem details. With these they also check and
answer alike, so that one admin API speaks one way whichever module serves a route. The SDK exports this module as
``admin``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import QueryParameter

from sessiongate.addresses import client_address
from sessiongate.core.api_token_store import ApiTokenInfo
from sessiongate.core.audit_store import Kind, NewEvent
from sessiongate.core.errors import InvalidRequest
from sessiongate.core.keyset import decode_cursor, encode_cursor
from sessiongate.dialects.responses import Response

__all__ = (
    "CALLER_KEY",
    "DEFAULT_LIMIT",
    "JSON",
    "MAX_LIMIT",
    "Q",
    "answer",
    "caller",
    "caller_event",
    "decode_cursor",
    "encode_cursor",
    "page_size",
    "text_filter",
)

CALLER_KEY = "sessiongate.admin_token"
"""Where the admin API's guard leaves the caller's token (:class:`ApiTokenInfo`) in the request's state."""
JSON = "application/json"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
"""The most rows one page of an admin listing holds."""
_LONGEST_FILTER = 1024
Q = Annotated[str | None, QueryParameter()]
"""A query parameter read as text: each is checked here, so every refusal is worded and shaped alike."""


def caller(request: Request[Any, Any, Any]) -> ApiTokenInfo:
    """The admin token the guard let in."""
    info: ApiTokenInfo = request.state[CALLER_KEY]
    return info


def caller_event(request: Request[Any, Any, Any], kind: Kind = "session.revoked", **fields: Any) -> NewEvent:
    """The event of a change made through the admin API: by its token (``admin-token:<name>``), from its address,
    with its user agent; ``fields`` add to it."""
    settings = request.app.state.settings
    return NewEvent(
        kind=kind,
        actor=f"admin-token:{caller(request).name}",
        client_address=client_address(request, trust_forwarded=settings.trust_forwarded),
        user_agent=request.headers.get("user-agent"),
        **fields,
    )


def answer(value: object, status: int = 200) -> Response[bytes]:
    """``value`` as JSON."""
    return Response(msgspec.json.encode(value), status_code=status, media_type=JSON)


def text_filter(name: str, value: str | None) -> None:
    """Refuse what no stored text can be (a NUL, which PostgreSQL's text cannot hold) or be that long.

    Raises:
        InvalidRequest: such a value.
    """
    if value is not None and ("\x00" in value or len(value) > _LONGEST_FILTER):
        raise InvalidRequest(f"{name} must hold no NUL and at most {_LONGEST_FILTER} characters", field=name)


def page_size(value: str | None, most: int = MAX_LIMIT) -> int:
    """``limit``: 1 to ``most``, by default :data:`DEFAULT_LIMIT`.

    Raises:
        InvalidRequest: anything else.
    """
    if value is None:
        return DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= most:
        raise InvalidRequest(f"limit must be an integer from 1 to {most}", field="limit")
    return int(value)
