"""The admin API's tenant keys (``{prefix}/admin/tenant-keys…``, ``{prefix}/admin/network-admin-tokens``): the API
keys that select a tenant (an amity network), its server keys and its admin tokens — listed, read, created or
imported, expired and revoked, as ``sessiongate keys`` does, each change an audit event.

A key is read from the database on every request that presents it, so a revoked or expired key is refused on the
very next request in every process. Values are shown once, when drawn; an imported value is never answered back.
Listings are paged by keyset on the key's id (a UUIDv7): newest first, stable while keys come and go.
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
from sessiongate.gate import admin, tenant_keys
from sessiongate.gate.admin_routes import answer, caller_event, instant, page_size, services_of, text_filter
from sessiongate.identity.tenants import KEY_KINDS, KeyInfo, KeyKind, KeyState

__all__ = ("handlers",)

Q = Annotated[str | None, QueryParameter()]
KeyId = Annotated[str, PathParameter()]


class TenantKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key as the admin API shows it: never its value nor its digest, only its last characters."""

    id: str
    tenant: str
    secure: bool
    kind: KeyKind
    hint: str
    state: KeyState
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TenantKeyPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page, and the cursor of the next (``None`` on the last)."""

    items: list[TenantKey]
    next_cursor: str | None


class NewKeys(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``keys add`` takes: values to import instead of drawing new ones, when clients already carry them."""

    tenant: str
    secure: bool = False
    share_tenant: bool = False
    api_key: str | None = None
    server_key: str | None = None


class CreatedKeys(msgspec.Struct, frozen=True, kw_only=True):
    """Keys just made: drawn values, shown this once (``None`` for an imported one, which the caller has)."""

    tenant: str
    secure: bool
    api_key: str | None
    server_key: str | None
    shared_principals: int
    keys: list[TenantKey]


class NewAdminToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``keys add-admin`` takes."""

    tenant: str
    admin_token: str | None = None


class CreatedAdminToken(msgspec.Struct, frozen=True, kw_only=True):
    """An admin token just made: its value when drawn, shown this once."""

    tenant: str
    admin_token: str | None
    key: TenantKey


class Expiry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """When a key expires; now when not given."""

    at: str | None = None


def _view(key: KeyInfo, now: datetime) -> TenantKey:
    return TenantKey(
        id=key.id,
        tenant=key.tenant,
        secure=key.secure,
        kind=key.kind,
        hint=key.hint,
        state=key.state(now),
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )


def _no_nul(name: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise InvalidRequest(f"{name} must hold no NUL", field=name)


@get("/admin/tenant-keys", operation_id="listTenantKeys", status_code=200)
async def list_tenant_keys(
    request: Request[Any, Any, Any], *, tenant: Q = None, kind: Q = None, limit: Q = None, cursor: Q = None
) -> Response[bytes]:
    """Keys of every tenant, newest first, one page at a time (keyset)."""
    text_filter("tenant", tenant)
    if kind is not None and kind not in KEY_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(KEY_KINDS)}", field="kind")
    services = services_of(request)
    size = page_size(limit, admin.MAX_LIMIT)
    after = decode_cursor(cursor) if cursor is not None else None
    keys, more = await tenant_keys.tenant_service(services).page_keys(tenant=tenant, kind=kind, limit=size, after=after)
    now = services.clock()
    next_cursor = encode_cursor(uuid.UUID(keys[-1].id)) if more and keys else None
    return answer(TenantKeyPage(items=[_view(k, now) for k in keys], next_cursor=next_cursor))


@post("/admin/tenant-keys", operation_id="createTenantKeys", status_code=201)
async def create_tenant_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create or import a tenant's API key (and server key, for a secure tenant), as ``keys add`` does."""
    services = services_of(request)
    body = await json_body(request, NewKeys)
    for name, value in (("tenant", body.tenant), ("api_key", body.api_key), ("server_key", body.server_key)):
        _no_nul(name, value)
    added = await tenant_keys.add_keys(
        services,
        caller_event(request, "api_key.created"),
        body.tenant,
        secure=body.secure,
        api_key=body.api_key,
        server_key=body.server_key,
        share_tenant=body.share_tenant,
    )
    now = services.clock()
    created = CreatedKeys(
        tenant=added.tenant.name,
        secure=added.tenant.secure,
        api_key=None if body.api_key is not None else added.api_key,
        server_key=None if body.server_key is not None else added.server_key,
        shared_principals=added.shared,
        keys=[_view(k, now) for k in added.keys],
    )
    return answer(created, status=201)


@post("/admin/network-admin-tokens", operation_id="createNetworkAdminToken", status_code=201)
async def create_network_admin_token(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Create or import a network's admin token, as ``keys add-admin`` does."""
    services = services_of(request)
    body = await json_body(request, NewAdminToken)
    _no_nul("tenant", body.tenant)
    _no_nul("admin_token", body.admin_token)
    added = await tenant_keys.add_admin_token(
        services, caller_event(request, "api_key.created"), body.tenant, body.admin_token
    )
    value = None if body.admin_token is not None else added.value
    created = CreatedAdminToken(tenant=added.key.tenant, admin_token=value, key=_view(added.key, services.clock()))
    return answer(created, status=201)


@get("/admin/tenant-keys/{key_id:str}", operation_id="getTenantKey", status_code=200)
async def get_tenant_key(request: Request[Any, Any, Any], key_id: KeyId) -> Response[bytes]:
    """One key, by its id."""
    services = services_of(request)
    return answer(_view(await tenant_keys.tenant_service(services).key(key_id), services.clock()))


@post("/admin/tenant-keys/{key_id:str}/revoke", operation_id="revokeTenantKey", status_code=200)
async def revoke_tenant_key(request: Request[Any, Any, Any], key_id: KeyId) -> Response[bytes]:
    """End a key at once in every process; again: nothing changes, the same answer."""
    services = services_of(request)
    info, _ = await tenant_keys.revoke_key(services, caller_event(request, "api_key.revoked"), key_id)
    return answer(_view(info, services.clock()))


@post("/admin/tenant-keys/{key_id:str}/expire", operation_id="expireTenantKey", status_code=200)
async def expire_tenant_key(request: Request[Any, Any, Any], key_id: KeyId) -> Response[bytes]:
    """Make a key expire now (no body, or no ``at``), or at ``at``; a later time may be moved again."""
    services = services_of(request)
    at = None
    if (await request.body()).strip():
        body = await json_body(request, Expiry)
        at = instant("at", body.at)
    info = await tenant_keys.expire_key(services, caller_event(request, "api_key.expired"), key_id, at)
    return answer(_view(info, services.clock()))


@route("/admin/tenant-keys", http_method=[HttpMethod.OPTIONS], status_code=204)
async def tenant_keys_options() -> Response[None]:
    """The methods of the keys' collection: Litestar's own answer would list only the first handler's."""
    return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


handlers = [
    tenant_keys_options,  # first: Litestar adds an OPTIONS handler of its own to a path whose first handler lacks one
    list_tenant_keys,
    create_tenant_keys,
    create_network_admin_token,
    get_tenant_key,
    revoke_tenant_key,
    expire_tenant_key,
]
"""The tenant keys' handlers, mounted beside :data:`sessiongate.gate.admin_routes.handlers` behind its guard."""
