from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
import pytest

from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from sessiongate_saymon import SaymonDialect
from tests.conftest import ROOT
from tests.support.databases import backends, database
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

SESSION = "/node/api/users/session"
CURRENT = "/node/api/users/current"
VERIFY = "/node/api/users/session/verify/"
PASSWORD = "P665bPVi"  # the seed's sample password
NODE = shutil.which("node")
CONSOLE = "https://console.example"
CROSS_SITE = b'{"code":"Forbidden","message":"Cross-site request refused."}'


def with_services(database_url: str, work) -> object:
    async def go() -> object:
        settings = Settings(database_url=database_url, sweep_interval=0)
        async with open_services(settings, migrate=False) as services:
            return await work(services)

    return asyncio.run(go())


def add_user(server: Gateway, login: str, password: str = PASSWORD) -> None:
    async def work(services: Services) -> None:
        await services.identity.add_principal(
            tenant="default",
            login=login,
            principal_id=None,
            email=None,
            display_name=None,
            roles=(),
            permissions=("manage-objects",),
            password=password,
        )

    with_services(server.database_url, work)


def log_in(server: Gateway, login: str, password: str = PASSWORD) -> str:
    response = httpx.post(f"{server.base_url}{SESSION}", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


@dataclass(frozen=True)
class Gateway:
    process: Server
    database_url: str

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def logs(self) -> str:
        return self.process.logs()


@pytest.fixture(scope="module", params=backends())
def server(request, tmp_path_factory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp(f"saymon-{request.param}")
    with (
        database(request.param, directory) as url,
        running_server(url, directory, env={"SESSIONGATE_LOG_LEVEL": "DEBUG"}) as process,
    ):
        yield Gateway(process=process, database_url=url)


@pytest.fixture(scope="module", params=backends())
def console_server(request, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway whose web console is served from another site, configured as an allowed origin."""
    directory = tmp_path_factory.mktemp(f"saymon-origins-{request.param}")
    env = {"SESSIONGATE_DIALECTS": "saymon", "SESSIONGATE_ALLOWED_ORIGINS": CONSOLE}
    with database(request.param, directory) as url, running_server(url, directory, env=env) as process:
        yield Gateway(process=process, database_url=url)


def test_the_seed_fetch_requests_log_in_and_then_use_the_sid_cookie(server):
    add_user(server, "fetch.user")
    login = httpx.post(
        f"{server.base_url}{SESSION}",
        content=json.dumps({"login": "fetch.user", "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    assert login.status_code == 200
    assert login.headers["content-type"].startswith("application/json")
    sid = login.json()
    assert login.text == f'"{sid}"'
    assert login.headers["set-cookie"].startswith(f"sid={sid}; Max-Age=604800; Path=/; Expires=")
    assert login.headers["set-cookie"].endswith("; HttpOnly; SameSite=Lax")
    current = httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": "sid=" + sid})
    assert current.status_code == 200
    assert current.json()["login"] == "fetch.user"


def test_the_sid_cookie_and_the_session_end_seven_days_after_login_however_often_used(server):
    add_user(server, "week.user")
    before = time.time()
    login = httpx.post(f"{server.base_url}{SESSION}", json={"login": "week.user", "password": PASSWORD})
    after = time.time()
    attributes = dict(p.strip().split("=", 1) for p in login.headers["set-cookie"].split(";")[1:] if "=" in p)
    assert attributes["Max-Age"] == str(7 * 86400)
    assert before + 7 * 86400 - 1 <= parsedate_to_datetime(attributes["Expires"]).timestamp() <= after + 7 * 86400

    async def stored(services: Services) -> tuple[float, float]:
        session = await services.sessions.resolve_secret(login.json(), SaymonDialect().expiry_policy())
        assert session.absolute_expires_at is not None
        return session.created_at.timestamp(), session.absolute_expires_at.timestamp()

    created, ends = with_services(server.database_url, stored)
    assert ends - created == 7 * 86400


@pytest.mark.parametrize(
    ("login", "foreign"),
    [
        ("csrf.origin", {"Origin": "https://evil.example"}),
        ("csrf.null", {"Origin": "null"}),
        ("csrf.fetch", {"Sec-Fetch-Site": "cross-site"}),
    ],
)
def test_a_browser_on_another_site_can_neither_log_in_nor_log_out(server, login, foreign):
    add_user(server, login)
    url = f"{server.base_url}{SESSION}"
    form = {**foreign, "Content-Type": "application/x-www-form-urlencoded"}
    for refused in (
        httpx.post(url, json={"login": login, "password": PASSWORD}, headers=foreign),
        httpx.post(url, content=f"login={login}&password={PASSWORD}", headers=form),
    ):
        assert (refused.status_code, refused.content) == (403, CROSS_SITE)
        assert "set-cookie" not in refused.headers
    sid = log_in(server, login)
    logout = httpx.delete(url, headers={**foreign, "Cookie": f"sid={sid}"})
    assert (logout.status_code, logout.content) == (403, CROSS_SITE)
    assert httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": f"sid={sid}"}).status_code == 200
    own = {"Origin": server.base_url, "Sec-Fetch-Site": "same-origin", "Cookie": f"sid={sid}"}
    assert httpx.delete(url, headers=own).status_code == 200


def test_a_console_on_a_configured_origin_logs_in_and_out(console_server):
    add_user(console_server, "console.user")
    console = {"Origin": CONSOLE, "Sec-Fetch-Site": "cross-site"}
    with httpx.Client(base_url=console_server.base_url, headers=console) as client:
        login = client.post(SESSION, json={"login": "console.user", "password": PASSWORD})
        assert login.status_code == 200
        assert client.get(CURRENT).status_code == 200
        assert client.delete(SESSION).status_code == 200


def test_the_seed_http_example_body_arrives_chunked_and_is_read(server):
    add_user(server, "http.user")

    def body():
        yield b'{"login":"http.user",'
        yield b'"password":"' + PASSWORD.encode() + b'"}'

    login = httpx.post(f"{server.base_url}{SESSION}", content=body(), headers={"Content-Type": "application/json"})
    assert login.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in login.request.headers
    assert login.status_code == 200
    current = httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": "sid=" + login.json()})
    assert current.json()["login"] == "http.user"


def test_logout_then_reuse_gets_session_expired(server):
    add_user(server, "logout.user")
    sid = log_in(server, "logout.user")
    logout = httpx.delete(f"{server.base_url}{SESSION}", headers={"Cookie": "sid=" + sid})
    assert (logout.status_code, logout.content) == (200, b"")
    # S2's body is empty; restify's res.send() without a body names no media type, and neither does the gateway.
    assert "content-type" not in logout.headers
    assert logout.headers["content-length"] == "0"
    assert "Max-Age=0" in logout.headers["set-cookie"]
    reuse = httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": "sid=" + sid})
    assert reuse.status_code == 401
    assert reuse.json() == {"code": "Unauthorized", "message": '{"errorCode":3,"message":"Session expired."}'}


def test_a_password_change_ends_the_other_sessions(server):
    add_user(server, "change.user")
    keep, drop = log_in(server, "change.user"), log_in(server, "change.user")

    async def change(services: Services) -> None:
        kept = await services.sessions.resolve_secret(keep, SaymonDialect().expiry_policy())
        await services.identity.set_password(
            tenant="default", login="change.user", password="another-passphrase", keep_session_id=kept.id
        )

    with_services(server.database_url, change)
    assert httpx.get(f"{server.base_url}{CURRENT}", headers={"X-Session-Id": keep}).status_code == 200
    assert httpx.get(f"{server.base_url}{CURRENT}", headers={"X-Session-Id": drop}).status_code == 401


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("script", ["saymon-fetch.mjs", "saymon-http.mjs"])
def test_the_seeds_node_examples_run_against_the_server(server, script):
    login = script.removesuffix(".mjs")
    add_user(server, login)
    env = {**os.environ, "SAYMON_URL": server.base_url, "SAYMON_LOGIN": login, "SAYMON_PASSWORD": PASSWORD}
    done = subprocess.run(
        [NODE, str(ROOT / "clients" / script)], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    session_line, user_line = done.stdout.strip().splitlines()
    assert session_line[0] == session_line[-1] == '"'
    assert json.loads(user_line)["login"] == login


def test_repeated_wrong_passwords_are_throttled_in_the_vendor_shape(server):
    add_user(server, "throttled.user")
    url = f"{server.base_url}{SESSION}"
    for _ in range(30):
        response = httpx.post(url, json={"login": "throttled.user", "password": "nope"})
        if response.status_code != 401:
            break
        assert response.json()["code"] == "InvalidCredentials"
    assert (response.status_code, response.json()) == (
        423,
        {"code": "Locked", "message": "Account locked after too many failed logins. Try again later."},
    )
    assert int(response.headers["retry-after"]) > 0
    refused = httpx.post(url, json={"login": "throttled.user", "password": PASSWORD})
    assert (refused.status_code, refused.json()) == (423, response.json())


def test_no_secret_or_digest_reaches_a_response_or_the_server_log(server):
    add_user(server, "quiet.user", "quiet-passphrase-0123")
    sid = log_in(server, "quiet.user", "quiet-passphrase-0123")
    responses = [
        httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": "sid=" + sid}),
        httpx.get(f"{server.base_url}{VERIFY}{sid}", headers={"X-Session-Id": sid}),
        httpx.get(f"{server.base_url}{VERIFY}{sid}x", headers={"X-Session-Id": sid}),
        httpx.post(f"{server.base_url}{SESSION}", json={"login": "quiet.user", "password": "quiet-passphrase-0124"}),
        httpx.delete(f"{server.base_url}{SESSION}", headers={"Cookie": "sid=" + sid}),
        httpx.get(f"{server.base_url}{CURRENT}", headers={"Cookie": "sid=" + sid}),
        httpx.get(f"{server.base_url}/metrics"),
    ]

    async def digest(services: Services) -> str:
        return services.digester.digest(sid)

    secrets = [sid, "quiet-passphrase-012", with_services(server.database_url, digest)]
    for response in responses:
        assert not any(s in response.text + repr(response.headers) for s in secrets), response.request.url.path
    log = server.logs()
    assert log.strip()
    assert not any(s in log for s in secrets)
