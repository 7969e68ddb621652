"""The admin API's auth tokens of principals (``{prefix}/admin/principals/{id}/auth-tokens…``): SAYMON's long-lived
``auth-token`` made and revoked, as ``sessiongate tokens`` does, each change an audit event.

A principal is named as the admin API's other principal routes name it: by its public id in a tenant
(``?tenant=``, ``default`` when not given); ``tokens`` names it by its login, which is read here. A token is shown in
the answer that makes it, once: only its keyed digest is stored, and no route lists or reads tokens. Each login with
a token reads the database, so a revoked token is refused from the very next login in every process.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.params import PathParameter, QueryParameter

from sessiongate.dialects.bodies import json_body
from sessiongate.dialects.responses import Response
from sessiongate.gate import auth_token_admin
from sessiongate.gate.admin_routes import answer, caller_event, services_of
from sessiongate.gate.principal_routes import read_principal

__all__ = ("handlers",)

Q = Annotated[str | None, QueryParameter()]
PrincipalId = Annotated[str, PathParameter()]


class NewAuthToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``tokens add`` takes: whether the principal's other auth tokens are revoked (``--replace``)."""

    replace: bool = False


class CreatedAuthToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token just made, shown this once, and whose it is."""

    token: str
    tenant: str
    principal_id: str
    replaced: bool


class RevokedAuthTokens(msgspec.Struct, frozen=True, kw_only=True):
    """How many auth tokens a revoke ended."""

    revoked: int


@post("/admin/principals/{principal_id:str}/auth-tokens", operation_id="createAuthToken", status_code=201)
async def create_auth_token(
    request: Request[Any, Any, Any], principal_id: PrincipalId, tenant: Q = None
) -> Response[bytes]:
    """Make an auth token for a principal, as ``tokens add`` does; the body, ``{"replace": true}``, is optional."""
    services = services_of(request)
    replace = False
    if (await request.body()).strip():
        replace = (await json_body(request, NewAuthToken)).replace
    found = await read_principal(services, tenant or "default", principal_id)
    token = await auth_token_admin.add_auth_token(
        services, caller_event(request, "auth_token.created"), tenant=found.tenant, login=found.login, replace=replace
    )
    made = CreatedAuthToken(token=token, tenant=found.tenant, principal_id=found.id, replaced=replace)
    return answer(made, status=201)


@post("/admin/principals/{principal_id:str}/auth-tokens/revoke", operation_id="revokeAuthTokens", status_code=200)
async def revoke_auth_tokens(
    request: Request[Any, Any, Any], principal_id: PrincipalId, tenant: Q = None
) -> Response[bytes]:
    """Revoke every auth token of a principal, as ``tokens revoke`` does; again: 0 revoked, 200."""
    services = services_of(request)
    found = await read_principal(services, tenant or "default", principal_id)
    count = await auth_token_admin.revoke_auth_tokens(
        services, caller_event(request, "auth_token.revoked"), tenant=found.tenant, login=found.login
    )
    return answer(RevokedAuthTokens(revoked=count))


handlers = [create_auth_token, revoke_auth_tokens]
"""The auth tokens' handlers, mounted beside :data:`sessiongate.gate.admin_routes.handlers` behind its guard."""
