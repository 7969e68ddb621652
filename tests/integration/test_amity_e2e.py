from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.databases import backends, database
from tests.support.server import Server, running_server

V3, V4, V5 = "/api/v3/sessions", "/api/v4/sessions", "/api/v5/sessions"
UNAUTHORIZED = {"status": "error", "code": 400100, "message": "Unauthorized"}
FORBIDDEN = {"status": "error", "code": 400300, "message": "Forbidden error."}
SUCCESS = b'{"success":true}'
_networks = itertools.count(1)


@dataclass(frozen=True)
class Gateway:
    server: Server
    database_url: str
    directory: Path

    def url(self, path: str) -> str:
        return f"{self.server.base_url}{path}"

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
        environ["SESSIONGATE_DATABASE_URL"] = self.database_url
        return subprocess.run(
            [sys.executable, "-m", "sessiongate", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=environ,
            cwd=self.directory,
            timeout=120,
            check=False,
        )

    def printed(self, *args: str, stdin: str | None = None) -> dict[str, str]:
        done = self.cli(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in done.stdout.splitlines())}

    def network(self, *options: str) -> tuple[str, dict[str, str]]:
        """A network of its own for one test, and its keys as ``keys add`` printed them."""
        name = f"net-{next(_networks)}"
        return name, self.printed("keys", "add", "--tenant", name, *options)

    def register(self, api_key: str, user: str, device: str, **headers: str) -> httpx.Response:
        body = {"userId": user, "deviceId": device}
        return httpx.post(self.url(V5), json=body, headers={"x-api-key": api_key, **headers})

    def token(self, api_key: str, user: str, device: str) -> str:
        response = self.register(api_key, user, device)
        assert response.status_code == 200, response.text
        return str(response.json()["accessToken"])

    def verify(self, token: str) -> int:
        return httpx.get(self.url(V3), headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture(scope="module", params=backends())
def gateway(request, tmp_path_factory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp(f"amity-e2e-{request.param}")
    env = {"SESSIONGATE_DIALECTS": "amity,portos"}
    with database(request.param, directory) as url, running_server(url, directory, env=env) as server:
        yield Gateway(server=server, database_url=url, directory=directory)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- revoking a user's tokens needs the network's admin token ------------------------------------------------------


def test_the_x_admin_token_form_with_a_json_body_revokes_every_token_of_a_user(gateway):
    network, keys = gateway.network()
    admin = gateway.printed("keys", "add-admin", "--tenant", network)["admin token"]
    tokens = [gateway.token(keys["api key"], "ada", device) for device in ("phone", "tablet")]
    bystander = gateway.token(keys["api key"], "bob", "desk")
    response = httpx.request("DELETE", gateway.url(V4), json={"userId": "ada"}, headers={"x-admin-token": admin})
    assert (response.status_code, response.content) == (200, SUCCESS)
    assert response.headers["content-type"] == "application/json"
    assert [gateway.verify(t) for t in tokens] == [401, 401]
    assert gateway.verify(bystander) == 200


def test_the_admin_token_as_a_bearer_revokes_by_query_and_by_path(gateway):
    network, keys = gateway.network()
    admin = gateway.printed("keys", "add-admin", "--tenant", network)["admin token"]
    first = gateway.token(keys["api key"], "ada", "phone")
    response = httpx.delete(gateway.url(V4), params={"userId": "ada"}, headers=bearer(admin))
    assert (response.status_code, response.content) == (200, SUCCESS)
    assert gateway.verify(first) == 401
    second = gateway.token(keys["api key"], "ada", "phone")
    response = httpx.delete(gateway.url(f"{V4}/users/ada"), headers=bearer(admin))
    assert (response.status_code, response.content) == (200, SUCCESS)
    assert gateway.verify(second) == 401


def test_a_users_session_never_revokes_another_users_tokens(gateway):
    _, keys = gateway.network()
    victim = gateway.token(keys["api key"], "victim", "v")
    mallory = gateway.token(keys["api key"], "mallory", "m")
    for response in (
        httpx.delete(gateway.url(V4), params={"userId": "victim"}, headers=bearer(mallory)),
        httpx.request("DELETE", gateway.url(V4), json={"userId": "victim"}, headers=bearer(mallory)),
        httpx.delete(gateway.url(f"{V4}/users/victim"), headers=bearer(mallory)),
    ):
        assert (response.status_code, response.json()) == (403, FORBIDDEN)
    assert gateway.verify(victim) == 200


def test_an_unknown_admin_token_is_401_and_revokes_nothing(gateway):
    _, keys = gateway.network()
    victim = gateway.token(keys["api key"], "victim", "v")
    for headers in ({"x-admin-token": "not-an-admin-token-0123456789"}, bearer("not-an-admin-token-0123456789")):
        response = httpx.request("DELETE", gateway.url(V4), json={"userId": "victim"}, headers=headers)
        assert (response.status_code, response.json()) == (401, UNAUTHORIZED)
    assert gateway.verify(victim) == 200
