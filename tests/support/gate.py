"""A session of every dialect, for the gateway's own routes: what to provision, and how each client opens one.

The same helpers serve an app in process (Litestar's ``TestClient``) and a real server (``httpx.Client``): each
session comes back as the request headers its client sends with it (a cookie or a bearer token), which is also
what a reverse proxy hands the gateway's forward auth.
"""

from __future__ import annotations

import functools
from typing import Any

from sessiongate.dialect import DialectStorage
from sessiongate.gate.tokens import ApiTokens
from sessiongate.identity.tenants import TenantService
from sessiongate.runtime import Services
from sessiongate_portos.devices import Devices

DIALECTS = ("amity", "issp", "portos", "saymon", "zelf")
USER_ID, LOGIN, PASSWORD = "ada-0001", "ada@example.com", "ada-secret-pass-1"
ROLES = ("editor", "viewer")
DEVICE = "BackOffice"
NETWORK, API_KEY = "acme", "gate-test-api-key-0123456789abcdef"
AMITY_USER = "ada-amity"
PREFIX = "/_sessiongate"
FORWARD_AUTH, INTROSPECT, REVOKE = f"{PREFIX}/forward-auth", f"{PREFIX}/introspect", f"{PREFIX}/revoke"


def run(client: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` (a coroutine function) run on the event loop of ``client``'s app (a TestClient)."""
    return client.blocking_portal.call(functools.partial(fn, *args, **kwargs))


async def provision(services: Services) -> None:
    """One user (issp, saymon and portos log in as it), portos's device, and an amity network with an API key."""
    await services.identity.add_principal(
        tenant="default", login=LOGIN, principal_id=USER_ID, email=LOGIN, password=PASSWORD, roles=ROLES
    )
    await Devices(DialectStorage(services.runner)).add(tenant="default", name=DEVICE, env=DEVICE, now=services.clock())
    tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
    await tenants.add_keys(NETWORK, api_key=API_KEY)


def open_session(client: Any, dialect: str) -> tuple[dict[str, str], str]:
    """A new session of ``dialect``: the headers that carry it, and the credential itself (what introspection takes).

    The client keeps no cookie of it: every request names what it carries.
    """
    try:
        return _open_session(client, dialect)
    finally:
        client.cookies.clear()


def _open_session(client: Any, dialect: str) -> tuple[dict[str, str], str]:
    if dialect == "zelf":
        response = client.post("/api/sessions", json={"identifier": "device-0001"})
        token = _ok(response)["data"]["token"]
        return {"Authorization": f"Bearer {token}"}, token
    if dialect == "issp":
        response = client.post("/api/session/createSession", json={"userId": USER_ID})
        secret = _ok(response)["text"]["sessionId"]
        return {"Cookie": response.headers["set-cookie"].split(";", 1)[0]}, secret
    if dialect == "saymon":
        response = client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD})
        sid = _ok(response)
        return {"Cookie": f"sid={sid}"}, sid
    if dialect == "portos":
        body = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}
        token = _ok(client.post("/api/auth", json=body))["tokenId"]
        return {"Authorization": f"Bearer {token}"}, token
    if dialect == "amity":
        body = {"userId": AMITY_USER, "deviceId": "phone-0001"}
        token = _ok(client.post("/api/v5/sessions", json=body, headers={"x-api-key": API_KEY}))["accessToken"]
        return {"Authorization": f"Bearer {token}"}, token
    raise ValueError(dialect)


def portos_refresh_token(client: Any) -> tuple[str, str]:
    """A portos login's tokenId and refresh token."""
    body = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}
    login = _ok(client.post("/api/auth", json=body))
    return login["tokenId"], login["refreshToken"]


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def api_token(client: Any, scope: str = "admin", name: str = "operator") -> str:
    """A new gateway API token of ``scope`` on the app ``client`` serves, made as ``admin-tokens add`` makes it."""
    services = client.app.state.services
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    added = client.blocking_portal.call(functools.partial(tokens.add, name, scope))
    return str(added.value)
