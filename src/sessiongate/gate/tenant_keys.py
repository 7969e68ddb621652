"""Tenants' keys administered — by ``sessiongate keys`` and by the admin API alike: each change, then its audit event.

One module for both, so that the CLI and the API make the same change and record the same event for it (the only
difference is who made it and from where: ``origin``). Events name a key by its id, kind and last characters; never
its value.
"""

from __future__ import annotations

from datetime import datetime

from msgspec import structs

from sessiongate.identity.tenants import AddedAdminToken, AddedKeys, KeyInfo, TenantService
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, Detail, Kind, NewEvent

__all__ = ("add_admin_token", "add_keys", "expire_key", "revoke_key", "tenant_service")


def tenant_service(services: Services) -> TenantService:
    """The process's tenants and keys."""
    return TenantService(services.engine, services.digester, services.clock, services.runner)


async def add_keys(
    services: Services,
    origin: NewEvent,
    tenant: str,
    *,
    secure: bool = False,
    api_key: str | None = None,
    server_key: str | None = None,
    share_tenant: bool = False,
) -> AddedKeys:
    """Create (or import) a tenant's API key, and its server key when it is secure; one event per key."""
    added = await tenant_service(services).add_keys(
        tenant, secure=secure, api_key=api_key, server_key=server_key, share_tenant=share_tenant
    )
    imported = {"api": api_key is not None, "server": server_key is not None}
    for key in added.keys:
        await _record(services, origin, "api_key.created", key, imported=imported.get(key.kind, False))
    return added


async def add_admin_token(
    services: Services, origin: NewEvent, tenant: str, token: str | None = None
) -> AddedAdminToken:
    """Create (or import) a network's admin token; one event."""
    added = await tenant_service(services).add_admin_token(tenant, token=token)
    await _record(services, origin, "api_key.created", added.key, imported=token is not None)
    return added


async def revoke_key(services: Services, origin: NewEvent, key_id: str) -> tuple[KeyInfo, bool]:
    """End a key at once, and whether this call ended it; an event either way (``changed``)."""
    info, changed = await tenant_service(services).revoke_key(key_id)
    await _record(services, origin, "api_key.revoked", info, changed=changed)
    return info, changed


async def expire_key(services: Services, origin: NewEvent, key_id: str, at: datetime | None = None) -> KeyInfo:
    """Make a key expire now, or at ``at``; one event naming when."""
    info = await tenant_service(services).expire_key(key_id, at)
    expires = info.expires_at.isoformat() if info.expires_at else None
    await _record(services, origin, "api_key.expired", info, expires_at=expires)
    return info


async def _record(
    services: Services, origin: NewEvent, kind: Kind, key: KeyInfo, **extra: str | int | bool | None
) -> None:
    detail: Detail = {"key_id": key.id, "kind": key.kind, "hint": key.hint, **extra}
    event = structs.replace(origin, kind=kind, tenant=key.tenant, detail=detail)
    await AuditLog(services.runner, services.clock).record(event)
