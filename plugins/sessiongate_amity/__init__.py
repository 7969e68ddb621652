"""The amity dialect: Amity Social Cloud (social.plus) sessions, networks chosen by API key."""

from __future__ import annotations

from sessiongate_amity.plugin import AmityDialect

__all__ = ("AmityDialect",)
