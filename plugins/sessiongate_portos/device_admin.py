"""Tenants' devices administered — by ``sessiongate devices`` and by the admin API alike: each change, then its audit
event.

One module for both, so that the CLI and the API make the same change, with the same checks
(:func:`~sessiongate_portos.devices.check_new_device`, through :meth:`Devices.add`), and record the same event for
it; the only difference is who made it and from where (``origin``: actor ``cli`` or ``admin-token:<name>``). Events
name a device by its id, name and environment; a device holds no secret. The audit log is the gateway's: the events
keep their kinds (``device.created``, ``device.removed``) and are listed with every other.
"""

from __future__ import annotations

from typing import Literal

from msgspec import structs

from sessiongate.dialect import NewEvent
from sessiongate_portos.context import PortosContext
from sessiongate_portos.devices import RegisteredDevice

__all__ = ("add_device", "remove_device")

DeviceEvent = Literal["device.created", "device.removed"]


async def add_device(
    ctx: PortosContext,
    origin: NewEvent,
    *,
    tenant: str,
    name: str,
    env: str,
    description: str | None = None,
    settings: dict[str, str] | None = None,
) -> RegisteredDevice:
    """Provision a device; one event."""
    device = await ctx.devices.add(
        tenant=tenant, name=name, env=env, now=ctx.services.clock(), description=description, settings=settings
    )
    await _record(ctx, origin, "device.created", device)
    return device


async def remove_device(ctx: PortosContext, origin: NewEvent, *, tenant: str, name: str) -> RegisteredDevice:
    """Remove a device, answered as it was; one event. Its live sessions are left to run until they expire or are
    ended (a new login on the name is refused from now on)."""
    device = await ctx.devices.remove(tenant=tenant, name=name)
    await _record(ctx, origin, "device.removed", device)
    return device


async def _record(ctx: PortosContext, origin: NewEvent, kind: DeviceEvent, device: RegisteredDevice) -> None:
    event = structs.replace(
        origin,
        kind=kind,
        tenant=device.tenant,
        detail={"device_id": device.id, "name": device.name, "env": device.env},
    )
    await ctx.audit.record(event)
