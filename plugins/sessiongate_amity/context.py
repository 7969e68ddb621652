"""What amity's handlers are given: the shared context, and the networks (tenants) chosen by API key."""

from __future__ import annotations

from sessiongate.dialect import DialectContext, DialectPlugin, Services, TenantService
from sessiongate_amity.options import AmityOptions

__all__ = ("AmityContext",)


class AmityContext(DialectContext[AmityOptions]):
    """:class:`DialectContext`, and ``tenants``: the networks, their keys and auth tokens."""

    def __init__(self, dialect: DialectPlugin[AmityOptions], services: Services) -> None:
        super().__init__(dialect, services)
        self.tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
