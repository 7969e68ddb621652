from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.support.databases import PG_ENV, database
from tests.support.gateways import (
    API_KEY,
    DEVICE,
    LOGIN,
    PASSWORD,
    USER_ID,
    Gateway,
    in_dialect_shape,
    log_in,
    provision,
)
from tests.support.proxy import cuttable_proxy
from tests.support.server import running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

RETRY_AFTER = "7"
ENV = {"SESSIONGATE_UNAVAILABLE_RETRY_AFTER": RETRY_AFTER}
needs_postgresql = pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} is not set")


@dataclass(frozen=True)
class Probe:
    dialect: str
    method: str
    path: str
    ok: int
    kwargs: Callable[[dict[str, str]], dict[str, Any]]
    unavailable: int = 503
    """What the dialect answers while the database is out: 503, but for issp, whose seed gives "unexpected
    database error" as a case of its 500 (issp decision 15)."""

    def send(self, gateway: Gateway) -> httpx.Response:
        return gateway.request(self.method, self.path, **self.kwargs(gateway.credentials))


# One request per dialect that needs the database to answer: reads of a session, and writes of a new one.
READS = [
    Probe("zelf", "POST", "/api/sessions", 200, lambda _: {"json": {"identifier": "outage-device"}}),
    Probe(
        "issp",
        "POST",
        "/api/session/validateSession",
        200,
        lambda c: {"headers": {"cookie": f"sessionCookie={c['issp_cookie']}"}},
        unavailable=500,
    ),
    Probe("portos", "GET", "/api/auth", 200, lambda c: {"headers": {"authorization": f"Bearer {c['portos_token']}"}}),
    Probe("saymon", "GET", "/node/api/users/current", 200, lambda c: {"headers": {"cookie": f"sid={c['saymon_sid']}"}}),
    Probe(
        "amity", "GET", "/api/v3/sessions", 200, lambda c: {"headers": {"authorization": f"Bearer {c['amity_token']}"}}
    ),
]
WRITES = [
    Probe(
        "zelf", "POST", "/api/sessions", 200, lambda _: {"json": {"identifier": "outage-writer", "killSession": True}}
    ),
    Probe("issp", "POST", "/api/session/createSession", 200, lambda _: {"json": {"userId": USER_ID}}, unavailable=500),
    Probe(
        "portos",
        "POST",
        "/api/auth",
        200,
        lambda _: {"json": {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}},
    ),
    Probe("saymon", "POST", "/node/api/users/session", 200, lambda c: {"json": {"auth-token": c["saymon_auth_token"]}}),
    Probe(
        "amity",
        "POST",
        "/api/v4/sessions",
        200,
        lambda _: {"json": {"userId": "outage", "deviceId": "outage-device"}, "headers": {"x-api-key": API_KEY}},
    ),
]


def all_at_once(gateway: Gateway, probes: list[Probe]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(probes)) as pool:
        return list(pool.map(lambda probe: probe.send(gateway), probes))


def assert_unavailable(gateway: Gateway, probes: list[Probe]) -> None:
    for probe, response in zip(probes, all_at_once(gateway, probes), strict=True):
        assert response.status_code == probe.unavailable, (probe.dialect, response.status_code, response.text)
        assert response.headers.get("retry-after") == RETRY_AFTER, (probe.dialect, response.headers)
        assert in_dialect_shape(probe.dialect, response), (probe.dialect, response.text)


def assert_served(gateway: Gateway, probes: list[Probe]) -> None:
    for probe in probes:
        response = probe.send(gateway)
        assert response.status_code == probe.ok, (probe.dialect, response.status_code, response.text)


def wait_ready(gateway: Gateway, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while gateway.request("GET", "/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the gateway did not become ready again by itself"
        time.sleep(0.2)


def assert_no_errors_logged(gateway: Gateway) -> None:
    assert '"level":"error"' not in gateway.server.logs()


@needs_postgresql
def test_an_unreachable_postgresql_gets_503_with_retry_after_in_every_dialect_and_recovers_by_itself(tmp_path):
    with database("postgresql", tmp_path) as direct_url:
        auth_token = provision(direct_url)
        target = make_url(direct_url)
        with cuttable_proxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            url = target.set(port=proxy.port).render_as_string(hide_password=False)
            with running_server(url, tmp_path, env=ENV) as server:
                gateway = Gateway(kind="postgresql", server=server, database_url=url)
                log_in(gateway, auth_token)
                assert_served(gateway, READS)

                proxy.cut()
                assert_unavailable(gateway, READS + WRITES)
                assert gateway.request("GET", "/readyz").status_code == 503
                assert gateway.request("GET", "/healthz").status_code == 200

                proxy.restore()
                wait_ready(gateway)
                assert_served(gateway, READS + WRITES)
                assert_no_errors_logged(gateway)


@needs_postgresql
def test_postgresql_backends_terminated_and_refusing_connections_get_503_and_the_pool_recovers(tmp_path):
    with database("postgresql", tmp_path) as url:
        auth_token = provision(url)
        name = make_url(url).database
        admin = make_url(os.environ[PG_ENV]).set(drivername="postgresql").render_as_string(hide_password=False)
        with running_server(url, tmp_path, env=ENV) as server:
            gateway = Gateway(kind="postgresql", server=server, database_url=url)
            log_in(gateway, auth_token)
            assert_served(gateway, READS)

            admin_sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin_sql(admin, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            try:
                assert_unavailable(gateway, READS + WRITES)
                assert gateway.request("GET", "/readyz").status_code == 503
            finally:
                admin_sql(admin, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            wait_ready(gateway)
            assert_served(gateway, READS + WRITES)
            assert_no_errors_logged(gateway)


def admin_sql(dsn: str, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def test_a_locked_sqlite_database_gets_503_with_retry_after_on_every_write_and_recovers_when_released(tmp_path):
    with database("sqlite", tmp_path) as url:
        auth_token = provision(url)
        with running_server(url, tmp_path, env=ENV) as server:
            gateway = Gateway(kind="sqlite", server=server, database_url=url)
            log_in(gateway, auth_token)
            # Another process holds the write lock for longer than the gateway's busy timeout (5 s).
            holder = sqlite3.connect(make_url(url).database or "", isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                assert_unavailable(gateway, WRITES)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert_served(gateway, READS + WRITES)
            assert_no_errors_logged(gateway)


def test_a_vanished_sqlite_directory_gets_503_and_not_ready_and_recovers_when_it_is_back(tmp_path):
    place = tmp_path / "volume"
    place.mkdir()
    url = f"sqlite+aiosqlite:///{place / 'gateway.db'}"
    auth_token = provision(url)
    with running_server(url, tmp_path, env=ENV) as server:
        gateway = Gateway(kind="sqlite", server=server, database_url=url)
        gateway.credentials = {"saymon_auth_token": auth_token}
        gone = place.rename(tmp_path / "volume-detached")
        try:
            assert_unavailable(gateway, WRITES)
            assert gateway.request("GET", "/readyz").status_code == 503
        finally:
            Path(gone).rename(place)
        wait_ready(gateway)
        assert_served(gateway, WRITES)
        assert_no_errors_logged(gateway)
