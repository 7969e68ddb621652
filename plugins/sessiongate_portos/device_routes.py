"""portos's routes in the gateway's admin API, ``{prefix}/admin/devices…`` (``PortosDialect.admin_controllers``): a
tenant's devices listed, read, provisioned and removed, as ``sessiongate devices`` does, with its checks, each change an
audit event.

The gateway mounts them behind its admin API's guard (a live ``admin``-scope API token), and their failures are its
problem details, not portos's error body; they exist only while portos is enabled. Their contract is the gateway's
spec (``openapi/gateway.yaml``, decision 25). A device is named as ``devices`` names it: by its name in a tenant
(``?tenant=``, ``default`` when not given), one path segment (:func:`~sessiongate_portos.devices.check_new_device`
refuses a name no URL can carry). Listings are paged by keyset on the device's id (a UUIDv7): newest first, stable
while devices come and go. Removing a device refuses new logins on it at once; its live sessions run until they
expire or are ended (a session is no device's).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, post, route
from litestar.di import NamedDependency
from litestar.enums import HttpMethod
from litestar.params import PathParameter

from sessiongate.dialect import Response, admin, json_body
from sessiongate_portos import device_admin
from sessiongate_portos.context import PortosContext as Context
from sessiongate_portos.devices import RegisteredDevice

__all__ = ("handlers",)

Name = Annotated[str, PathParameter()]


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A device as the admin API shows it, as ``devices list`` does (and its id, which its sessions name)."""

    id: str
    tenant: str
    name: str
    env: str
    description: str | None
    settings: dict[str, str]
    created_at: datetime


class DevicePage(msgspec.Struct, frozen=True, kw_only=True):
    """One page, and the cursor of the next (``None`` on the last)."""

    items: list[Device]
    next_cursor: str | None


class NewDevice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What ``devices add`` takes."""

    name: str
    env: str
    tenant: str = "default"
    description: str | None = None
    settings: dict[str, str] = msgspec.field(default_factory=dict)


def _view(device: RegisteredDevice) -> Device:
    return Device(
        id=device.id,
        tenant=device.tenant,
        name=device.name,
        env=device.env,
        description=device.description,
        settings=device.settings,
        created_at=device.created_at,
    )


def _tenant(tenant: str | None) -> str:
    admin.text_filter("tenant", tenant)
    return tenant if tenant is not None else "default"


@get("/admin/devices", operation_id="listDevices", status_code=200)
async def list_devices(
    ctx: NamedDependency[Context], *, tenant: admin.Q = None, limit: admin.Q = None, cursor: admin.Q = None
) -> Response[bytes]:
    """A tenant's devices, newest first, one page at a time (keyset)."""
    where = _tenant(tenant)
    size = admin.page_size(limit, admin.MAX_LIMIT)
    after = admin.decode_cursor(cursor) if cursor is not None else None
    found, more = await ctx.devices.page(tenant=where, limit=size, after=after)
    next_cursor = admin.encode_cursor(uuid.UUID(found[-1].id)) if more and found else None
    return admin.answer(DevicePage(items=[_view(d) for d in found], next_cursor=next_cursor))


@post("/admin/devices", operation_id="createDevice", status_code=201)
async def create_device(request: Request[Any, Any, Any], ctx: NamedDependency[Context]) -> Response[bytes]:
    """Provision a device, as ``devices add`` does, with its checks."""
    body = await json_body(request, NewDevice)
    device = await device_admin.add_device(
        ctx,
        admin.caller_event(request, "device.created"),
        tenant=body.tenant,
        name=body.name,
        env=body.env,
        description=body.description,
        settings=body.settings,
    )
    return admin.answer(_view(device), status=201)


@get("/admin/devices/{name:str}", operation_id="getDevice", status_code=200)
async def get_device(ctx: NamedDependency[Context], name: Name, tenant: admin.Q = None) -> Response[bytes]:
    """One device of a tenant, by its name."""
    where = _tenant(tenant)
    admin.text_filter("name", name)
    return admin.answer(_view(await ctx.devices.get(tenant=where, name=name)))


@delete("/admin/devices/{name:str}", operation_id="removeDevice", status_code=204)
async def remove_device(
    request: Request[Any, Any, Any], ctx: NamedDependency[Context], name: Name, tenant: admin.Q = None
) -> None:
    """Remove a device, as ``devices remove`` does: new logins on it are refused, its live sessions run on."""
    where = _tenant(tenant)
    admin.text_filter("name", name)
    await device_admin.remove_device(ctx, admin.caller_event(request, "device.removed"), tenant=where, name=name)


@route("/admin/devices", http_method=[HttpMethod.OPTIONS], status_code=204)
async def devices_options() -> Response[None]:
    """The methods of the devices' collection: Litestar's own answer would list only the first handler's."""
    return Response(content=None, status_code=204, headers={"Allow": "GET, OPTIONS, POST"})


@route("/admin/devices/{name:str}", http_method=[HttpMethod.OPTIONS], status_code=204)
async def device_options(name: Name) -> Response[None]:
    """The methods of one device."""
    return Response(content=None, status_code=204, headers={"Allow": "DELETE, GET, OPTIONS"})


handlers = [
    devices_options,  # first: Litestar adds an OPTIONS handler of its own to a path whose first handler lacks one
    device_options,
    list_devices,
    create_device,
    get_device,
    remove_device,
]
"""The devices' admin handlers: ``PortosDialect.admin_controllers``."""
