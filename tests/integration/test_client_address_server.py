"""Client addresses through a real gateway process behind (pretend) proxies: a client cannot choose its own address.

The test client connects from 127.0.0.1, which plays the proxy next to the gateway. What address the gateway took is
seen two ways: the per-address throttle of portos logins (``LOGIN_MAX_ADDRESS_FAILURES``), and zelf's reuse rule (a
repeated create for one identifier from one address returns the same session, so the token's ``session`` claim
repeats).
"""

from __future__ import annotations

import asyncio

import httpx
import jwt
import pytest

from sessiongate.dialect import DialectStorage
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from sessiongate_portos.devices import Devices
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

PORTOS_LOGIN = "/api/auth"
ZELF_CREATE = "/api/sessions"
PASSWORD = "correct horse battery staple"
CLIENT = "198.51.100.7"


def add_user(database_url: str, login: str) -> None:
    async def go() -> None:
        async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services:
            await services.identity.add_principal(login=login, password=PASSWORD)
            await Devices(DialectStorage(services.runner)).add(
                tenant="default", name="P01", env="BackOffice", now=services.clock()
            )

    asyncio.run(go())


def log_in(server: Server, login: str, password: str, forwarded_for: str) -> httpx.Response:
    body = {"UserName": login, "Password": password, "DeviceName": "P01"}
    return httpx.post(server.base_url + PORTOS_LOGIN, json=body, headers={"X-Forwarded-For": forwarded_for}, timeout=30)


def zelf_session(server: Server, forwarded_for: str) -> str:
    response = httpx.post(
        server.base_url + ZELF_CREATE, json={"identifier": "device-1"}, headers={"X-Forwarded-For": forwarded_for}
    )
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["data"]["token"], options={"verify_signature": False})
    return str(claims["session"])


def test_a_spoofed_left_most_forwarded_address_does_not_escape_the_address_throttle(database_url, tmp_path):
    env = {
        "SESSIONGATE_TRUST_FORWARDED": "true",
        "SESSIONGATE_LOGIN_MAX_ADDRESS_FAILURES": "3",
        "SESSIONGATE_LOGIN_MAX_FAILURES": "100",
    }
    with running_server(database_url, tmp_path, env) as server:
        add_user(database_url, "ada")
        for attempt in range(3):
            wrong = log_in(server, "ada", "wrong", f"10.9.9.{attempt}, {CLIENT}")
            assert wrong.status_code == 401, wrong.text
        refused = log_in(server, "ada", PASSWORD, f"10.9.9.99, {CLIENT}")
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) > 0
        assert log_in(server, "ada", PASSWORD, "10.9.9.99, 198.51.100.8").status_code == 200


def test_the_right_most_forwarded_address_is_the_client_behind_one_proxy(database_url, tmp_path):
    with running_server(database_url, tmp_path, {"SESSIONGATE_TRUST_FORWARDED": "true"}) as server:
        first = zelf_session(server, f"192.0.2.1, {CLIENT}")
        assert zelf_session(server, f"192.0.2.2, {CLIENT}") == first
        assert zelf_session(server, CLIENT) == first
        assert zelf_session(server, f"192.0.2.1, {CLIENT}, 198.51.100.8") != first


def test_trusted_proxy_networks_skip_every_proxy_and_nothing_further(database_url, tmp_path):
    env = {"SESSIONGATE_TRUST_FORWARDED": "true", "SESSIONGATE_TRUSTED_PROXY_NETWORKS": "127.0.0.0/8,10.0.0.0/8"}
    with running_server(database_url, tmp_path, env) as server:
        first = zelf_session(server, f"192.0.2.1, {CLIENT}, 10.1.2.3")
        assert zelf_session(server, f"192.0.2.2, {CLIENT}, 10.4.5.6") == first
        assert zelf_session(server, f"{CLIENT}, 198.51.100.8, 10.1.2.3") != first


def test_a_proxy_count_skips_that_many_hops(database_url, tmp_path):
    env = {"SESSIONGATE_TRUST_FORWARDED": "true", "SESSIONGATE_TRUSTED_PROXIES": "2"}
    with running_server(database_url, tmp_path, env) as server:
        first = zelf_session(server, f"192.0.2.1, {CLIENT}, 10.1.2.3")
        assert zelf_session(server, f"192.0.2.2, {CLIENT}, 10.4.5.6") == first
        assert zelf_session(server, f"{CLIENT}, 198.51.100.8, 10.1.2.3") != first


@pytest.mark.parametrize("trust", ["false", "networks"])
def test_forwarded_headers_from_an_untrusted_peer_change_nothing(database_url, tmp_path, trust):
    # The peer (127.0.0.1) is no trusted proxy here: neither the gateway nor its HTTP server may take the header.
    env = {"SESSIONGATE_TRUST_FORWARDED": "false"}
    if trust == "networks":
        env = {"SESSIONGATE_TRUST_FORWARDED": "true", "SESSIONGATE_TRUSTED_PROXY_NETWORKS": "10.0.0.0/8"}
    env |= {"SESSIONGATE_LOGIN_MAX_ADDRESS_FAILURES": "2", "SESSIONGATE_LOGIN_MAX_FAILURES": "100"}
    with running_server(database_url, tmp_path, env) as server:
        add_user(database_url, "ada")
        first = zelf_session(server, "203.0.113.1")
        assert zelf_session(server, "203.0.113.2") == first
        assert zelf_session(server, "") == first
        for attempt in range(2):
            assert log_in(server, "ada", "wrong", f"203.0.113.{attempt}").status_code == 401
        assert log_in(server, "ada", PASSWORD, "203.0.113.50").status_code == 429
