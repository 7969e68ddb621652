"""Tenant API keys end at once in every process: two real servers on one database, keys revoked and expired by the
real CLI, each refused by both servers on the very next request (no process remembers a key)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sessiongate.identity.tenants import TenantService
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate.storage.tenant_tables import TenantKeyRecord
from tests.support.migrations import differences_from_declared
from tests.support.server import running_server

ENV = {"SESSIONGATE_DIALECTS": "amity"}


def provision(database_url: str) -> list[tuple[str, str]]:
    async def go() -> list[tuple[str, str]]:
        settings = Settings(database_url=database_url, sweep_interval=0)
        async with open_services(settings, migrate=False) as services:
            return await add_two(services)

    return asyncio.run(go())


async def add_two(services: Services) -> list[tuple[str, str]]:
    tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
    values = [(await tenants.add_keys("acme")).api_key for _ in range(2)]
    ids = [key.id for key in await tenants.list_keys()]  # by age: the order they were added in
    return list(zip(values, ids, strict=True))


def cli(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    environ["SESSIONGATE_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "sessiongate", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def register(base_url: str, api_key: str, n: int = 0) -> httpx.Response:
    body = {"userId": f"carol-{n}", "deviceId": "web-1"}
    return httpx.post(f"{base_url}/api/v4/sessions", json=body, headers={"x-api-key": api_key}, timeout=60)


@pytest.mark.slow
def test_a_revoked_or_expired_key_is_refused_by_every_process_on_the_next_request(database_url, tmp_path):
    with running_server(database_url, tmp_path, ENV) as one, running_server(database_url, tmp_path, ENV) as two:
        (first, first_id), (second, second_id) = provision(database_url)
        unknown = register(one.base_url, "no-such-api-key-0123456789abcdef")
        assert unknown.status_code >= 400
        for server in (one, two):  # each process has now read (and, before, would have kept) both keys
            assert register(server.base_url, first).status_code == 200
            assert register(server.base_url, second).status_code == 200

        revoked = cli(database_url, tmp_path, "keys", "revoke", "--id", first_id)
        assert revoked.returncode == 0, revoked.stderr
        for server in (one, two):
            refused = register(server.base_url, first, 1)
            assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())
            assert register(server.base_url, second, 1).status_code == 200
        again = cli(database_url, tmp_path, "keys", "revoke", "--id", first_id)
        assert again.returncode == 0
        assert "already revoked" in again.stdout

        expired = cli(database_url, tmp_path, "keys", "expire", "--id", second_id)
        assert expired.returncode == 0, expired.stderr
        for server in (one, two):
            refused = register(server.base_url, second, 2)
            assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())

    listed = cli(database_url, tmp_path, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[2]: line.split() for line in listed.stdout.splitlines()}
    assert lines[first_id][5] == "revoked"
    assert lines[second_id][5].startswith("expired:")
    assert lines[first_id][6] != "never-used"
    assert first not in listed.stdout


@pytest.mark.slow
def test_a_key_given_a_later_expiry_works_until_then_and_unknown_ids_are_refused(database_url, tmp_path):
    (value, key_id), _ = provision(database_url)
    later = cli(database_url, tmp_path, "keys", "expire", "--id", key_id, "--at", "2999-01-01T00:00:00+00:00")
    assert later.returncode == 0, later.stderr
    assert "2999-01-01" in later.stdout
    with running_server(database_url, tmp_path, ENV) as server:
        assert register(server.base_url, value).status_code == 200
    for args in (("revoke", "--id", "nope"), ("expire", "--id", "00000000-0000-0000-0000-000000000000")):
        refused = cli(database_url, tmp_path, "keys", *args)
        assert refused.returncode != 0
        assert "no such key" in refused.stderr
    for at in ("tomorrow", "9999-12-31T23:59:59-14:00"):
        bad = cli(database_url, tmp_path, "keys", "expire", "--id", key_id, "--at", at)
        assert bad.returncode == 2, bad.stderr
        assert "--at must be" in bad.stderr
        assert "Traceback" not in bad.stderr


def test_migration_0012_creates_what_the_key_table_declares(database_url):
    assert differences_from_declared(database_url, TenantKeyRecord.__tablename__) == []


@pytest.mark.slow
def test_migration_0012_goes_down_and_up_again(database_url, tmp_path):
    down = cli(database_url, tmp_path, "db", "downgrade", "0011")
    assert down.returncode == 0, down.stderr
    assert cli(database_url, tmp_path, "db", "status").returncode == 4  # 0012 pending
    up = cli(database_url, tmp_path, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert cli(database_url, tmp_path, "keys", "list").returncode == 0
