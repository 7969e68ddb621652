"""The saymon dialect: SAYMON's session-id authentication under ``/node/api/users``."""

from __future__ import annotations

from sessiongate_saymon.plugin import SaymonDialect

__all__ = ("SaymonDialect",)
