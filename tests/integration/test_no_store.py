"""Every dialect's responses carry ``Cache-Control: no-store``, so no shared cache keeps a credential (ASVS V8)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import backends, database
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

ISSP_USER = "1234eigh89b02749e3a41c34"
SAYMON_LOGIN, SAYMON_PASSWORD = "saymon.user@example.com", "saymon-passphrase-1"
PORTOS_LOGIN, PORTOS_PASSWORD = "999", "portos-999-secret"


def cli(database_url: str, *args: str, stdin: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    env |= {"SESSIONGATE_DATABASE_URL": database_url, "SESSIONGATE_AUTO_MIGRATE": "true"}
    done = subprocess.run(
        [sys.executable, "-m", "sessiongate", *args], input=stdin, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=backends())
def gateway(request, tmp_path_factory) -> Iterator[tuple[Server, str]]:
    directory = tmp_path_factory.mktemp(f"no-store-{request.param}")
    with database(request.param, directory) as url:
        cli(url, "db", "upgrade")
        cli(url, "users", "add", "--login", "issp@example.com", "--id", ISSP_USER, "--email", "issp@example.com")
        cli(url, "users", "add", "--login", SAYMON_LOGIN, "--password-stdin", stdin=f"{SAYMON_PASSWORD}\n")
        cli(url, "users", "add", "--login", PORTOS_LOGIN, "--role", "admin", "--password-stdin", stdin=PORTOS_PASSWORD)
        cli(url, "devices", "add", "--name", "BackOffice", "--env", "BackOffice")
        added = cli(url, "keys", "add", "--tenant", "acme")
        api_key = next(line.split(":", 1)[1].strip() for line in added.splitlines() if line.startswith("api key:"))
        with running_server(url, directory) as server:
            yield server, api_key


def assert_no_store(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == ["no-store"], (response.request.url.path, response.status_code)


def test_every_response_carrying_a_token_a_session_id_or_a_cookie_says_no_store(gateway):
    server, api_key = gateway
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        zelf = client.post("/api/sessions", json={"identifier": "device-1"})
        assert zelf.status_code in {200, 201}, zelf.text
        assert_no_store(zelf)

        created = client.post("/api/session/createSession", json={"userID": ISSP_USER})
        validated = client.post("/api/session/validateSession")
        deleted = client.delete("/api/session/deleteSession")
        for response in (created, validated, deleted):
            assert (response.status_code, "set-cookie" in response.headers) == (200, True), response.text
            assert_no_store(response)

        login = client.post("/node/api/users/session", json={"login": SAYMON_LOGIN, "password": SAYMON_PASSWORD})
        logout = client.delete("/node/api/users/session")
        for response in (login, logout):
            assert (response.status_code, "set-cookie" in response.headers) == (200, True), response.text
            assert_no_store(response)

        body = {"UserName": PORTOS_LOGIN, "Password": PORTOS_PASSWORD, "DeviceName": "BackOffice"}
        portos = client.post("/api/auth", json=body)
        assert portos.status_code == 200, portos.text
        refreshed = client.post(
            "/api/auth/refresh",
            json={"tokenId": portos.json()["tokenId"], "refreshToken": portos.json()["refreshToken"]},
        )
        assert refreshed.status_code == 200, refreshed.text
        for response in (portos, refreshed):
            assert_no_store(response)

        amity = client.post(
            "/api/v3/sessions", json={"userId": "carol", "deviceId": "web-1"}, headers={"x-api-key": api_key}
        )
        assert amity.status_code == 200, amity.text
        assert_no_store(amity)


def test_error_responses_of_the_dialects_say_no_store_too(gateway):
    server, _ = gateway
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        refused = [
            client.post("/api/session/validateSession"),
            client.delete("/api/session/deleteSession", headers={"Cookie": "sessionCookie=garbage"}),
            client.post("/node/api/users/session", json={"login": SAYMON_LOGIN, "password": "wrong"}),
            client.delete("/node/api/users/session", headers={"X-Session-Id": "no-such-session"}),
            client.post("/api/auth/refresh", json={"tokenId": "x", "refreshToken": "y"}),
            client.post("/api/sessions", json={}),
        ]
    for response in refused:
        assert 400 <= response.status_code < 500, (response.request.url.path, response.status_code)
        assert_no_store(response)
