"""The admin API's own API tokens (``{prefix}/admin/api-tokens…``): the gateway's credentials (scope ``introspect`` or
``admin``) listed, read, created or imported and revoked, as ``sessiongate admin-tokens`` does, each change an audit
event.

A token is read from the database on every request that presents it, so a revoked one is refused on the very next
request in every process — the calling token too, when it revokes itself: its own revoke is answered, its next
request is 401. A drawn value is shown once, when made; an imported one is never answered back. A token is named by
its name (unique, a path segment: :data:`~sessiongate.gate.tokens.NAME_PATTERN`). Listings are paged by keyset on the
token's id (a UUIDv7, never shown): newest first, stable while tokens come and go.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, route
from litestar.enums import HttpMethod
from litestar.params import PathParameter, QueryParameter

from sessiongate.core.errors import InvalidRequest
from sessiongate.core.keyset import decode_cursor, encode_cursor
from sessiongate.dialects.bodies import json_body
from sessiongate.dialects.responses import Response
from sessiongate.gate import admin, api_token_admin
from sessiongate.gate.admin_routes import answer, caller_event, page_size, services_of
from sessiongate.gate.tokens import SCOPES, STATES, ApiTokenInfo, Scope, TokenState

__all__ = ("handlers",)

Q = Annotated[str | None, QueryParameter()]
Name = Annotated[str, PathParameter()]


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token as the admin API shows it, as ``admin-tokens list`` does: never its value nor its digest, only its
    first characters."""

    name: str
    scope: Scope
    prefix: str
    state: TokenState
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page, and the cursor of the next (``None`` on the last)."""

    items: list[ApiToken]
    next_cursor: str | None


class NewApiToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``admin-tokens add`` takes; ``token`` is a value to import (``--from-stdin``) instead of drawing one.
    The scope is always said: a credential's reach is never a default of the API."""

    name: str
    scope: str
    token: str | None = None


class CreatedApiToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token just made: its value when drawn, shown this once (``None`` when imported: the caller has it)."""

    token: str | None
    api_token: ApiToken


def _view(info: ApiTokenInfo) -> ApiToken:
    return ApiToken(
        name=info.name,
        scope=info.scope,
        prefix=info.prefix,
        state=info.state,
        created_at=info.created_at,
        last_used_at=info.last_used_at,
        revoked_at=info.revoked_at,
    )


@get("/admin/api-tokens", operation_id="listApiTokens", status_code=200)
async def list_api_tokens(
    request: Request[Any, Any, Any],
    *,
    reach: Annotated[str | None, QueryParameter(name="scope")] = None,  # "scope" and "state" are names Litestar keeps
    lifecycle: Annotated[str | None, QueryParameter(name="state")] = None,
    limit: Q = None,
    cursor: Q = None,
) -> Response[bytes]:
    """The gateway's API tokens, revoked ones too, newest first, one page at a time (keyset)."""
    if reach is not None and reach not in SCOPES:
        raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}", field="scope")
    if lifecycle is not None and lifecycle not in STATES:
        raise InvalidRequest(f"state must be one of {', '.join(STATES)}", field="state")
    size = page_size(limit, admin.MAX_LIMIT)
    after = decode_cursor(cursor) if cursor is not None else None
    tokens, more = await api_token_admin.api_tokens(services_of(request)).page(
        scope=reach, state=lifecycle, limit=size, after=after
    )
    next_cursor = encode_cursor(uuid.UUID(tokens[-1].id)) if more and tokens else None
    return answer(ApiTokenPage(items=[_view(t) for t in tokens], next_cursor=next_cursor))


@post("/admin/api-tokens", operation_id="createApiToken", status_code=201)
async def create_api_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create or import a token, as ``admin-tokens add`` does, with its checks."""
    body = await json_body(request, NewApiToken)
    added = await api_token_admin.add_token(
        services_of(request), caller_event(request, "admin_token.created"), body.name, body.scope, body.token
    )
    value = None if body.token is not None else added.value
    return answer(CreatedApiToken(token=value, api_token=_view(added.info)), status=201)


@get("/admin/api-tokens/{name:str}", operation_id="getApiToken", status_code=200)
async def get_api_token(request: Request[Any, Any, Any], name: Name) -> Response[bytes]:
    """One token, by its name."""
    return answer(_view(await api_token_admin.api_tokens(services_of(request)).named(name)))


@post("/admin/api-tokens/{name:str}/revoke", operation_id="revokeApiToken", status_code=200)
async def revoke_api_token(request: Request[Any, Any, Any], name: Name) -> Response[bytes]:
    """Revoke a token at once in every process, the caller's own too; again: nothing changes, the same answer."""
    info, _ = await api_token_admin.revoke_token(
        services_of(request), caller_event(request, "admin_token.revoked"), name
    )
    return answer(_view(info))


@route("/admin/api-tokens", http_method=[HttpMethod.OPTIONS], status_code=204)
async def api_tokens_options() -> Response[None]:
    """The methods of the tokens' collection: Litestar's own answer would list only the first handler's."""
    return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


handlers = [
    api_tokens_options,  # first: Litestar adds an OPTIONS handler of its own to a path whose first handler lacks one
    list_api_tokens,
    create_api_token,
    get_api_token,
    revoke_api_token,
]
"""The API tokens' handlers, mounted beside :data:`sessiongate.gate.admin_routes.handlers` behind its guard."""
