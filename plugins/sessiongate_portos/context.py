"""What portos's handlers (its own, its admin routes and its commands) are given: the shared context, the devices a
login names, and the audit log its administration records in."""

from __future__ import annotations

from sessiongate.dialect import AuditLog, DialectContext, DialectPlugin, Services
from sessiongate_portos.devices import Devices
from sessiongate_portos.options import PortosOptions

__all__ = ("PortosContext",)


class PortosContext(DialectContext[PortosOptions]):
    """:class:`DialectContext`, and ``devices``: the tenant's registered devices (S2: a login names one), kept in
    portos's own table; ``audit``: the gateway's audit log, for the events of the devices' administration."""

    def __init__(self, dialect: DialectPlugin[PortosOptions], services: Services) -> None:
        super().__init__(dialect, services)
        self.devices = Devices(self.storage)
        self.audit = AuditLog(services.runner, services.clock)
