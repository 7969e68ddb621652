"""What portos's handlers are given: the shared context, and the devices a login names."""

from __future__ import annotations

from sessiongate.dialect import Devices, DialectContext, DialectPlugin, Services
from sessiongate_portos.options import PortosOptions

__all__ = ("PortosContext",)


class PortosContext(DialectContext[PortosOptions]):
    """:class:`DialectContext`, and ``devices``: the tenant's registered devices (S2: a login names one)."""

    def __init__(self, dialect: DialectPlugin[PortosOptions], services: Services) -> None:
        super().__init__(dialect, services)
        self.devices = Devices(services.runner)
