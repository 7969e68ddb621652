"""Principals' auth tokens (SAYMON's long-lived ``auth-token``) administered — by ``sessiongate tokens`` and by the
admin API alike: each change, then its audit event.

One module for both, so that the CLI and the API make the same change and record the same event for it; the only
difference is who made it and from where (``origin``: actor ``cli`` or ``admin-token:<name>``). The CLI names a
principal by its login, the API by its public id (which it reads the login of): the event names both, the public id
as ``principal_id`` as every event does. An event never holds a token: a token is shown once, to whoever made it.
"""

from __future__ import annotations

from msgspec import structs

from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, Detail, Kind, NewEvent

__all__ = ("add_auth_token", "revoke_auth_tokens")


async def add_auth_token(services: Services, origin: NewEvent, *, tenant: str, login: str, replace: bool) -> str:
    """A new auth token of the principal ``login`` names, shown to the caller once; with ``replace`` its other ones
    are revoked in the same transaction. One event, saying whether the others were replaced.

    Raises:
        NotFound: no such login in the tenant.
    """
    token = await services.identity.add_auth_token(tenant=tenant, login=login, replace=replace)
    await _record(services, origin, "auth_token.created", tenant, login, replace=replace)
    return token


async def revoke_auth_tokens(services: Services, origin: NewEvent, *, tenant: str, login: str) -> int:
    """Revoke every auth token of a principal, and how many this call revoked; an event either way
    (``detail.revoked``: 0 when there was none), so a revoke asked for is always on record.

    Raises:
        NotFound: no such login in the tenant.
    """
    count = await services.identity.revoke_auth_tokens(tenant=tenant, login=login)
    await _record(services, origin, "auth_token.revoked", tenant, login, revoked=count)
    return count


async def _record(
    services: Services, origin: NewEvent, kind: Kind, tenant: str, login: str, **extra: str | int | bool | None
) -> None:
    found = await services.identity.by_login(tenant=tenant, login=login)
    principal_id = found.id if found is not None else None  # deleted since: the event still names its login
    detail: Detail = {"login": login, **extra}
    event = structs.replace(origin, kind=kind, tenant=tenant, principal_id=principal_id, detail=detail)
    await AuditLog(services.runner, services.clock).record(event)
