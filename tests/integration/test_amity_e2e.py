from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.databases import backends, database
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

V3, V4, V5 = "/api/v3/sessions", "/api/v4/sessions", "/api/v5/sessions"
UNAUTHORIZED = b'{"status":"error","code":400100,"message":"Unauthorized"}'
FORBIDDEN = b'{"status":"error","code":400300,"message":"Forbidden error."}'
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
        assert (response.status_code, response.content) == (403, FORBIDDEN)
    assert gateway.verify(victim) == 200


def test_an_unknown_admin_token_is_401_and_revokes_nothing(gateway):
    _, keys = gateway.network()
    victim = gateway.token(keys["api key"], "victim", "v")
    for headers in ({"x-admin-token": "not-an-admin-token-0123456789"}, bearer("not-an-admin-token-0123456789")):
        response = httpx.request("DELETE", gateway.url(V4), json={"userId": "victim"}, headers=headers)
        assert (response.status_code, response.content) == (401, UNAUTHORIZED)
    assert gateway.verify(victim) == 200


# -- an amity key reaches only the network's own amity users -------------------------------------------------------


def test_an_amity_key_never_reaches_a_principal_provisioned_with_users_add(gateway):
    network, keys = gateway.network()
    added = gateway.cli(
        "users", "add", "--tenant", network, "--login", "999", "--role", "admin", "--permission", "admin",
        "--password-stdin", stdin="portos-999-secret\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    admin_id = added.stdout.strip()
    for user_id in (admin_id, "999"):
        response = gateway.register(keys["api key"], user_id, "kiosk")
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/json"
        message = f"userId {user_id!r} belongs to another principal"
        assert response.content == b'{"status":"error","code":400900,"message":"%s"}' % message.encode()
    user = gateway.register(keys["api key"], "carol", "kiosk").json()["users"][0]
    assert (user["roles"], user["permissions"]) == ([], [])


def test_keys_add_refuses_a_tenant_holding_provisioned_principals_unless_told_to_share_it(gateway):
    tenant = "shop-e2e"
    assert gateway.cli("users", "add", "--tenant", tenant, "--login", "ops").returncode == 0
    refused = gateway.cli("keys", "add", "--tenant", tenant)
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"tenant {tenant!r} holds 1 principal provisioned with `users add`" in refused.stderr
    shared = gateway.cli("keys", "add", "--tenant", tenant, "--share-tenant")
    assert shared.returncode == 0, shared.stderr
    assert f"warning: tenant {tenant!r} is shared with 1 principal" in shared.stderr
    api_key = dict(line.split(":", 1) for line in shared.stdout.splitlines())["api key"].strip()
    assert gateway.register(api_key, "ops", "d").status_code == 409
    assert gateway.register(api_key, "carol", "d").status_code == 200


def test_a_portos_admin_of_a_shared_tenant_lists_amity_sessions_under_the_user_id_they_registered(gateway):
    password = "portos-999-secret\n"
    assert (
        gateway.cli("users", "add", "--login", "999", "--role", "admin", "--password-stdin", stdin=password).returncode
        == 0
    )
    assert gateway.cli("devices", "add", "--name", "P01", "--env", "CashRegister").returncode == 0
    keys = gateway.printed("keys", "add", "--tenant", "default", "--share-tenant")
    assert gateway.register(keys["api key"], "ada", "web-1").status_code == 200
    assert gateway.register(keys["api key"], "999", "web-2").status_code == 409
    login = {"UserName": "999", "Password": password.strip(), "DeviceName": "P01"}
    token = httpx.post(gateway.url("/api/auth"), json=login).json()["tokenId"]
    items = httpx.get(gateway.url("/sessions"), headers=bearer(token)).json()["items"]
    amity = [i["identity"] for i in items if i["identity"]["authenticationType"] == "amity"]
    assert amity == [{"userName": "ada", "deviceName": "web-1", "envName": "amity", "authenticationType": "amity"}]


# -- a device taken over by another user keeps none of the previous user's tokens ----------------------------------


def test_a_takeover_ends_every_earlier_token_of_the_device_at_once(gateway):
    _, keys = gateway.network()
    a1 = gateway.token(keys["api key"], "alice", "D")
    a2 = gateway.token(keys["api key"], "alice", "D")
    assert gateway.verify(a1) == 200  # the same user again: the renewed token's grace period
    mallory = gateway.token(keys["api key"], "mallory", "D")
    for token in (a1, a2):
        response = httpx.get(gateway.url(V3), headers=bearer(token))
        assert (response.status_code, response.content) == (401, UNAUTHORIZED)
        assert response.headers["content-type"] == "application/json"
    assert gateway.verify(mallory) == 200


# -- boolean query parameters in any letter case ------------------------------------------------------------------


def test_is_public_is_read_in_any_letter_case_over_http(gateway):
    network, keys = gateway.network()
    admin = gateway.printed("keys", "add-admin", "--tenant", network)["admin token"]
    ada = gateway.register(keys["api key"], "ada", "phone").json()
    internal = ada["users"][0]["_id"]
    response = httpx.delete(gateway.url(f"{V4}/users/{internal}"), params={"isPublic": "FALSE"}, headers=bearer(admin))
    assert (response.status_code, response.content) == (200, SUCCESS)
    assert gateway.verify(ada["accessToken"]) == 401
    own = gateway.token(keys["api key"], "bob", "desk")
    response = httpx.delete(gateway.url(V4), params={"isPublic": "True"}, headers=bearer(own))
    assert (response.status_code, response.content) == (200, SUCCESS)
    assert gateway.verify(own) == 401


# -- amity users that no registration uses any more are swept -------------------------------------------------------


@pytest.mark.parametrize("kind", backends())
def test_the_servers_sweeper_deletes_amity_users_no_longer_used(kind, tmp_path):
    # A one-second token lifetime and a fast sweeper, so that "longer than a token lives" passes in a test.
    env = {"SESSIONGATE_DIALECTS": "amity", "SESSIONGATE_AMITY__LIFETIME": "1", "SESSIONGATE_SWEEP_INTERVAL": "0.2"}
    with database(kind, tmp_path) as url, running_server(url, tmp_path, env=env) as server:
        gateway = Gateway(server=server, database_url=url, directory=tmp_path)
        network, keys = gateway.network()
        assert gateway.cli("users", "add", "--tenant", network, "--login", "ops").returncode == 0
        gateway.token(keys["api key"], "ada", "phone")
        deadline = time.monotonic() + 60  # the sweeper runs five times a second: generous on a loaded machine

        def logins() -> list[str]:  # the login column: "ada" may also be part of a user's id
            listed = gateway.cli("users", "list", "--tenant", network).stdout
            return [line.split()[2] for line in listed.splitlines()[1:]]

        while "ada" in (left := logins()):
            assert time.monotonic() < deadline, left
            time.sleep(0.5)
        assert left == ["ops"]  # an operator's is never swept
        assert gateway.register(keys["api key"], "ada", "phone").status_code == 200


# -- the contract run is not blind ---------------------------------------------------------------------------------

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
ROOT = Path(__file__).resolve().parents[2]


def schemathesis_run(gateway: Gateway, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AMITY_", "SCHEMATHESIS_"))} | env
    args = ["--config-file", str(ROOT / "contracts" / "schemathesis.toml"), "run", str(ROOT / "openapi" / "amity.yaml")]
    options = ["--url", gateway.server.base_url, "--phases", "examples,coverage,fuzzing", "--max-examples", "3"]
    return subprocess.run(
        [str(SCHEMATHESIS), *args, *options, "--generation-deterministic"],
        capture_output=True,
        text=True,
        env=environ,
        cwd=gateway.directory,
        timeout=600,
        check=False,
    )


def test_the_schemathesis_cli_exercises_every_amity_operation_and_fails_a_blind_run(gateway):
    network, keys = gateway.network()
    admin = gateway.printed("keys", "add-admin", "--tenant", network)["admin token"]
    _, vault = gateway.network("--secure")
    blind = schemathesis_run(gateway, {})
    assert blind.returncode != 0
    assert "Authentication failed" in blind.stdout
    credentials = {
        "AMITY_API_KEY": keys["api key"],
        "AMITY_ADMIN_TOKEN": admin,
        "AMITY_SERVER_KEY": vault["server key"],
    }
    hooks = {"SCHEMATHESIS_HOOKS": str(ROOT / "contracts" / "amity" / "hooks.py")}
    seen = schemathesis_run(gateway, hooks | credentials)
    assert seen.returncode == 0, seen.stdout
    assert "Authentication failed" not in seen.stdout
