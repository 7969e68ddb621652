"""The driver paths' type processors write and read exactly what SQLAlchemy's own do, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from advanced_alchemy.types import DateTimeUTC
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Integer, String
from sqlalchemy.dialects import postgresql, sqlite

from sessiongate.storage.processors import bind_processor, result_processor
from sessiongate.storage.tables import SessionRecord

SQLITE = sqlite.dialect()
UTC_TYPE = DateTimeUTC(timezone=True)

offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
)
aware = st.datetimes(timezones=st.just(UTC) | offsets)
naive = st.datetimes()
# What SQLite may hand back for such a column: what the gateway writes, text of other shapes, and what no one wrote.
stored = (
    aware.map(lambda value: value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds"))
    | st.datetimes().map(str)
    | aware.map(lambda value: value.isoformat())
    | st.text(max_size=30)
    | st.integers()
    | st.none()
)


def _outcome(convert: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", convert(value)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return "error", type(exc)


def _sqlalchemy_bind(type_: Any, dialect: Any) -> Any:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _sqlalchemy_result(type_: Any, dialect: Any) -> Any:
    return type_.dialect_impl(dialect).result_processor(dialect, None)


@given(aware | naive | st.none())
def test_a_timestamp_is_written_for_sqlite_as_sqlalchemy_writes_it(value: datetime | None) -> None:
    ours, theirs = bind_processor(UTC_TYPE, SQLITE), _sqlalchemy_bind(UTC_TYPE, SQLITE)
    assert ours is not theirs
    assert _outcome(ours, value) == _outcome(theirs, value)


@given(stored)
def test_a_timestamp_is_read_from_sqlite_as_sqlalchemy_reads_it(value: Any) -> None:
    ours, theirs = result_processor(UTC_TYPE, SQLITE), _sqlalchemy_result(UTC_TYPE, SQLITE)
    assert ours is not theirs
    got, expected = _outcome(ours, value), _outcome(theirs, value)
    assert got == expected
    if got[0] == "value" and got[1] is not None:
        assert got[1].utcoffset() == expected[1].utcoffset()  # equal instants are not enough: the same zone too


@given(aware)
def test_a_timestamp_written_for_sqlite_reads_back_as_the_same_instant_in_utc(value: datetime) -> None:
    read = result_processor(UTC_TYPE, SQLITE)(bind_processor(UTC_TYPE, SQLITE)(value))  # type: ignore[misc]
    assert read == value
    assert read.tzinfo is UTC


# Every column of a session on both databases, but for the timestamps on SQLite, the ones above.
OTHER_COLUMNS = [
    pytest.param(column, dialect, id=f"{name}-{column.name}")
    for name, dialect in (("sqlite", SQLITE), ("postgresql", postgresql.asyncpg.dialect()))
    for column in SessionRecord.__table__.c
    if not (dialect is SQLITE and isinstance(column.type, DateTimeUTC))
]


@pytest.mark.parametrize(("column", "dialect"), OTHER_COLUMNS)
def test_every_other_column_keeps_sqlalchemys_own_processors(column: Any, dialect: Any) -> None:
    for ours, theirs in (
        (bind_processor(column.type, dialect), _sqlalchemy_bind(column.type, dialect)),
        (result_processor(column.type, dialect), _sqlalchemy_result(column.type, dialect)),
    ):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert ours.__qualname__ == theirs.__qualname__  # a closure made again, of the same function


@pytest.mark.parametrize("type_", [Integer(), String(16)])
def test_plain_types_on_sqlite_are_sqlalchemys(type_: Any) -> None:
    assert (bind_processor(type_, SQLITE) is None) == (_sqlalchemy_bind(type_, SQLITE) is None)
