from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from sessiongate.storage.outage import is_outage


def failure(path: str, sql: str, *, locked: bool = False) -> DBAPIError:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    if locked:
        holder.execute("BEGIN IMMEDIATE")
    try:
        with engine.begin() as conn, pytest.raises(DBAPIError) as caught:
            conn.execute(text(sql))
        return caught.value
    finally:
        holder.close()
        engine.dispose()


def test_a_locked_database_is_an_outage(tmp_path):
    assert is_outage(failure(str(tmp_path / "db"), "INSERT INTO t VALUES (1)", locked=True))


def test_a_statement_at_fault_is_not_an_outage_and_stays_a_500(tmp_path):
    assert not is_outage(failure(str(tmp_path / "db"), "SELEC 1"))
    assert not is_outage(failure(str(tmp_path / "db"), "SELECT nothing FROM t"))
    assert not is_outage(ValueError("a bug"))
    assert not is_outage(FileNotFoundError("a spec file"))


def test_a_refused_or_unreachable_database_host_is_an_outage():
    assert is_outage(ConnectionRefusedError(111, "Connect call failed"))
    assert is_outage(OSError("Multiple exceptions: [Errno 111] Connect call failed"))
    assert is_outage(TimeoutError())
