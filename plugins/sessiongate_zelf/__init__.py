"""The zelf dialect: Zelf Name Service's ``POST /api/sessions``."""

from __future__ import annotations

from sessiongate_zelf.plugin import ZelfDialect

__all__ = ("ZelfDialect",)
