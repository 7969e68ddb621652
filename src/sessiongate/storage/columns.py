"""The column types of the gateway's own tables, for a dialect that declares tables of its own (the SDK's ``columns``).

A dialect's statements are SQLAlchemy Core, and a column of plain SQLAlchemy would store ids, instants and JSON
otherwise than the core's do on one of the two databases (a UUID as text on SQLite, an instant without its offset): a
dialect that took over a table the core used to make (portos's ``sg_device``) must read its rows as the core wrote
them, and any dialect's listings compare ids and instants the way the core's do. These are the types the core's tables
use, named here so that no layer above storage imports advanced-alchemy for them.
"""

from __future__ import annotations

from advanced_alchemy.types import GUID, DateTimeUTC, JsonB

__all__ = ("GUID", "DateTimeUTC", "JsonB")
