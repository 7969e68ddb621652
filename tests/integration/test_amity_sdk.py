from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest

from sessiongate.identity.tenants import AddedKeys, TenantService
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from tests.conftest import ROOT
from tests.support.databases import backends, database
from tests.support.server import Server, running_server

pytestmark = pytest.mark.clients

NODE = shutil.which("node")
SCRIPT = ROOT / "clients" / "amity-sdk.mjs"
SDK = ROOT / "clients" / "node_modules" / "@amityco" / "ts-sdk"
VERIFY = "/api/v3/sessions"


@dataclass(frozen=True)
class Gateway:
    server: Server
    database_url: str

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module", params=backends())
def gateway(request, tmp_path_factory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("amity-sdk")
    # Grace 0: a renewed token ends at once, so what the SDK's renewal did is visible from outside.
    env = {"SESSIONGATE_AMITY__RENEWAL_GRACE": "0"}
    with database(request.param, directory) as url, running_server(url, directory, env=env) as server:
        yield Gateway(server=server, database_url=url)


def add_keys(gateway: Gateway, tenant: str, *, secure: bool = False) -> AddedKeys:
    async def go() -> AddedKeys:
        async with open_services(Settings(database_url=gateway.database_url, sweep_interval=0), migrate=False) as s:
            return await TenantService(s.engine, s.digester, s.clock, s.runner).add_keys(tenant, secure=secure)

    return asyncio.run(go())


def node(gateway: Gateway, api_key: str, user: str, **extra: str) -> subprocess.CompletedProcess[str]:
    if NODE is None:
        pytest.fail("Node.js is needed to drive the Amity TypeScript SDK: install Node.js 20 or newer")
    if not (SDK / "package.json").is_file():
        pytest.fail("the Amity SDK is not installed: run `npm ci --prefix clients` (or `npm install --prefix clients`)")
    env = {
        **os.environ,
        "AMITY_URL": gateway.base_url,
        "AMITY_API_KEY": api_key,
        "AMITY_USER_ID": user,
        "AMITY_DISPLAY_NAME": f"{user.title()} Lovelace",
        **extra,
    }
    return subprocess.run([NODE, str(SCRIPT)], capture_output=True, text=True, timeout=120, env=env, check=False)


def run_sdk(gateway: Gateway, api_key: str, user: str, **extra: str) -> dict:
    done = node(gateway, api_key, user, **extra)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{gateway.server.logs()}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def verify(gateway: Gateway, token: str) -> int:
    return httpx.get(f"{gateway.base_url}{VERIFY}", headers={"Authorization": f"Bearer {token}"}).status_code


def mint(gateway: Gateway, server_key: str, user: str) -> str:
    response = httpx.post(f"{gateway.base_url}/api/v4/authentication/token", json={"userId": user},
                          headers={"x-server-key": server_key})  # fmt: skip
    assert response.status_code == 200, response.text
    return response.text


def test_the_published_sdk_logs_in_renews_and_logs_out(gateway):
    report = run_sdk(gateway, add_keys(gateway, "sdk").api_key, "ada")
    login, renewed, out = report["afterLogin"], report["afterRenewal"], report["afterLogout"]
    assert report["loggedIn"] is True
    assert (login["sessionState"], login["userId"]) == ("established", "ada")
    assert report["afterLogin"]["activeUser"]["userId"] == "ada"
    assert login["authorization"] == f"Bearer {login['accessToken']}"
    assert renewed["sessionState"] == "established"
    assert renewed["accessToken"] != login["accessToken"]
    assert renewed["authorization"] == f"Bearer {renewed['accessToken']}"
    assert renewed["expiresAt"] >= login["expiresAt"]
    assert report["loggedOut"] is True
    assert (out["sessionState"], out["accessToken"], out["authorization"]) == ("notLoggedIn", None, None)
    assert report["states"] == ["establishing", "established", "establishing", "established", "notLoggedIn"]
    assert verify(gateway, login["accessToken"]) == 401  # renewed (grace 0)
    assert verify(gateway, renewed["accessToken"]) == 401  # logged out


def test_the_sdk_sees_the_thirty_day_lifetime_the_gateway_granted(gateway):
    report = run_sdk(gateway, add_keys(gateway, "sdk-life").api_key, "bob")
    login = report["afterLogin"]
    start = datetime.fromisoformat(login["issuedAt"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(login["expiresAt"].replace("Z", "+00:00"))
    assert end - start == timedelta(days=30)


def test_the_sdk_logs_in_to_a_secure_network_with_auth_tokens(gateway):
    keys = add_keys(gateway, "sdk-secure", secure=True)
    assert keys.server_key is not None
    report = run_sdk(
        gateway,
        keys.api_key,
        "cleo",
        AMITY_AUTH_TOKEN=mint(gateway, keys.server_key, "cleo"),
        AMITY_RENEW_AUTH_TOKEN=mint(gateway, keys.server_key, "cleo"),
    )
    assert report["loggedIn"] is True
    assert report["afterRenewal"]["accessToken"] != report["afterLogin"]["accessToken"]
    assert report["loggedOut"] is True


def test_the_sdk_cannot_log_in_to_a_secure_network_without_an_auth_token(gateway):
    keys = add_keys(gateway, "sdk-locked", secure=True)
    done = node(gateway, keys.api_key, "dan")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 1
    assert "Unauthorized" in report["error"]
    assert "loggedIn" not in report


def test_no_token_reaches_the_server_log(gateway):
    report = run_sdk(gateway, add_keys(gateway, "sdk-log").api_key, "eve")
    logs = gateway.server.logs()
    assert report["afterLogin"]["accessToken"] not in logs
    assert report["afterRenewal"]["accessToken"] not in logs
