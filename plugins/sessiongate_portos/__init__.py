"""The portos dialect: PORTOS's JWT login, refresh and logout, and its NData session resource."""

from __future__ import annotations

from sessiongate_portos.plugin import PortosDialect

__all__ = ("PortosDialect",)
