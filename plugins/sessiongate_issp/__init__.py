"""The issp dialect: the BCIT ISSP dashboard's ``/api/session`` routes and its JSON ``sessionCookie``."""

from __future__ import annotations

from sessiongate_issp.plugin import IsspDialect

__all__ = ("IsspDialect",)
