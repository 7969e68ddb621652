from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from sessiongate.core.errors import SessionRevoked, Unauthenticated
from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from sessiongate.storage.identity_tables import auth_tokens, principals
from tests.support.server import running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

FIXED = ExpiryPolicy(ttl=3600, touch_interval=0)
ADDRESS = "192.0.2.10"
SERVER_ENV = {"SESSIONGATE_DIALECTS": "zelf"}  # the server only shares the database here; any dialect will do


@pytest.fixture
def cli(database_url, tmp_path):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    environ |= {"SESSIONGATE_DATABASE_URL": database_url, "SESSIONGATE_AUTO_MIGRATE": "true"}

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sessiongate", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environ,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run


def with_services(database_url, work):
    async def go():
        async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services:
            return await work(services)

    return asyncio.run(go())


def test_users_are_added_listed_disabled_and_enabled(cli, database_url):
    options = "--login ada --email ada@example.org --role admin --role ops --permission manage-users --id p-ada"
    added = cli("users", "add", *options.split(), "--name", "Ada L", "--password-stdin", stdin="correct horse\n")
    assert (added.returncode, added.stdout.strip()) == (0, "p-ada")
    assert cli("users", "add", "--login", "bea").returncode == 0
    listed = cli("users", "list")
    assert listed.returncode == 0
    header, ada, bea = listed.stdout.splitlines()
    assert header.split() == ["tenant", "id", "login", "email", "name", "roles", "permissions", "state", "created"]
    expected = "default p-ada ada ada@example.org Ada L admin,ops manage-users enabled"
    assert ada.split()[:9] == expected.split()
    assert bea.split()[2] == "bea"
    assert "argon2" not in listed.stdout
    assert cli("users", "disable", "--login", "ada").returncode == 0
    assert "disabled" in cli("users", "list", "--tenant", "default").stdout.splitlines()[1]
    assert cli("users", "enable", "--login", "ada").returncode == 0
    principal = with_services(
        database_url,
        lambda s: s.identity.authenticate_password(
            tenant="default", login="ada", password="correct horse", client_address=ADDRESS
        ),
    )
    assert (principal.id, principal.roles, principal.disabled) == ("p-ada", ("admin", "ops"), False)


def test_conflicts_and_unknown_logins_exit_non_zero_with_a_message(cli):
    assert cli("users", "add", "--login", "ada").returncode == 0
    duplicate = cli("users", "add", "--login", "ada")
    assert duplicate.returncode != 0
    assert "login 'ada' already exists" in duplicate.stderr
    for args in (("users", "disable"), ("users", "enable"), ("tokens", "add")):
        unknown = cli(*args, "--login", "nobody")
        assert unknown.returncode != 0
        assert "no principal with login 'nobody'" in unknown.stderr
    assert cli("users", "add", "--login", "x", "--password", "on-the-command-line").returncode == 2
    assert cli("users", "set-password", "--login", "ada", stdin="").returncode == 2


def test_the_cli_works_while_a_server_runs_on_the_same_database(cli, database_url, tmp_path):
    env = SERVER_ENV | {"SESSIONGATE_ADMIN_LOGIN": "root", "SESSIONGATE_ADMIN_PASSWORD": "first-admin-pass"}
    with running_server(database_url, tmp_path, env=env) as server:
        assert cli("users", "add", "--login", "ops", "--password-stdin", stdin="ops-password\n").returncode == 0
        issued = cli("tokens", "add", "--login", "ops")
        assert issued.returncode == 0
        token = issued.stdout.strip()
        listed = cli("users", "list").stdout
        assert server.process.poll() is None

    logins = [line.split()[2] for line in listed.splitlines()[1:]]
    assert sorted(logins) == ["ops", "root"]
    assert "admin" in next(line for line in listed.splitlines() if " root " in line)

    async def check(services):
        holder = await services.identity.authenticate_token(tenant="default", token=token, client_address=ADDRESS)
        stored = (await services.runner.read(select(auth_tokens.c.digest)))[0].digest
        root = await services.identity.authenticate_password(
            tenant="default", login="root", password="first-admin-pass", client_address=ADDRESS
        )
        return holder.login, stored, root.roles

    login, stored, roles = with_services(database_url, check)
    assert (login, roles) == ("ops", ("admin",))
    assert stored != token
    assert token not in server.logs()


def test_a_password_set_from_the_cli_ends_every_session(cli, database_url, tmp_path):
    with running_server(database_url, tmp_path, env=SERVER_ENV):
        assert cli("users", "add", "--login", "ada", "--password-stdin", stdin="old-password\n").returncode == 0

        async def open_sessions(services):
            principal = await services.identity.by_login(tenant="default", login="ada")
            new = NewSession(dialect="test", principal_id=principal.id)
            return [(await services.sessions.create(new, FIXED, with_secret=True)).secret for _ in range(2)]

        secrets = with_services(database_url, open_sessions)
        changed = cli("users", "set-password", "--login", "ada", "--password-stdin", stdin="new-password\n")
        assert changed.returncode == 0, changed.stderr

    async def check(services):
        outcomes = []
        for secret in secrets:
            try:
                await services.sessions.resolve_secret(secret, FIXED)
                outcomes.append("live")
            except SessionRevoked:
                outcomes.append("revoked")
        for password in ("old-password", "new-password"):
            try:
                await services.identity.authenticate_password(
                    tenant="default", login="ada", password=password, client_address=ADDRESS
                )
                outcomes.append("accepted")
            except Unauthenticated:
                outcomes.append("refused")
        hashes = [row.password_hash for row in await services.runner.read(select(principals.c.password_hash))]
        return outcomes, hashes

    outcomes, hashes = with_services(database_url, check)
    assert outcomes == ["revoked", "revoked", "refused", "accepted"]
    assert all(h.startswith("$argon2id$") and "new-password" not in h for h in hashes)


def test_a_user_disabled_from_the_cli_is_refused_by_the_running_server_at_once(cli, database_url, tmp_path):
    # The server keeps a validated session's row between commits; the CLI's commit must end that at once.
    with running_server(database_url, tmp_path, env={"SESSIONGATE_DIALECTS": "saymon"}) as server:
        assert cli("users", "add", "--login", "eve", "--password-stdin", stdin="eve-password\n").returncode == 0
        with httpx.Client(base_url=server.base_url) as client:
            login = client.post("/node/api/users/session", json={"login": "eve", "password": "eve-password"})
            assert login.status_code == 200
            headers = {"X-Session-Id": login.json()}
            assert [client.get("/node/api/users/current", headers=headers).status_code for _ in range(3)] == [200] * 3
            assert cli("users", "disable", "--login", "eve").returncode == 0
            assert client.get("/node/api/users/current", headers=headers).status_code == 401


def test_a_user_deleted_from_the_cli_is_gone_with_its_auth_tokens(cli, database_url):
    assert cli("users", "add", "--login", "ada", "--id", "p-ada").returncode == 0
    assert cli("tokens", "add", "--login", "ada").returncode == 0
    deleted = cli("users", "delete", "--login", "ada")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "deleted ada")
    assert "ada" not in cli("users", "list").stdout
    left = with_services(database_url, lambda s: s.runner.read(select(auth_tokens.c.id)))
    assert list(left) == []
    again = cli("users", "delete", "--login", "ada")
    assert again.returncode != 0
    assert "no principal with login 'ada'" in again.stderr
