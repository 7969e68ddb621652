from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote

import httpx
import pytest
import yaml

from sessiongate.core.models import ExpiryPolicy, NewSession
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from tests.conftest import ROOT
from tests.support.databases import backends, database
from tests.support.server import Server, running_server

CREATE, VALIDATE, DELETE = "/api/session/createSession", "/api/session/validateSession", "/api/session/deleteSession"
SAMPLE_USER = "63ded2f901770f255dff8d04"  # the seed's validate sample
SEED_VALIDATE = {
    "message": "Session is not expired",
    "data": {"email": "sample@email.com", "userId": SAMPLE_USER, "role": "Admin"},
}
COOKIE_REQUIRED = {"message": "Invalid request: session cookie is required."}
VALIDATE_ERROR = {"message": "There was an error validating the session."}
NODE = shutil.which("node")
TOUGH_COOKIE = ROOT / "clients" / "node_modules" / "tough-cookie"
DASHBOARD = "https://dashboard.example"
REQUEST_ERROR = b'{"message":"There was an error with the request."}'


@dataclass(frozen=True)
class Gateway:
    process: Server
    database_url: str

    @property
    def base_url(self) -> str:
        return self.process.base_url

    def logs(self) -> str:
        return self.process.logs()

    def services(self, work):
        async def go():
            async with open_services(Settings(database_url=self.database_url, sweep_interval=0), migrate=False) as s:
                return await work(s)

        return asyncio.run(go())

    def add_user(self, user_id: str, email: str, roles: tuple[str, ...] = ("user",)) -> None:
        async def work(services: Services) -> None:
            await services.identity.add_principal(login=email, principal_id=user_id, email=email, roles=roles)

        self.services(work)


@pytest.fixture(scope="module", params=backends())
def server(request, tmp_path_factory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp(f"issp-{request.param}")
    env = {"SESSIONGATE_DIALECTS": "issp", "SESSIONGATE_LOG_LEVEL": "DEBUG"}
    with database(request.param, directory) as url, running_server(url, directory, env=env) as process:
        gateway = Gateway(process=process, database_url=url)
        gateway.add_user(SAMPLE_USER, "sample@email.com", ("admin",))
        yield gateway


@pytest.fixture(scope="module", params=backends())
def day_long_server(request, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway whose sessions would slide for a day, longer than the default maximum lifetime allows."""
    directory = tmp_path_factory.mktemp(f"issp-day-{request.param}")
    env = {
        "SESSIONGATE_DIALECTS": "issp",
        "SESSIONGATE_ISSP__LIFETIME": "86400",
        "SESSIONGATE_ISSP__TOUCH_INTERVAL": "0",
    }
    with database(request.param, directory) as url, running_server(url, directory, env=env) as process:
        gateway = Gateway(process=process, database_url=url)
        gateway.add_user(SAMPLE_USER, "sample@email.com", ("admin",))
        yield gateway


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0].removeprefix("sessionCookie=")


@pytest.fixture(scope="module", params=backends())
def dashboard_server(request, tmp_path_factory) -> Iterator[Gateway]:
    """A gateway whose dashboard is served from another site, configured as an allowed origin."""
    directory = tmp_path_factory.mktemp(f"issp-origins-{request.param}")
    env = {"SESSIONGATE_DIALECTS": "issp", "SESSIONGATE_ALLOWED_ORIGINS": DASHBOARD}
    with database(request.param, directory) as url, running_server(url, directory, env=env) as process:
        gateway = Gateway(process=process, database_url=url)
        gateway.add_user(SAMPLE_USER, "sample@email.com", ("admin",))
        yield gateway


def attributes(response: httpx.Response) -> dict[str, str]:
    parts = [p.strip() for p in response.headers["set-cookie"].split(";")[1:]]
    return dict(p.split("=", 1) if "=" in p else (p, "") for p in parts)


@pytest.mark.slow
def test_an_httpx_cookie_jar_stores_the_cookie_and_sends_it_back_unchanged(server):
    with httpx.Client(base_url=server.base_url) as client:
        created = client.post(CREATE, json={"userID": SAMPLE_USER})
        assert created.status_code == 200
        issued = cookie_value(created.headers["set-cookie"])
        assert client.cookies["sessionCookie"] == issued
        validated = client.post(VALIDATE)
        assert validated.request.headers["cookie"] == f"sessionCookie={issued}"
        assert (validated.status_code, validated.json()) == (200, SEED_VALIDATE)
        refreshed = cookie_value(validated.headers["set-cookie"])
        assert client.cookies["sessionCookie"] == refreshed
        by_get = client.get(VALIDATE)
        assert by_get.request.headers["cookie"] == f"sessionCookie={refreshed}"
        assert (by_get.status_code, by_get.json()) == (200, SEED_VALIDATE)
        deleted = client.delete(DELETE)
        assert (deleted.status_code, deleted.json()) == (200, {"message": "Session deleted."})
        assert "sessionCookie" not in client.cookies
        after = client.post(VALIDATE)
        assert "cookie" not in after.request.headers
        assert (after.status_code, after.json()) == (400, COOKIE_REQUIRED)
        replayed = client.post(VALIDATE, headers={"Cookie": f"sessionCookie={issued}"})
        assert (replayed.status_code, replayed.json()) == (400, VALIDATE_ERROR)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "cookie", "body"),
    [
        ("POST", VALIDATE, None, b'{"message":"Invalid request: session cookie is required."}'),
        ("GET", VALIDATE, "", b'{"message":"Invalid request: session cookie is required."}'),
        (
            "POST",
            VALIDATE,
            'j:{"expires":"2099-01-01T00:00:00.000Z"}',
            b'{"message":"Invalid request: session ID is required."}',
        ),
        (
            "POST",
            VALIDATE,
            'j:{"sessionId":"x","expires":"2000-01-01T00:00:00.000Z"}',
            b'{"message":"Invalid request: session cookie is expired. Please create a new session."}',
        ),
        (
            "POST",
            VALIDATE,
            'j:{"sessionId":"no-such-session"}',
            b'{"message":"There was an error validating the session."}',
        ),
        ("DELETE", DELETE, None, b'{"message":"Invalid request: session cookie is required."}'),
        ("POST", DELETE, "not json", b'{"message":"Invalid request: session ID is required."}'),
        ("DELETE", DELETE, 'j:{"sessionId":"no-such-session"}', b'{"message":"There was an error with the request."}'),
    ],
)
def test_a_refused_cookie_gets_the_seeds_400_and_sentence_byte_for_byte(server, method, path, cookie, body):
    headers = {} if cookie is None else {"Cookie": "sessionCookie=" + quote(cookie, safe="")}
    response = httpx.request(method, f"{server.base_url}{path}", headers=headers)
    assert (response.status_code, response.content) == (400, body)
    assert response.headers["content-type"] == "application/json"
    assert "set-cookie" not in response.headers


@pytest.mark.slow
def test_the_cookie_expires_with_the_session_two_hours_ahead_on_the_real_clock(server):
    before = time.time()
    created = httpx.post(f"{server.base_url}{CREATE}", json={"userId": SAMPLE_USER})
    after = time.time()
    header = created.headers["set-cookie"]
    attributes = dict(p.strip().split("=", 1) for p in header.split(";")[1:] if "=" in p)
    assert attributes["Max-Age"] == "7200"
    assert before + 7200 - 1 <= parsedate_to_datetime(attributes["Expires"]).timestamp() <= after + 7200
    stored = json.loads(unquote(cookie_value(header)).removeprefix("j:"))
    assert stored == {
        "sessionId": created.json()["text"]["sessionId"],
        "expires": created.json()["text"]["sessionExpiry"],
        "domain": "127.0.0.1",
    }
    assert header.endswith("; HttpOnly; SameSite=Lax")


@pytest.mark.slow
def test_the_default_maximum_lifetime_caps_the_session_and_its_cookie_at_twelve_hours(day_long_server):
    with httpx.Client(base_url=day_long_server.base_url) as client:
        before = time.time()
        created = client.post(CREATE, json={"userId": SAMPLE_USER})
        validated = client.post(VALIDATE)
        after = time.time()
    assert (created.status_code, validated.status_code) == (200, 200)
    created_attributes, validated_attributes = attributes(created), attributes(validated)
    assert created_attributes["Max-Age"] == str(12 * 3600)
    end = parsedate_to_datetime(created_attributes["Expires"]).timestamp()
    assert before + 12 * 3600 - 1 <= end <= after + 12 * 3600
    assert validated_attributes["Expires"] == created_attributes["Expires"]
    assert int(validated_attributes["Max-Age"]) <= 12 * 3600
    expiry = created.json()["text"]["sessionExpiry"]
    assert json.loads(unquote(cookie_value(validated.headers["set-cookie"])).removeprefix("j:"))["expires"] == expiry


@pytest.mark.slow
def test_an_ipv6_host_gets_a_cookie_the_spec_describes_and_the_server_accepts_back(server):
    spec = yaml.safe_load((ROOT / "openapi" / "issp.yaml").read_text())
    validate = spec["paths"][VALIDATE]["post"]
    (parameter,) = (p for p in validate["parameters"] if p["name"] == "sessionCookie")
    header_pattern = spec["components"]["headers"]["SessionCookieSet"]["schema"]["pattern"]
    port = server.base_url.rsplit(":", 1)[1]
    with httpx.Client(base_url=server.base_url, headers={"Host": f"[::1]:{port}"}) as client:
        created = client.post(CREATE, json={"userId": SAMPLE_USER})
        assert created.status_code == 200
        issued = cookie_value(created.headers["set-cookie"])
        assert json.loads(unquote(issued).removeprefix("j:"))["domain"] == "::1"
        assert re.fullmatch(header_pattern, created.headers["set-cookie"])
        assert re.fullmatch(parameter["schema"]["pattern"], issued)
        validated = client.post(VALIDATE, headers={"Cookie": f"sessionCookie={issued}"})
        assert (validated.status_code, validated.json()) == (200, SEED_VALIDATE)
        assert re.fullmatch(parameter["schema"]["pattern"], cookie_value(validated.headers["set-cookie"]))


@pytest.mark.slow
@pytest.mark.parametrize("host", ["a:xyz", "a:99999", "A:-1"])
def test_a_host_whose_port_is_no_number_gets_a_cookie_for_its_host_not_a_500(server, host):
    # Any client can send such a Host: the URL parser refuses its port. Express's req.hostname reads the host, "a".
    spec = yaml.safe_load((ROOT / "openapi" / "issp.yaml").read_text())
    header_pattern = spec["components"]["headers"]["SessionCookieSet"]["schema"]["pattern"]
    with httpx.Client(base_url=server.base_url, headers={"Host": host}) as client:
        created = client.post(CREATE, json={"userId": SAMPLE_USER})
        assert created.status_code == 200, created.text
        assert re.fullmatch(header_pattern, created.headers["set-cookie"])
        issued = cookie_value(created.headers["set-cookie"])
        assert json.loads(unquote(issued).removeprefix("j:"))["domain"] == "a"
        cookie = {"Cookie": f"sessionCookie={issued}"}
        validated = client.post(VALIDATE, headers=cookie)
        assert (validated.status_code, validated.json()) == (200, SEED_VALIDATE)
        # A browser's request: its own origin cannot be read from such a Host, so any Origin is another site's.
        foreign = client.post(DELETE, headers=cookie | {"Origin": "http://a"})
        assert (foreign.status_code, foreign.content) == (403, REQUEST_ERROR)
        deleted = client.post(DELETE, headers=cookie)
        assert deleted.status_code == 200, deleted.text
    assert '"level":"error"' not in server.logs()


@pytest.mark.slow
def test_a_session_stored_before_the_maximum_lifetime_existed_ends_twelve_hours_after_creation(server):
    # A row written by a gateway without issp's cap (absolute_expires_at NULL), created 13 hours ago and validated
    # an hour ago, so its sliding expiry is an hour ahead: the cap still ends it.
    uncapped = ExpiryPolicy(ttl=7200, sliding=True, touch_interval=0)
    now = datetime.now(UTC)

    async def legacy() -> str:
        async def at(moment, work):
            settings = Settings(database_url=server.database_url, sweep_interval=0)
            async with open_services(settings, clock=lambda: moment, migrate=False) as services:
                return await work(services)

        user = NewSession(tenant="default", dialect="issp", principal_id=SAMPLE_USER, attributes={"role": "Admin"})
        created = await at(now - timedelta(hours=13), lambda s: s.sessions.create(user, uncapped, with_secret=True))
        secret = created.secret
        for hours in range(12, 0, -1):
            await at(now - timedelta(hours=hours), lambda s: s.sessions.resolve_secret(secret, uncapped))
        return secret

    secret = asyncio.run(legacy())
    cookie = "sessionCookie=" + quote(f'j:{{"sessionId":"{secret}"}}', safe="")
    response = httpx.post(f"{server.base_url}{VALIDATE}", headers={"Cookie": cookie})
    assert (response.status_code, response.content) == (403, b'{"message":"Session is expired"}')


@pytest.mark.slow
@pytest.mark.parametrize(
    "foreign",
    [{"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["origin", "null-origin", "fetch-metadata"],
)
def test_a_browser_on_another_site_can_neither_create_nor_delete_a_session(server, foreign):
    with httpx.Client(base_url=server.base_url) as client:
        refused = client.post(CREATE, json={"userId": SAMPLE_USER}, headers=foreign)
        assert (refused.status_code, refused.content) == (403, REQUEST_ERROR)
        assert "set-cookie" not in refused.headers
        assert client.post(CREATE, json={"userId": SAMPLE_USER}).status_code == 200
        for method in ("POST", "DELETE"):
            kept = client.request(method, DELETE, headers=foreign)
            assert (kept.status_code, kept.content) == (403, REQUEST_ERROR)
            assert "set-cookie" not in kept.headers
        assert client.post(VALIDATE).status_code == 200
        own = {"Origin": server.base_url, "Sec-Fetch-Site": "same-origin"}
        assert client.delete(DELETE, headers=own).status_code == 200


@pytest.mark.slow
def test_a_dashboard_on_a_configured_origin_creates_validates_and_deletes(dashboard_server):
    dashboard = {"Origin": DASHBOARD, "Sec-Fetch-Site": "cross-site"}
    with httpx.Client(base_url=dashboard_server.base_url, headers=dashboard) as client:
        assert client.post(CREATE, json={"userId": SAMPLE_USER}).status_code == 200
        assert client.post(VALIDATE).status_code == 200
        assert client.delete(DELETE).status_code == 200
        other = client.post(CREATE, json={"userId": SAMPLE_USER}, headers={"Origin": "https://evil.example"})
        assert (other.status_code, other.content) == (403, REQUEST_ERROR)


@pytest.mark.clients
@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_tough_cookie_stores_the_cookie_and_sends_it_back_unchanged(server):
    assert TOUGH_COOKIE.is_dir(), "run `npm ci --prefix clients` first"
    env = {**os.environ, "ISSP_URL": server.base_url, "ISSP_USER_ID": SAMPLE_USER}
    done = subprocess.run(
        [NODE, str(ROOT / "clients" / "issp-cookie-jar.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    steps = {s["step"]: s for s in map(json.loads, done.stdout.splitlines())}
    created = steps["create"]
    assert created["status"] == 200
    (stored,) = created["stored"]
    assert stored["value"] == cookie_value(created["setCookie"][0])
    assert (stored["key"], stored["httpOnly"], stored["path"]) == ("sessionCookie", True, "/")
    assert stored["sameSite"] == "lax"
    assert stored["expires"] / 1000 == pytest.approx(time.time() + 7200, abs=60)
    for name in ("validate", "validate-get"):
        assert (steps[name]["status"], steps[name]["body"]) == (200, SEED_VALIDATE)
        assert steps[name]["stored"][0]["value"] == cookie_value(steps[name]["setCookie"][0])
    assert (steps["delete"]["status"], steps["delete"]["stored"]) == (200, [])
    assert (steps["validate-after-delete"]["status"], steps["validate-after-delete"]["body"]) == (400, COOKIE_REQUIRED)


@pytest.mark.slow
def test_no_session_id_or_digest_reaches_the_server_log(server):
    with httpx.Client(base_url=server.base_url) as client:
        secret = client.post(CREATE, json={"userID": SAMPLE_USER}).json()["text"]["sessionId"]
        client.post(VALIDATE)
        client.get(VALIDATE)
        client.post(VALIDATE, headers={"Cookie": f'sessionCookie=j:{{"sessionId":"{secret}x"}}'})
        client.delete(DELETE)
        client.delete(DELETE, headers={"Cookie": f'sessionCookie=j:{{"sessionId":"{secret}"}}'})

    async def digest(services: Services) -> str:
        return services.digester.digest(secret)

    hidden = [secret, server.services(digest)]
    logs = server.logs()
    assert "started" in logs  # the server logs (DEBUG), so the checks below mean something
    assert not any(value in logs for value in hidden)
