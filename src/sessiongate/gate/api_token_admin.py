"""The gateway's API tokens administered — by ``sessiongate admin-tokens`` and by the admin API alike: each change,
then its audit event.

One module for both, so that the CLI and the API make the same change, with the same checks
(:meth:`ApiTokens.add`), and record the same event for it; the only difference is who made it and from where
(``origin``: actor ``cli`` or ``admin-token:<name>``). Events name a token by its name, scope and first characters;
never its value.
"""

from __future__ import annotations

from msgspec import structs

from sessiongate.gate.tokens import AddedToken, ApiTokenInfo, ApiTokens
from sessiongate.runtime import Services
from sessiongate.sessions.audit import AuditLog, Detail, Kind, NewEvent

__all__ = ("add_token", "api_tokens", "revoke_token")


def api_tokens(services: Services) -> ApiTokens:
    """The process's API tokens."""
    return ApiTokens(services.runner, services.digester, services.clock)


async def add_token(
    services: Services, origin: NewEvent, name: str, scope: str, value: str | None = None
) -> AddedToken:
    """Create (or import, when ``value`` is given) a token; one event, saying whether it was imported."""
    added = await api_tokens(services).add(name, scope, value=value)
    await _record(services, origin, "admin_token.created", added.info, imported=value is not None)
    return added


async def revoke_token(services: Services, origin: NewEvent, name: str) -> tuple[ApiTokenInfo, bool]:
    """Revoke a token at once in every process, and whether this call revoked it; an event either way
    (``changed``), so a revoke asked for is always on record."""
    info, changed = await api_tokens(services).revoke(name)
    await _record(services, origin, "admin_token.revoked", info, changed=changed)
    return info, changed


async def _record(
    services: Services, origin: NewEvent, kind: Kind, token: ApiTokenInfo, **extra: str | int | bool | None
) -> None:
    detail: Detail = {"name": token.name, "scope": token.scope, "prefix": token.prefix, **extra}
    event = structs.replace(origin, kind=kind, detail=detail)
    await AuditLog(services.runner, services.clock).record(event)
