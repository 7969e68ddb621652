from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.conftest import ROOT
from tests.support.databases import backends, migrated_database
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

ADMIN, PASSWORD = "999", "portos-999-secret"
PROBLEM = "application/problem+json"
DAY = 86400


def cli(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    env |= {"SESSIONGATE_DATABASE_URL": database_url, "SESSIONGATE_AUTO_MIGRATE": "true"}
    return subprocess.run(
        [sys.executable, "-m", "sessiongate", *args], input=stdin, env=env, capture_output=True, text=True, check=False
    )


@pytest.fixture(params=backends())
def gateway(request, tmp_path) -> Iterator[tuple[Server, str]]:
    with migrated_database(request.param, tmp_path) as url:
        assert cli(url, "db", "upgrade").returncode == 0
        added = cli(url, "users", "add", "--login", ADMIN, "--role", "admin", "--password-stdin", stdin=f"{PASSWORD}\n")
        assert added.returncode == 0, added.stderr
        for name, env in (("BackOffice", "BackOffice"), ("P01", "CashRegister")):
            assert cli(url, "devices", "add", "--name", name, "--env", env).returncode == 0
        with running_server(url, tmp_path, workers=2) as server:
            yield server, url


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def log_in(server: Server, device: str = "BackOffice") -> dict:
    body = {"UserName": ADMIN, "Password": PASSWORD, "DeviceName": device}
    response = httpx.post(f"{server.base_url}/api/auth", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def login_sid(login: dict) -> str:
    payload = login["tokenId"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sid"]


def bearer(login: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {login['tokenId']}"}


def test_operators_provision_devices_from_the_cli(gateway):
    _, url = gateway
    listed = cli(url, "devices", "list")
    assert listed.stdout.splitlines() == ["BackOffice\tBackOffice", "P01\tCashRegister"]
    again = cli(url, "devices", "add", "--name", "P01", "--env", "PDA")
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert cli(url, "devices", "add", "--name", "X", "--env", "Kiosk").returncode != 0
    assert cli(url, "devices", "remove", "--name", "P01").returncode == 0
    assert cli(url, "devices", "list").stdout.splitlines() == ["BackOffice\tBackOffice"]


def test_concurrent_refreshes_across_server_processes_have_one_winner(gateway):
    server, _ = gateway
    login = log_in(server)
    body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            responses = await asyncio.gather(*(client.post("/api/auth/refresh", json=body) for _ in range(8)))
        return sorted(r.status_code for r in responses)

    assert asyncio.run(race()) == [200] + [409] * 7


def test_concurrent_logins_on_a_sale_device_across_processes_leave_one_session(gateway):
    server, _ = gateway
    body = {"UserName": ADMIN, "Password": PASSWORD, "DeviceName": "P01"}

    async def logins() -> list[dict]:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            responses = await asyncio.gather(*(client.post("/api/auth", json=body) for _ in range(4)))
        return [r.json() for r in responses]

    tokens = [login["tokenId"] for login in asyncio.run(logins())]
    live = [
        t
        for t in tokens
        if httpx.get(f"{server.base_url}/api/auth", headers={"Authorization": f"Bearer {t}"}).is_success
    ]
    assert len(live) == 1
    admin = {"Authorization": f"Bearer {log_in(server)['tokenId']}"}
    listed = httpx.get(f"{server.base_url}/sessions?identity.deviceName=eq:P01", headers=admin).json()
    assert listed["totalCount"] == 1


def test_a_thirty_day_lifetime_is_capped_by_the_default_seven_day_maximum(gateway, tmp_path):
    _, url = gateway
    with running_server(url, tmp_path, env={"SESSIONGATE_PORTOS__LIFETIME": str(30 * DAY)}) as server:
        login = log_in(server)
        claims = claims_of(login["tokenId"])
        assert claims["exp"] - claims["iat"] == 7 * DAY
        body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
        renewed = httpx.post(f"{server.base_url}/api/auth/refresh", json=body, timeout=30)
    assert renewed.status_code == 200, renewed.text
    assert claims_of(renewed.json()["tokenId"])["exp"] == claims["exp"]


def test_a_deleted_session_is_refused_by_every_process(gateway):
    server, _ = gateway
    login = log_in(server)
    headers = {"Authorization": f"Bearer {login['tokenId']}"}
    admin = {"Authorization": f"Bearer {log_in(server)['tokenId']}"}
    sid = httpx.get(f"{server.base_url}/sessions?$sort=startedAt&$take=1", headers=admin).json()["items"][0][
        "sessionId"
    ]
    assert httpx.delete(f"{server.base_url}/sessions/{sid}", headers=admin).status_code == 200
    assert all(httpx.get(f"{server.base_url}/api/auth", headers=headers).status_code == 401 for _ in range(6))


def test_count_takes_the_bools_dotnet_clients_send(gateway):
    server, _ = gateway
    login = log_in(server)
    sessions = f"{server.base_url}/sessions"
    for value in ("True", "TRUE", "true"):
        counted = httpx.get(sessions, params={"$count": value}, headers=bearer(login))
        assert counted.status_code == 200, counted.text
        assert counted.headers["content-type"] == "application/json"
        assert counted.content == b'{"count":1,"totalCount":1}'
    for value in ("False", "FALSE", "false"):
        listed = httpx.get(sessions, params={"$count": value}, headers=bearer(login))
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert (body["count"], body["totalCount"]) == (1, 1)
        assert [s["sessionId"] for s in body["items"]] == [login_sid(login)]
    refused = httpx.get(sessions, params={"$count": "yes"}, headers=bearer(login))
    assert refused.status_code == 400
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["errors"] == [
        {"memberName": "$count", "message": "$count must be true or false", "code": "Invalid"}
    ]


def test_a_bare_session_id_filters_as_eq(gateway):
    server, _ = gateway
    wanted, caller = log_in(server), log_in(server)
    sessions, sid = f"{server.base_url}/sessions", login_sid(wanted)
    bare = httpx.get(sessions, params={"sessionId": sid}, headers=bearer(caller))
    assert bare.status_code == 200, bare.text
    assert bare.headers["content-type"] == "application/json"
    assert [s["sessionId"] for s in bare.json()["items"]] == [sid]
    # Listing touches only the caller's session, so the same query with the operator spelled out reads the same bytes.
    assert bare.content == httpx.get(sessions, params={"sessionId": f"eq:{sid}"}, headers=bearer(caller)).content
    refused = httpx.get(sessions, params={"sessionId": f"between:{sid}:{sid}"}, headers=bearer(caller))
    assert refused.status_code == 400
    assert refused.headers["content-type"] == PROBLEM
    assert [e["memberName"] for e in refused.json()["errors"]] == ["sessionId"]


def test_a_login_without_a_password_gets_the_answer_the_spec_shows(gateway):
    # S2 makes Password optional, yet no login without one succeeds: the spec says what the server answers instead.
    server, _ = gateway
    spec = yaml.safe_load((ROOT / "openapi" / "portos.yaml").read_text())
    assert "Password" not in spec["components"]["schemas"]["Login"]["required"]
    refused = spec["paths"]["/api/auth"]["post"]["responses"]["401"]["$ref"].rsplit("/", 1)[1]
    shown = spec["components"]["responses"][refused]["content"][PROBLEM]["examples"]["noPassword"]["value"]
    for password in ({}, {"Password": None}, {"Password": ""}):
        body = {"UserName": ADMIN, "DeviceName": "BackOffice", **password}
        response = httpx.post(f"{server.base_url}/api/auth", json=body, timeout=30)
        assert response.status_code == 401, password
        assert response.headers["content-type"] == PROBLEM
        trace = response.json()["traceId"]
        assert response.content == json.dumps(shown | {"traceId": trace}, separators=(",", ":")).encode()


def test_an_amity_session_is_listed_under_the_user_id_it_registered(gateway):
    server, url = gateway
    added = cli(url, "keys", "add", "--tenant", "default", "--share-tenant")
    assert added.returncode == 0, added.stderr
    key = re.search(r"^api key:\s+(\S+)$", added.stdout, re.MULTILINE)
    assert key is not None, added.stdout
    body = {"userId": "frank", "deviceId": "ios-7f3a", "deviceInfo": {"kind": "ios"}}
    registered = httpx.post(f"{server.base_url}/api/v5/sessions", json=body, headers={"x-api-key": key[1]}, timeout=30)
    assert registered.status_code == 200, registered.text
    found = httpx.get(
        f"{server.base_url}/sessions", params={"identity.userName": "eq:frank"}, headers=bearer(log_in(server))
    )
    assert found.status_code == 200, found.text
    assert found.headers["content-type"] == "application/json"
    listed = found.json()
    assert (listed["count"], listed["totalCount"]) == (1, 1)
    assert listed["items"][0]["sessionId"] == login_sid({"tokenId": registered.json()["accessToken"]}).replace("-", "")
    assert listed["items"][0]["identity"] == {
        "userName": "frank",
        "deviceName": "ios-7f3a",
        "envName": "amity",
        "authenticationType": "amity",
    }
