from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import running_server


@contextmanager
def usual_umask() -> Iterator[None]:
    # 022, under which SQLite left to itself creates the database, its WAL and its SHM readable by everyone.
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


def log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_new_sqlite_database_its_wal_and_its_shm_are_readable_by_their_owner_only(tmp_path):
    path = tmp_path / "data" / "gateway.db"
    with usual_umask(), running_server(f"sqlite+aiosqlite:///{path}", tmp_path) as server:
        assert httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "owner-only"}).status_code == 200
        found = modes(path.parent)
    assert found == {"gateway.db": 0o600, "gateway.db-wal": 0o600, "gateway.db-shm": 0o600}


def test_an_existing_database_readable_by_others_is_made_owner_only_and_the_log_says_so_once(tmp_path):
    path = tmp_path / "data" / "gateway.db"
    with usual_umask(), running_server(f"sqlite+aiosqlite:///{path}", tmp_path):
        pass
    path.chmod(0o644)  # as an earlier version, or a copy, left it
    with usual_umask(), running_server(f"sqlite+aiosqlite:///{path}", tmp_path, workers=2) as server:
        assert httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "tightened"}).status_code == 200
        found = modes(path.parent)
        said = [line for line in log_lines(server.logs()) if line["message"].startswith("database file")]
    assert found == {"gateway.db": 0o600, "gateway.db-wal": 0o600, "gateway.db-shm": 0o600}
    assert len(said) == 1
    assert said[0]["level"] == "warning"
    assert (said[0]["path"], said[0]["mode"], said[0]["now"]) == (str(path), "0644", "0600")
