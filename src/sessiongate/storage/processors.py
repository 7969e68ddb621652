"""The type processors of the driver paths (:mod:`sessiongate.storage.driver_query`, a create's insert): SQLAlchemy's
own for each column's type on the database's dialect, except for the UTC timestamps on SQLite.

A session's row has six of those, and its create writes them and reads them back. Through SQLAlchemy each goes
through advanced-alchemy's ``DateTimeUTC`` (a Python method, wrapped in a closure) and then SQLite's ``DATETIME``
(another closure, which fills a dict to format the text with ``%``). The functions here give the same text and the
same ``datetime`` with the datetime type's own C methods; tests/unit/test_processors.py holds them equal to
SQLAlchemy's on drawn values, time zones and errors included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = ("bind_processor", "result_processor")

Processor = Callable[[Any], Any] | None


def bind_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """What a value of ``type_`` is sent to ``dialect``'s driver as (``None``: as it is)."""
    if dialect.name == "sqlite" and isinstance(type_, DateTimeUTC):
        return _sqlite_utc_text
    return type_.dialect_impl(dialect).bind_processor(dialect)


def result_processor(type_: TypeEngine[Any], dialect: Dialect) -> Processor:
    """What ``dialect``'s driver returns for ``type_`` is read as (``None``: as it is)."""
    if dialect.name == "sqlite" and isinstance(type_, DateTimeUTC):
        return _sqlite_utc_datetime
    return type_.dialect_impl(dialect).result_processor(dialect, None)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    """``DateTimeUTC`` then SQLite's ``DATETIME``: the instant in UTC, as ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    if value is None:
        return None
    if not value.tzinfo:
        msg = "tzinfo is required"  # advanced-alchemy's refusal of a naive datetime
        raise TypeError(msg)
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_utc_datetime(value: str | None) -> datetime | None:
    """SQLite's ``DATETIME`` then ``DateTimeUTC``: the stored text read as a datetime, in UTC unless it says
    otherwise."""
    if value is None:
        return None
    read = datetime.fromisoformat(value)
    return read if read.tzinfo is not None else read.replace(tzinfo=UTC)
