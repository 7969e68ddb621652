"""Real gateway processes with every dialect provisioned and logged in to, and each dialect's error shape.

For tests that send the same request to every dialect, on SQLite and on PostgreSQL, over real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from sessiongate.dialect import DialectStorage
from sessiongate.identity.tenants import TenantService
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from sessiongate_portos.devices import Devices
from tests.support.databases import backends, database, default_migrations
from tests.support.server import Server, running_server

LOGIN, PASSWORD = "edge.user", "edge-user-passphrase-1"
USER_ID = "0123456789abcdef01234567"
DEVICE = "P01"
API_KEY = "edge-api-key-0123456789abcdef"
SERVER_KEY = "edge-server-key-0123456789abcdef"
SECURE_TENANT = "edge-secure"


@dataclass
class Gateway:
    """A running gateway on one database, and credentials of every dialect on it."""

    kind: str
    server: Server
    database_url: str
    credentials: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base_url}{path}", timeout=60, **kwargs)

    def session_count(self) -> int:
        return int(run_sql(self.database_url, "SELECT count(*) FROM sg_session"))


def run_sql(database_url: str, sql: str) -> Any:
    async def go() -> Any:
        settings = Settings(database_url=database_url, sweep_interval=0)
        async with open_services(settings, migrate=False) as services, services.engine.connect() as conn:
            return (await conn.execute(text(sql))).scalar()

    return asyncio.run(go())


def provision(database_url: str) -> str:
    """A user of every dialect (password, auth token, admin), a device, an API key and a secure network's server key.

    Returns the saymon auth token.
    """

    async def go() -> str:
        settings = Settings(database_url=database_url, sweep_interval=0)
        async with open_services(settings, migrate=True, migrations=default_migrations()) as services:
            await services.identity.add_principal(
                login=LOGIN, principal_id=USER_ID, password=PASSWORD, roles=("admin",), permissions=("admin",)
            )
            await Devices(DialectStorage(services.runner)).add(
                tenant="default", name=DEVICE, env="CashRegister", now=services.clock()
            )
            tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
            await tenants.add_keys("edge", api_key=API_KEY)
            await tenants.add_keys(SECURE_TENANT, secure=True, server_key=SERVER_KEY)
            return await services.identity.add_auth_token(login=LOGIN)

    return asyncio.run(go())


def log_in(gateway: Gateway, auth_token: str) -> None:
    """Credentials of every dialect, so that requests get past authentication to the input under test."""
    portos = gateway.request(
        "POST", "/api/auth", json={"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}
    ).json()
    amity = gateway.request(
        "POST", "/api/v4/sessions", json={"userId": "edge", "deviceId": "edge-device"}, headers={"x-api-key": API_KEY}
    ).json()
    issp = gateway.request("POST", "/api/session/createSession", json={"userId": USER_ID})
    gateway.credentials = {
        "portos_token": portos["tokenId"],
        "portos_refresh": portos["refreshToken"],
        "saymon_sid": gateway.request("POST", "/node/api/users/session", json={"auth-token": auth_token}).json(),
        "saymon_auth_token": auth_token,
        "amity_token": amity["accessToken"],
        "issp_cookie": issp.cookies["sessionCookie"],
    }


@contextlib.contextmanager
def provisioned_gateways(directory: Path, env: Mapping[str, str] | None = None) -> Iterator[list[Gateway]]:
    """One provisioned, logged-in gateway per database kind the suite runs on (SQLite, and PostgreSQL if set)."""
    with contextlib.ExitStack() as stack:
        gateways = []
        for kind in backends():
            place = directory / kind
            place.mkdir()
            url = stack.enter_context(database(kind, place))
            auth_token = provision(url)
            server = stack.enter_context(running_server(url, place, env=env))
            gateway = Gateway(kind=kind, server=server, database_url=url)
            log_in(gateway, auth_token)
            gateways.append(gateway)
        yield gateways


def in_dialect_shape(dialect: str, response: httpx.Response) -> bool:
    """Whether ``response`` is an error in the dialect's own shape (its vendor's error body)."""
    media = response.headers.get("content-type", "").split(";", 1)[0]
    if dialect == "amity" and media == "text/plain":
        return response.status_code == 401 and response.text == "Unauthorized"  # the auth-token routes (S2)
    if media not in {"application/json", "application/problem+json"}:
        return False
    body = response.json()
    if not isinstance(body, dict):
        return False
    if dialect == "zelf":
        return set(body) == {"error"} and isinstance(body["error"], str)
    if dialect == "issp":
        return set(body) == {"message"} and isinstance(body["message"], str)
    if dialect == "saymon":
        return set(body) == {"code", "message"} and all(isinstance(v, str) for v in body.values())
    if dialect == "portos":
        required = {"type", "title", "status", "detail", "instance", "traceId"}
        return media == "application/problem+json" and required <= set(body) and body["status"] == response.status_code
    if dialect == "amity":
        return body.get("status") == "error" and isinstance(body.get("code"), int) and isinstance(body["message"], str)
    raise AssertionError(f"unknown dialect {dialect}")


def comparable(response: httpx.Response) -> tuple[int, str, Any]:
    """Status, media type and body, without what differs on every answer (portos's traceId)."""
    media = response.headers.get("content-type", "").split(";", 1)[0]
    try:
        body = response.json()
    except ValueError:
        return response.status_code, media, response.text
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "traceId"}
    return response.status_code, media, body
