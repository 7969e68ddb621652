"""Tenants' devices administered — by ``sessiongate devices`` and by the admin API alike: each change, then its audit
event.

One module for both, so that the CLI and the API make the same change, with the same checks
(:func:`~sessiongate.identity.devices.check_new_device`, through :meth:`Devices.add`), and record the same event for
it; the only difference is who made it and from where (``origin``: actor ``cli`` or ``admin-token:<name>``). Events
name a device by its id, name and environment; a device holds no secret.
"""

from __future__ import annotations

from msgspec import structs

from sessiongate.identity.devices import Devices, RegisteredDevice
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, Detail, Kind, NewEvent

__all__ = ("add_device", "devices", "remove_device")


def devices(services: Services) -> Devices:
    """The process's devices."""
    return Devices(services.runner)


async def add_device(
    services: Services,
    origin: NewEvent,
    *,
    tenant: str,
    name: str,
    env: str,
    description: str | None = None,
    settings: dict[str, str] | None = None,
) -> RegisteredDevice:
    """Provision a device; one event."""
    device = await devices(services).add(
        tenant=tenant, name=name, env=env, now=services.clock(), description=description, settings=settings
    )
    await _record(services, origin, "device.created", device)
    return device


async def remove_device(services: Services, origin: NewEvent, *, tenant: str, name: str) -> RegisteredDevice:
    """Remove a device, answered as it was; one event. Its live sessions are left to run until they expire or are
    ended (a new login on the name is refused from now on)."""
    device = await devices(services).remove(tenant=tenant, name=name)
    await _record(services, origin, "device.removed", device)
    return device


async def _record(services: Services, origin: NewEvent, kind: Kind, device: RegisteredDevice) -> None:
    detail: Detail = {"device_id": device.id, "name": device.name, "env": device.env}
    event = structs.replace(origin, kind=kind, tenant=device.tenant, detail=detail)
    await AuditLog(services.runner, services.clock).record(event)
