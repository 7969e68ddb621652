"""The per-principal cap on live sessions (``SESSIONGATE_<DIALECT>__MAX_SESSIONS_PER_PRINCIPAL`` and
``__ON_SESSION_CAP``), in every dialect, on both databases: uncapped by default; ``evict_oldest`` revokes the oldest
so the cap holds with the new one (refused on their next request, audited as ``session-cap``); ``refuse`` answers the
dialect's error and creates nothing; parallel logins through two server processes on one database never leave more
than the cap alive; bad settings refuse to start.

Logins go through each dialect's own create route; whether a session still works is asked of the gateway's forward
auth, which runs each dialect's own lookup (zelf has no route of its own that takes its token), and for portos and
issp of their own routes too."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from argon2 import PasswordHasher
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.core.errors import SessionLimitReached
from sessiongate.core.models import NewSession, Page, PageRequest, SessionCap, SessionFilter, SessionQuery
from sessiongate.dialect import DialectStorage
from sessiongate.dialects import registry
from sessiongate.identity.passwords import Passwords
from sessiongate.runtime import open_services
from sessiongate.sessions.audit import AuditFilter
from sessiongate.settings import Settings
from sessiongate_portos.devices import Devices
from tests.conftest import ROOT
from tests.support.gate import (
    AMITY_USER,
    API_KEY,
    DEVICE,
    DIALECTS,
    FORWARD_AUTH,
    LOGIN,
    NETWORK,
    PASSWORD,
    USER_ID,
    provision,
)
from tests.support.server import Server, run_command, running_server

IDENTIFIER = "device-0001"
V5, KEY = "/api/v5/sessions", {"x-api-key": API_KEY}
# Who each dialect's sessions belong to, as the cap counts them: (tenant, principal id, zelf's device id).
OWNERS = {
    "amity": (NETWORK, AMITY_USER, None),
    "issp": ("default", USER_ID, None),
    "portos": ("default", USER_ID, None),
    "saymon": ("default", USER_ID, None),
    "zelf": ("default", None, IDENTIFIER),
}
REFUSALS = {
    # The status of a create the cap refuses, and where its dialect's spec shows the body (its decision on the cap).
    "zelf": (409, "/paths/~1api~1sessions/post/responses/409/content/application~1json/example"),
    "issp": (409, "/paths/~1api~1session~1createSession/post/responses/409/content/application~1json/example"),
    "saymon": (409, "/paths/~1node~1api~1users~1session/post/responses/409/content/application~1json/example"),
    "portos": (
        403,
        "/components/responses/LoginForbidden/content/application~1problem+json/examples/sessionLimit/value",
    ),
    "amity": (409, "/components/responses/Conflict/content/application~1json/examples/sessionLimit/value"),
}


def spec_example(dialect: str, where: str) -> tuple[str, Any]:
    """The media type and the example at JSON pointer ``where`` in the dialect's spec."""
    node: Any = yaml.safe_load((ROOT / "openapi" / f"{dialect}.yaml").read_text())
    parts = [part.replace("~1", "/").replace("~0", "~") for part in where.split("/")[1:]]
    for part in parts:
        node = node[part]
    return parts[parts.index("content") + 1], node


def run(client: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    return client.blocking_portal.call(functools.partial(fn, *args, **kwargs))


def capped(dialect: str, most: int | None = None, action: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if most is not None:
        options["max_sessions_per_principal"] = most
    if action is not None:
        options["on_session_cap"] = action
    # zelf's sessions are per client address: each login below comes from another one (X-Forwarded-For).
    return {"dialect_options": {dialect: options}, "trust_forwarded": True}


@pytest.fixture
def make_capped(make_client):
    def make(dialect: str, most: int | None = None, action: str | None = None) -> Any:
        client = make_client(**capped(dialect, most, action))
        # Cheap argon2 parameters: hashing itself is tested with identity.
        client.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
        run(client, provision, client.app.state.services)
        return client

    return make


def log_in(client: Any, dialect: str, n: int) -> Any:
    """The ``n``-th login of the dialect's one principal (from client address 10.0.0.n, on device n where it has
    devices), answered as it is; the client keeps no cookie of it."""
    headers = {"X-Forwarded-For": f"10.0.0.{n}"}
    try:
        if dialect == "zelf":
            return client.post("/api/sessions", json={"identifier": IDENTIFIER}, headers=headers)
        if dialect == "issp":
            return client.post("/api/session/createSession", json={"userId": USER_ID}, headers=headers)
        if dialect == "saymon":
            return client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD}, headers=headers)
        if dialect == "portos":
            body = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}
            return client.post("/api/auth", json=body, headers=headers)
        body = {"userId": AMITY_USER, "deviceId": f"phone-{n:04d}"}
        return client.post("/api/v5/sessions", json=body, headers={"x-api-key": API_KEY, **headers})
    finally:
        client.cookies.clear()


def credential(dialect: str, response: Any) -> dict[str, str]:
    """The headers that carry the session a successful login opened."""
    assert response.status_code == 200, response.text
    body = response.json()
    if dialect == "issp":
        return {"Cookie": response.headers["set-cookie"].split(";", 1)[0]}
    if dialect == "saymon":
        return {"Cookie": f"sid={body}"}
    if dialect == "zelf":
        return {"Authorization": f"Bearer {body['data']['token']}"}
    token = body["tokenId"] if dialect == "portos" else body["accessToken"]
    return {"Authorization": f"Bearer {token}"}


def logged_in(client: Any, dialect: str, count: int) -> list[dict[str, str]]:
    return [credential(dialect, log_in(client, dialect, n)) for n in range(1, count + 1)]


def works(client: Any, headers: dict[str, str]) -> bool:
    """Whether the session is accepted on its next request (the gateway's forward auth asks the dialects' own
    lookups, so a revoked session is refused there exactly as on the dialect's routes)."""
    status = client.get(FORWARD_AUTH, headers=headers).status_code
    assert status in {200, 401}, status
    return status == 200


async def live_sessions(services: Any, dialect: str) -> Page[Any]:
    tenant, principal, device = OWNERS[dialect]
    filters = [SessionFilter(field="dialect", op="eq", values=(dialect,))]
    if device is not None:
        filters.append(SessionFilter(field="device_id", op="eq", values=(device,)))
    query = SessionQuery(tenant=tenant, principal_id=principal, filters=tuple(filters), page=PageRequest(take=200))
    return await services.sessions.list(query)


def live(client: Any, dialect: str) -> list[Any]:
    return run(client, live_sessions, client.app.state.services, dialect).items


def cap_events(client: Any) -> list[Any]:
    audit = client.app.state.services.sessions.audit
    page = run(client, audit.list, AuditFilter(kind="session.revoked", actor="session-cap"), limit=100)
    return page.items


@pytest.mark.parametrize("dialect", DIALECTS)
def test_without_the_setting_a_principal_keeps_every_session_it_opens(make_capped, dialect):
    client = make_capped(dialect)
    sessions = logged_in(client, dialect, 5)
    assert all(works(client, headers) for headers in sessions)
    assert len(live(client, dialect)) == 5
    assert cap_events(client) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_evict_oldest_revokes_the_oldest_so_the_cap_holds_and_they_are_refused_on_their_next_request(
    make_capped, dialect
):
    client = make_capped(dialect, 2)  # evict_oldest is the default
    sessions = logged_in(client, dialect, 5)
    assert [works(client, headers) for headers in sessions] == [False, False, False, True, True]
    kept = live(client, dialect)
    assert len(kept) == 2
    events = cap_events(client)
    assert len(events) == 3
    assert {e.dialect for e in events} == {dialect}
    assert {e.tenant for e in events} == {OWNERS[dialect][0]}
    assert {e.principal_id for e in events} == {OWNERS[dialect][1]}
    assert not {e.session_id for e in events} & {s.id for s in kept}


def test_an_evicted_portos_login_is_refused_by_its_own_routes_and_its_refresh_token_no_longer_refreshes(make_capped):
    client = make_capped("portos", 1)
    oldest = log_in(client, "portos", 1).json()
    newest = log_in(client, "portos", 2).json()
    assert client.get("/api/auth", headers={"Authorization": f"Bearer {oldest['tokenId']}"}).status_code == 401
    refresh = {"tokenId": oldest["tokenId"], "refreshToken": oldest["refreshToken"]}
    assert client.post("/api/auth/refresh", json=refresh).status_code == 401
    assert client.get("/api/auth", headers={"Authorization": f"Bearer {newest['tokenId']}"}).status_code == 200


@pytest.mark.parametrize("dialect", DIALECTS)
def test_refuse_answers_the_dialects_error_and_creates_nothing(make_capped, dialect):
    client = make_capped(dialect, 2, "refuse")
    sessions = logged_in(client, dialect, 2)
    before = {s.id for s in live(client, dialect)}
    response = log_in(client, dialect, 3)
    status, where = REFUSALS[dialect]
    media_type, shown = spec_example(dialect, where)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(media_type)
    body = response.json()
    if "traceId" in body:  # portos: each answer's own
        shown |= {"traceId": body["traceId"]}
    assert list(body) == list(shown)
    assert body == shown
    assert {s.id for s in live(client, dialect)} == before  # no row, and the two held ones untouched
    assert all(works(client, headers) for headers in sessions)
    assert cap_events(client) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_refuse_lets_a_principal_log_in_again_once_one_of_its_sessions_has_expired(make_capped, clock, dialect):
    client = make_capped(dialect, 1, "refuse")
    logged_in(client, dialect, 1)
    assert log_in(client, dialect, 2).status_code == REFUSALS[dialect][0]
    clock.advance(31 * 86400)  # past every dialect's lifetime
    assert works(client, credential(dialect, log_in(client, dialect, 3)))


def test_the_cap_counts_the_principals_sessions_in_that_dialect_only(make_capped):
    # issp, saymon and portos log the same user in: saymon's cap of one leaves the others' sessions alone.
    client = make_capped("saymon", 1, "refuse")
    others = logged_in(client, "issp", 2) + logged_in(client, "portos", 2)
    assert works(client, credential("saymon", log_in(client, "saymon", 1)))
    assert log_in(client, "saymon", 2).status_code == 409
    assert all(works(client, headers) for headers in others)


def test_a_revoked_session_frees_its_place(make_capped):
    client = make_capped("portos", 1, "refuse")
    (first,) = logged_in(client, "portos", 1)
    assert client.delete("/api/auth", headers=first).status_code == 204
    assert works(client, credential("portos", log_in(client, "portos", 2)))


def test_an_amity_reregistration_on_the_same_device_is_not_refused_by_its_own_predecessor(make_capped):
    # The previous token on the device keeps working for the renewal grace: it is the new one's predecessor.
    client = make_capped("amity", 1, "refuse")
    body = {"userId": AMITY_USER, "deviceId": "phone-0001"}
    first = client.post("/api/v5/sessions", json=body, headers={"x-api-key": API_KEY})
    again = client.post("/api/v5/sessions", json=body, headers={"x-api-key": API_KEY})
    assert again.status_code == 200, again.text
    assert works(client, credential("amity", first))
    assert works(client, credential("amity", again))
    assert log_in(client, "amity", 2).status_code == 409  # another device is refused


@pytest.mark.parametrize("dialect", ["zelf", "portos"])
def test_a_session_that_replaces_the_devices_own_is_not_refused(make_capped, dialect):
    # zelf's killSession and a portos sale device end the device's session before creating the next.
    client = make_capped(dialect, 1, "refuse")
    if dialect == "zelf":
        body = {"identifier": IDENTIFIER, "killSession": True}
        assert client.post("/api/sessions", json=body).status_code == 200
        assert client.post("/api/sessions", json=body).status_code == 200, "the replaced one does not count"
    else:
        body = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": "P01"}
        run(client, _add_sale_device, client.app.state.services)
        assert client.post("/api/auth", json=body).status_code == 200
        response = client.post("/api/auth", json=body)
        assert response.status_code == 200, response.text
    assert len(live(client, dialect)) == 1


@pytest.mark.parametrize("dialect", ["portos", "amity"])
def test_a_refused_login_takes_no_device_over_from_its_other_user(make_capped, dialect):
    # A login on a device another user holds would end that user's session first: refused, it ends nothing.
    client = make_capped(dialect, 1, "refuse")
    if dialect == "portos":
        run(client, _add_sale_device, client.app.state.services)
        run(client, client.app.state.services.identity.add_principal, login="bob", password=PASSWORD)
        held = credential("portos", log_in(client, "portos", 1))  # ada, elsewhere: her one place taken
        body = {"UserName": "bob", "Password": PASSWORD, "DeviceName": "P01"}
        bobs = credential("portos", client.post("/api/auth", json=body))  # bob holds the sale device
        ada = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": "P01"}
        refused = client.post("/api/auth", json=ada)
    else:
        held = credential("amity", log_in(client, "amity", 1))  # ada on phone-0001
        bobs = credential("amity", client.post(V5, json={"userId": "bob", "deviceId": "tablet"}, headers=KEY))
        refused = client.post(V5, json={"userId": AMITY_USER, "deviceId": "tablet"}, headers=KEY)
    assert refused.status_code == REFUSALS[dialect][0], refused.text
    assert works(client, bobs), "the device's session was not taken over"
    assert works(client, held)


async def _add_sale_device(services: Any) -> None:
    await Devices(DialectStorage(services.runner)).add(
        tenant="default", name="P01", env="CashRegister", now=services.clock()
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_takes_the_cap_options_uncapped_by_default_and_refuses_bad_ones(dialect):
    (plugin,) = registry.load((dialect,), {})
    assert plugin.options.session_cap() is None
    options = {"max_sessions_per_principal": "3", "on_session_cap": "refuse"}  # as the environment gives them
    (plugin,) = registry.load((dialect,), {dialect: options})
    assert plugin.options.session_cap() == SessionCap(most=3, action="refuse")
    (plugin,) = registry.load((dialect,), {dialect: {"max_sessions_per_principal": "1"}})
    assert plugin.options.session_cap() == SessionCap(most=1, action="evict_oldest")
    for bad in ({"max_sessions_per_principal": "0"}, {"max_sessions_per_principal": "-2"}, {"on_session_cap": "evict"}):
        with pytest.raises(
            ImproperlyConfiguredException, match=f"invalid options for dialect '{dialect}': .*{next(iter(bad))}"
        ):
            registry.load((dialect,), {dialect: bad})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SESSIONGATE_SAYMON__MAX_SESSIONS_PER_PRINCIPAL", "0", "max_sessions_per_principal must be"),
        ("SESSIONGATE_SAYMON__MAX_SESSIONS_PER_PRINCIPAL", "two", "max_sessions_per_principal"),
        ("SESSIONGATE_SAYMON__ON_SESSION_CAP", "kick_newest", "on_session_cap"),
    ],
)
def test_serve_refuses_a_bad_cap_setting_in_one_line_naming_it(database_url, tmp_path, variable, value, says):
    done = run_command(database_url, tmp_path, "serve", "--port", "1", env={variable: value})
    assert done.returncode == 2  # the README's configuration exit status
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "saymon" in lines[0]
    assert says in lines[0]


# -- concurrency, through real server processes --------------------------------------------------------------


@contextlib.contextmanager
def two_gateways(database_url: str, directory: Path, **env: str) -> Iterator[list[Server]]:
    """Two gateway processes on one database, provisioned for issp's user."""
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server(database_url, directory, env))]
        asyncio.run(_provision(database_url))
        servers.append(stack.enter_context(running_server(database_url, directory, env)))
        yield servers


async def _provision(database_url: str) -> None:
    async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services:
        await services.identity.add_principal(tenant="default", login=LOGIN, principal_id=USER_ID, password=PASSWORD)


async def _logins_at_once(servers: list[Server], count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(120)) as client:
        return await asyncio.gather(
            *(
                client.post(servers[n % 2].base_url + "/api/session/createSession", json={"userId": USER_ID})
                for n in range(count)
            )
        )


async def _live_count(database_url: str) -> int:
    async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services:
        return len((await live_sessions(services, "issp")).items)


@pytest.mark.slow
@pytest.mark.parametrize("action", ["evict_oldest", "refuse"])
def test_parallel_logins_through_two_processes_never_leave_more_live_sessions_than_the_cap(
    database_url, tmp_path, action
):
    cap, count = 3, 24
    env = {"SESSIONGATE_ISSP__MAX_SESSIONS_PER_PRINCIPAL": str(cap), "SESSIONGATE_ISSP__ON_SESSION_CAP": action}
    with two_gateways(database_url, tmp_path, **env) as servers:
        answers = asyncio.run(_logins_at_once(servers, count))
        first = sorted(r.status_code for r in answers)
        assert asyncio.run(_live_count(database_url)) == cap
        answers += asyncio.run(_logins_at_once(servers, count))  # meets the first's
        second = sorted(r.status_code for r in answers[count:])
        assert asyncio.run(_live_count(database_url)) == cap
        cookies = [r.headers["set-cookie"].split(";", 1)[0] for r in answers if r.status_code == 200]
        for server in servers:  # every process refuses what any process evicted, on its next request
            validated = [
                httpx.post(server.base_url + "/api/session/validateSession", headers={"Cookie": cookie}, timeout=30)
                for cookie in cookies
            ]
            assert sum(r.status_code == 200 for r in validated) == cap
    if action == "evict_oldest":
        assert first == second == [200] * count
    else:
        assert first == [200] * cap + [409] * (count - cap)
        assert second == [409] * count


def test_a_create_refused_inside_its_transaction_leaves_no_row(make_capped):
    # What a login racing past the early count meets: the insert's own check undoes the insert, leaving the table as
    # it was.
    client = make_capped("issp", 1, "refuse")
    logged_in(client, "issp", 1)
    services = client.app.state.services
    store, now = services.sessions.store, services.clock()
    new = NewSession(tenant="default", dialect="issp", principal_id=USER_ID, reuse_key="issp-test-key")
    rows = run(client, _row_count, services)
    with pytest.raises(SessionLimitReached):
        run(
            client,
            store.insert_capped,
            new,
            now=now,
            expires_at=now + timedelta(hours=1),
            absolute_expires_at=None,
            token_digest=None,
            cap=SessionCap(most=1, action="refuse"),
        )
    assert run(client, _row_count, services) == rows
    assert len(live(client, "issp")) == 1


async def _row_count(services: Any) -> int:
    async with services.engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM sg_session"))).scalar_one())
