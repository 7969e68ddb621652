"""The admin API's principals (``{prefix}/admin/principals…``): listed, read, created, disabled, enabled, given a
password and deleted, with the same checks as ``sessiongate users``, each change an audit event.

A principal is named as sessions name it: by its public id in a tenant (``?tenant=``, ``default`` when not given).
Listings are paged by keyset on the row's own id (a UUIDv7, never shown): newest first, stable while principals come
and go. The cursor is that id, opaque to callers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.enums import HttpMethod
from litestar.params import PathParameter, QueryParameter

from sessiongate.core.errors import InvalidRequest, NotFound
from sessiongate.core.identity_store import StoredPrincipal
from sessiongate.core.keyset import decode_cursor, encode_cursor
from sessiongate.core.models import Principal
from sessiongate.dialects.bodies import json_body
from sessiongate.dialects.responses import Response
from sessiongate.gate import admin
from sessiongate.gate.admin_routes import answer, caller_event, page_size, services_of, text_filter
from sessiongate.identity.passwords import policy_problem
from sessiongate.identity.service import check_addressable_id
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, Kind

__all__ = ("handlers", "read_principal")

Q = Annotated[str | None, QueryParameter()]


class AdminPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """A principal as the admin API shows it: never its password hash nor its tokens."""

    id: str
    tenant: str
    login: str
    email: str | None
    display_name: str | None
    roles: list[str]
    permissions: list[str]
    realm: str
    disabled: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None


class PrincipalPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page, and the cursor of the next (``None`` on the last)."""

    items: list[AdminPrincipal]
    next_cursor: str | None


class NewPrincipal(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``users add`` takes; ``password`` is checked by the operators' password policy."""

    login: str
    tenant: str = "default"
    id: str | None = None
    email: str | None = None
    display_name: str | None = None
    roles: list[str] = msgspec.field(default_factory=list)
    permissions: list[str] = msgspec.field(default_factory=list)
    password: str | None = None


class NewPassword(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The password to set."""

    password: str


def _view(stored: StoredPrincipal) -> AdminPrincipal:
    principal = stored.principal
    return AdminPrincipal(
        id=principal.id,
        tenant=principal.tenant,
        login=principal.login,
        email=principal.email,
        display_name=principal.display_name,
        roles=list(principal.roles),
        permissions=list(principal.permissions),
        realm=principal.realm,
        disabled=principal.disabled,
        has_password=stored.password_hash is not None,
        created_at=principal.created_at,
        updated_at=principal.updated_at,
        last_used_at=principal.last_used_at,
    )


async def read_principal(services: Services, tenant: str, principal_id: str) -> AdminPrincipal:
    """The principal of a tenant a route names by its public id (the auth tokens' routes name it so too).

    Raises:
        InvalidRequest: a tenant or id no stored text can be.
        NotFound: no such principal in the tenant.
    """
    text_filter("tenant", tenant)
    text_filter("principal_id", principal_id)
    stored = await services.identity.principals.stored(tenant=tenant, public_id=principal_id)
    if stored is None:
        raise NotFound("no such principal in this tenant", field="principal_id")
    return _view(stored)


def _check_password(services: Services, password: str, login: str) -> None:
    settings = services.settings
    problem = policy_problem(
        password, login=login, min_length=settings.password_min_length, check_common=settings.password_check_common
    )
    if problem is not None:
        raise InvalidRequest(problem, field="password")


async def _record(request: Request[Any, Any, Any], kind: Kind, principal: AdminPrincipal) -> None:
    services = services_of(request)
    event = caller_event(request, kind, tenant=principal.tenant, principal_id=principal.id)
    await AuditLog(services.runner, services.clock).record(event)


@get("/admin/principals", operation_id="listPrincipals", status_code=200)
async def list_principals(
    request: Request[Any, Any, Any], *, tenant: Q = None, realm: Q = None, limit: Q = None, cursor: Q = None
) -> Response[bytes]:
    """Principals of every tenant and realm, newest first, one page at a time (keyset)."""
    text_filter("tenant", tenant)
    text_filter("realm", realm)
    size = page_size(limit, admin.MAX_LIMIT)
    before = decode_cursor(cursor) if cursor is not None else None
    store = services_of(request).identity.principals
    rows = await store.page(tenant=tenant, realm=realm, before=before, limit=size + 1)
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = encode_cursor(rows[-1].row_id) if more and rows else None
    return answer(PrincipalPage(items=[_view(r) for r in rows], next_cursor=next_cursor))


@post("/admin/principals", operation_id="createPrincipal", status_code=201)
async def create_principal(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Provision a principal as ``users add`` does; its password, when given, must pass the policy."""
    services = services_of(request)
    body = await json_body(request, NewPrincipal)
    for name, value in (("login", body.login), ("tenant", body.tenant), ("id", body.id)):
        text_filter(name, value)
    check_addressable_id(body.id)
    for name, value in (("email", body.email), ("display_name", body.display_name), ("password", body.password)):
        if value is not None and "\x00" in value:
            raise InvalidRequest(f"{name} must hold no NUL", field=name)
    for name, names in (("roles", body.roles), ("permissions", body.permissions)):
        if any("\x00" in n or len(n) > 256 for n in names) or len(names) > 100:
            raise InvalidRequest(f"{name}: at most 100 names of at most 256 characters, no NUL", field=name)
    if body.password is not None:
        _check_password(services, body.password, body.login)
    made: Principal = await services.identity.add_principal(
        tenant=body.tenant,
        login=body.login,
        principal_id=body.id,
        email=body.email,
        display_name=body.display_name,
        roles=body.roles,
        permissions=body.permissions,
        password=body.password,
    )
    principal = await read_principal(services, made.tenant, made.id)
    await _record(request, "principal.created", principal)
    return answer(principal, status=201)


@get("/admin/principals/{principal_id:str}", operation_id="getPrincipal", status_code=200)
async def get_principal(
    request: Request[Any, Any, Any], principal_id: Annotated[str, PathParameter()], tenant: Q = None
) -> Response[bytes]:
    """One principal of a tenant, by its public id."""
    return answer(await read_principal(services_of(request), tenant or "default", principal_id))


@post("/admin/principals/{principal_id:str}/disable", operation_id="disablePrincipal", status_code=200)
async def disable_principal(
    request: Request[Any, Any, Any], principal_id: Annotated[str, PathParameter()], tenant: Q = None
) -> Response[bytes]:
    """Disable a principal and end all its sessions, as ``users disable`` does; again, the same answer."""
    services = services_of(request)
    found = await read_principal(services, tenant or "default", principal_id)
    await services.identity.disable(tenant=found.tenant, login=found.login)
    principal = await read_principal(services, found.tenant, found.id)
    await _record(request, "principal.disabled", principal)
    return answer(principal)


@post("/admin/principals/{principal_id:str}/enable", operation_id="enablePrincipal", status_code=200)
async def enable_principal(
    request: Request[Any, Any, Any], principal_id: Annotated[str, PathParameter()], tenant: Q = None
) -> Response[bytes]:
    """Enable a disabled principal, as ``users enable`` does; again, the same answer."""
    services = services_of(request)
    found = await read_principal(services, tenant or "default", principal_id)
    await services.identity.enable(tenant=found.tenant, login=found.login)
    principal = await read_principal(services, found.tenant, found.id)
    await _record(request, "principal.enabled", principal)
    return answer(principal)


@post("/admin/principals/{principal_id:str}/password", operation_id="setPrincipalPassword", status_code=200)
async def set_principal_password(
    request: Request[Any, Any, Any], principal_id: Annotated[str, PathParameter()], tenant: Q = None
) -> Response[bytes]:
    """Set a principal's password, end all its sessions and lift a lock on its login, as ``users set-password``."""
    services = services_of(request)
    body = await json_body(request, NewPassword)
    found = await read_principal(services, tenant or "default", principal_id)
    if "\x00" in body.password:
        raise InvalidRequest("password must hold no NUL", field="password")
    _check_password(services, body.password, found.login)
    await services.identity.set_password(tenant=found.tenant, login=found.login, password=body.password)
    principal = await read_principal(services, found.tenant, found.id)
    await _record(request, "principal.password_set", principal)
    return answer(principal)


@delete("/admin/principals/{principal_id:str}", operation_id="deletePrincipal", status_code=204)
async def delete_principal(
    request: Request[Any, Any, Any], principal_id: Annotated[str, PathParameter()], tenant: Q = None
) -> None:
    """Delete a principal and end all its sessions, as ``users delete`` does."""
    services = services_of(request)
    found = await read_principal(services, tenant or "default", principal_id)
    await services.identity.delete(tenant=found.tenant, login=found.login)
    await _record(request, "principal.deleted", found)


@route("/admin/principals", http_method=[HttpMethod.OPTIONS], status_code=204)
async def principals_options() -> Response[None]:
    """The methods of the principals' collection: Litestar's own answer would list only the first handler's."""
    return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


@route("/admin/principals/{principal_id:str}", http_method=[HttpMethod.OPTIONS], status_code=204)
async def principal_options(principal_id: Annotated[str, PathParameter()]) -> Response[None]:
    """The methods of one principal."""
    return Response(content=None, status_code=204, headers={"Allow": "DELETE, GET, OPTIONS"})


handlers = [
    principals_options,  # first: Litestar adds an OPTIONS handler of its own to a path whose first handler lacks one
    principal_options,
    list_principals,
    create_principal,
    get_principal,
    disable_principal,
    enable_principal,
    set_principal_password,
    delete_principal,
]
"""The principals' handlers, mounted beside :data:`sessiongate.gate.admin_routes.handlers` behind its guard."""
