from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from sqlalchemy import make_url

from tests.support.server import Server, free_port, run_command, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow


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


MASTER = "master-key-0123456789abcdef-0123456789abcdef"
OTHER = "another-master-key-0123456789abcdef-0123456"
ADMIN, PASSWORD = "999", "portos-999-secret"
JWT_KEY = "jwt:auto-1"  # the name under which the generated signing key is kept


def provision(database_url: str, directory: Path, env: dict[str, str]) -> None:
    """A portos admin and a device to log in on, made from the CLI as an operator would."""
    added = run_command(
        database_url, directory, "users", "add", "--login", ADMIN, "--role", "admin", "--password-stdin",
        env=env, stdin=f"{PASSWORD}\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    device = run_command(
        database_url, directory, "devices", "add", "--name", "BackOffice", "--env", "BackOffice", env=env
    )
    assert device.returncode == 0, device.stderr


def log_in(server: Server) -> str:
    body = {"UserName": ADMIN, "Password": PASSWORD, "DeviceName": "BackOffice"}
    response = httpx.post(f"{server.base_url}/api/auth", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["tokenId"])


def list_sessions(server: Server, token: str) -> int:
    """The status of the admin's listing of every session of the tenant, with ``token``."""
    return httpx.get(
        f"{server.base_url}/sessions", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).status_code


def copied_secrets(database_url: str, directory: Path) -> dict[str, str]:
    """What a copy of the database holds in ``sg_secret``."""
    if database_url.startswith("sqlite"):
        copy = directory / "copy.db"
        copy.unlink(missing_ok=True)
        live = sqlite3.connect(make_url(database_url).database or "")
        duplicate = sqlite3.connect(copy)
        try:
            live.backup(duplicate)
            return dict(duplicate.execute("SELECT name, value FROM sg_secret").fetchall())
        finally:
            duplicate.close()
            live.close()

    async def read() -> dict[str, str]:
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        try:
            return {r["name"]: r["value"] for r in await conn.fetch("SELECT name, value FROM sg_secret")}
        finally:
            await conn.close()

    return asyncio.run(read())


def forge(token: str, key: str) -> str:
    """``token``'s claims, with its ``kid``, signed with ``key``: what a copy of the database lets one try."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": jwt.get_unverified_header(token)["kid"]})


def refused_start(database_url: str, directory: Path, env: dict[str, str]) -> list[str]:
    """What ``sessiongate serve`` says when it refuses to start; it must not serve."""
    done = run_command(database_url, directory, "serve", "--port", str(free_port()), env=env)
    assert done.returncode != 0, done.stdout + done.stderr
    return (done.stdout + done.stderr).splitlines()


def test_without_a_master_key_a_copy_of_the_database_forges_tokens(database_url, tmp_path):
    # What a master key is for, and proof that forge() forges: the keys are kept in clear without one.
    provision(database_url, tmp_path, {})
    with running_server(database_url, tmp_path) as server:
        token = log_in(server)
        assert list_sessions(server, forge(token, copied_secrets(database_url, tmp_path)[JWT_KEY])) == 200


def test_with_a_master_key_a_copy_of_the_database_forges_nothing_and_a_restart_keeps_the_tokens(database_url, tmp_path):
    env = {"SESSIONGATE_SECRET_KEY": MASTER}
    provision(database_url, tmp_path, env)
    with running_server(database_url, tmp_path, env=env) as server:
        token = log_in(server)
        assert list_sessions(server, token) == 200
        kept = copied_secrets(database_url, tmp_path)
        # The admin's session claims, signed with each value a copy of the database holds.
        forged = [forge(token, value) for value in kept.values()]
        assert [list_sessions(server, f) for f in forged] == [401] * len(kept)
    with running_server(database_url, tmp_path, env=env) as restarted:
        assert list_sessions(restarted, token) == 200
        assert [list_sessions(restarted, f) for f in forged] == [401] * len(kept)
    assert MASTER not in server.logs() + restarted.logs()


def test_keys_kept_in_clear_are_encrypted_at_the_first_start_with_a_master_key_and_tokens_still_work(
    database_url, tmp_path
):
    provision(database_url, tmp_path, {})
    with running_server(database_url, tmp_path) as server:
        token = log_in(server)
    in_clear = copied_secrets(database_url, tmp_path)
    with running_server(database_url, tmp_path, env={"SESSIONGATE_SECRET_KEY": MASTER}) as server:
        assert list_sessions(server, token) == 200
        encrypted = copied_secrets(database_url, tmp_path)
        assert list_sessions(server, forge(token, encrypted[JWT_KEY])) == 401
    assert set(encrypted) == set(in_clear)
    assert not any(key in value for key in in_clear.values() for value in encrypted.values())


def test_a_database_with_encrypted_keys_refuses_to_start_without_its_master_key_in_one_clear_line(
    database_url, tmp_path
):
    with running_server(database_url, tmp_path, env={"SESSIONGATE_SECRET_KEY": MASTER}):
        pass
    kept = copied_secrets(database_url, tmp_path)
    without = refused_start(database_url, tmp_path, {})
    wrong = refused_start(database_url, tmp_path, {"SESSIONGATE_SECRET_KEY": OTHER})
    assert len(without) == 1
    assert "SESSIONGATE_SECRET_KEY" in without[0]
    assert len(wrong) == 1
    assert "another master key" in wrong[0]
    assert copied_secrets(database_url, tmp_path) == kept  # no new key was made, which would end every session
    assert not any(secret in line for secret in (MASTER, OTHER, *kept.values()) for line in without + wrong)


def test_the_master_key_rotates_with_secrets_rewrap_and_tokens_outlive_the_rotation(database_url, tmp_path):
    old, new = {"SESSIONGATE_SECRET_KEY": MASTER}, {"SESSIONGATE_SECRET_KEY": OTHER}
    provision(database_url, tmp_path, old)
    with running_server(database_url, tmp_path, env=old) as server:
        token = log_in(server)
    rewrapped = run_command(
        database_url, tmp_path, "secrets", "rewrap", env=new | {"SESSIONGATE_SECRET_KEY_PREVIOUS": MASTER}
    )
    assert rewrapped.returncode == 0, rewrapped.stderr
    assert sorted(rewrapped.stdout.splitlines()) == [
        "digest-key: re-encrypted under the current master key (was under a previous one)",
        "jwt:auto-1: re-encrypted under the current master key (was under a previous one)",
    ]
    with running_server(database_url, tmp_path, env=new) as server:
        assert list_sessions(server, token) == 200
    assert "another master key" in refused_start(database_url, tmp_path, old)[0]


def started_workers(server: Server, workers: int) -> list[dict]:
    """The server's log lines once each of its ``workers`` has said it started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = log_lines(server.logs())
        if sum(line["message"] == "started" for line in lines) >= workers:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"{workers} workers did not start:\n{server.logs()}")


def test_in_production_without_a_master_key_the_gateway_says_once_that_its_keys_are_kept_in_clear(
    database_url, tmp_path
):
    production = {"SESSIONGATE_ENVIRONMENT": "production"}
    with running_server(database_url, tmp_path, env=production, workers=2) as server:
        said = [line for line in started_workers(server, 2) if "SESSIONGATE_SECRET_KEY" in line["message"]]
    assert [line["level"] for line in said] == ["warning"]
    assert "in clear" in said[0]["message"]
    encrypted = production | {"SESSIONGATE_SECRET_KEY": MASTER}
    with running_server(database_url, tmp_path, env=encrypted, workers=2) as server:
        assert not [line for line in started_workers(server, 2) if "SESSIONGATE_SECRET_KEY" in line["message"]]
