"""portos scenarios for ``bench/run.py``: list a page of 50 from 100 000 sessions (first and last page), and refresh.

Wire the listing in with ``SCENARIOS |= {s.name: s for s in scenarios_portos.scenarios(Scenario)}``; this module takes
the ``Scenario`` class as an argument instead of importing ``run`` (which runs as ``__main__``). Their setup hook,
:func:`seeded`, provisions an admin and a device through the CLI and writes :data:`SESSIONS` sessions straight into
the database of the gateway under test (found in the environment of its process), then logs in.

A refresh token is single-use, so refresh cannot be a fixed request replayed by a load generator: each request must
carry the token the previous one returned. :func:`refresh_chains` therefore drives its own load, ``chains`` logins
each refreshing in a loop, and returns the same figures as a load run (req/s, p50, p99, errors).

:func:`listing_figures` times the store's listing and prints the database's query plans for the first and the last
page, the figure that shows both are index reads. ``python bench/scenarios_portos.py`` prints it for a fresh SQLite
file (``--database-url`` for another database).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import http.client
import json
import random
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway_cli import gateway_environment, sessiongate

if TYPE_CHECKING:
    from collections.abc import Callable

SESSIONS = 100_000
PAGE = 50
TENANT = "default"
ADMIN, PASSWORD, DEVICE = "bench-admin", "bench-admin-password", "BenchOffice"  # a benchmark's login, not a secret
LOGIN_BODY = json.dumps({"UserName": ADMIN, "Password": PASSWORD, "DeviceName": DEVICE}).encode()
JSON = {"Content-Type": "application/json"}
SEED_MARK = "bench-seed"  # client_address of seeded rows, so a second setup does not seed again


def scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """The listing scenarios, built with ``bench/run.py``'s ``Scenario``."""
    auth = {"Authorization": "Bearer {token}"}
    return [
        scenario(
            name="portos-list-first",
            label=f"portos list, first page of {PAGE} of {SESSIONS:,}",
            method="GET",
            path=f"/sessions?$take={PAGE}",
            headers=auth,
            setup=seeded,
            figures=listing_in_gateway,
        ),
        scenario(
            name="portos-list-last",
            label=f"portos list, last page of {PAGE} of {SESSIONS:,}",
            method="GET",
            path=f"/sessions?$skip={{last}}&$take={PAGE}",
            headers=auth,
            setup=seeded,
            figures=listing_in_gateway,
        ),
        scenario(
            name="portos-refresh",
            label="portos refresh (rotate)",
            method="POST",
            path="/api/auth/refresh",
            driver=refresh_chains,
        ),
        scenario(
            name="portos-profile",
            label="portos profile (validate a JWT)",
            method="GET",
            path="/api/auth",
            headers=auth,
            setup=seeded,
        ),
    ]


async def seeded(target: Any) -> dict[str, str]:
    """An admin, a device and :data:`SESSIONS` sessions in the target's database; ``{"token", "last"}``."""
    await asyncio.to_thread(provision, target.pid)
    await seed_sessions(database_url(target.pid), SESSIONS)
    token = await _login(target)
    status, body = await target.request("GET", "/sessions?$count=true", headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise RuntimeError(f"counting sessions answered {status}: {body[:200]!r}")
    total = json.loads(body)["totalCount"]
    return {"token": token, "last": str(max(0, total - PAGE))}


async def refresh_chains(target: Any, connections: int, duration: float) -> dict[str, float]:
    """Refresh load: ``connections`` logins, each refreshing with the tokens its previous refresh returned.

    Each chain is a thread with one keep-alive connection, as a load generator's connection would be. The logins
    (argon2id, deliberately slow) happen before the clock starts. A chain stops at its first failure, which is
    counted: a non-200 answer in ``non_2xx``, a broken connection in ``socket_errors``.

    Returns:
        The figures of a load run over ``duration`` seconds: ``requests``, ``rps``, ``p50_ms``, ``p99_ms``,
        ``non_2xx`` and ``socket_errors``.
    """
    await asyncio.to_thread(provision, target.pid)
    start = threading.Barrier(connections + 1)
    stop = threading.Event()

    def chain() -> tuple[list[float], str]:
        latencies: list[float] = []
        conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=30)
        try:
            status, tokens = _post(conn, "/api/auth", LOGIN_BODY)
        except BaseException:
            start.abort()  # the other chains and the clock must not wait for this one
            conn.close()
            raise
        if status != 200:
            start.abort()
            conn.close()
            raise RuntimeError(f"portos login answered {status}")
        try:
            start.wait()
            # The connection has been idle while the other chains logged in (argon2id: on a slow machine, longer than
            # the server's keep-alive timeout, which then closes it); the chain refreshes on a new one.
            conn.close()
            while status == 200 and not stop.is_set():
                body = json.dumps({"tokenId": tokens["tokenId"], "refreshToken": tokens["refreshToken"]}).encode()
                began = time.perf_counter()
                status, tokens = _post(conn, "/api/auth/refresh", body)
                latencies.append((time.perf_counter() - began) * 1000)
        except OSError:
            return latencies, "socket"
        finally:
            conn.close()
        return (latencies, "") if status == 200 else (latencies[:-1], "status")

    with concurrent.futures.ThreadPoolExecutor(max_workers=connections) as pool:
        futures = [pool.submit(chain) for _ in range(connections)]
        await asyncio.to_thread(start.wait)
        began = time.monotonic()
        await asyncio.sleep(duration)
        stop.set()
        results = [await asyncio.wrap_future(f) for f in futures]
        elapsed = time.monotonic() - began
    latencies = [ms for found, _ in results for ms in found]
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": float(len(latencies)),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49],
        "p99_ms": cuts[98],
        "non_2xx": float(sum(failure == "status" for _, failure in results)),
        "socket_errors": float(sum(failure == "socket" for _, failure in results)),
    }


def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    conn.request("POST", path, body=body, headers=JSON)
    response = conn.getresponse()
    answer = response.read()
    return response.status, json.loads(answer) if response.status == 200 else {}


def database_url(pid: int) -> str:
    """The database the gateway ``pid`` serves."""
    return gateway_environment(pid)["SESSIONGATE_DATABASE_URL"]


def provision(pid: int) -> None:
    """The benchmark's admin and device, through the operators' CLI (already there is fine)."""
    admin = ("users", "add", "--login", ADMIN, "--role", "admin", "--permission", "admin", "--password-stdin")
    sessiongate(pid, *admin, stdin=f"{PASSWORD}\n")
    sessiongate(pid, "devices", "add", "--name", DEVICE, "--env", "BackOffice")


async def seed_sessions(database_url: str, count: int, *, batch: int = 5000) -> int:
    """Insert ``count`` live PORTOS sessions directly (once per database); how many were inserted.

    They start over the last 11 hours (so all are live for at least another hour) on 500 devices of two
    environments, for 1 000 users.
    """
    from sqlalchemy import func, insert, select
    from uuid_utils.compat import uuid7

    from sessiongate.storage.database import alchemy_config
    from sessiongate.storage.tables import SessionRecord

    table = SessionRecord.__table__

    engine = alchemy_config(database_url).get_engine()
    try:
        async with engine.connect() as conn:
            done = (await conn.execute(select(func.count()).where(table.c.client_address == SEED_MARK))).scalar_one()
        if done:
            return 0
        rng = random.Random(2023)
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            for start in range(0, count, batch):
                rows = []
                for i in range(start, min(start + batch, count)):
                    created = now - timedelta(seconds=rng.uniform(0, 11 * 3600))
                    rows.append(_row(uuid7(), i, created, now))
                await conn.execute(insert(table), rows)
        if engine.dialect.name == "postgresql":
            # What autovacuum would soon do: statistics, and a visibility map for index-only counts.
            async with engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql(
                    "VACUUM ANALYZE sg_session"
                )
        return count
    finally:
        await engine.dispose()


def _row(session_id: uuid.UUID, i: int, created: datetime, now: datetime) -> dict[str, Any]:
    sale = i % 5 != 0
    return {
        "id": session_id,
        "tenant": TENANT,
        "dialect": "portos",
        "principal_id": f"bench-user-{i % 1000}",
        "subject": f"user-{i % 1000:04d}",
        "client_address": SEED_MARK,
        "token_digest": None,
        "reuse_key": None,
        "device_id": None,
        "device_name": f"P{i % 500:03d}" if sale else "BackOffice",
        "device_kind": None,
        "device_model": None,
        "device_sdk_version": None,
        "device_env": "CashRegister" if sale else "BackOffice",
        "last_seen_at": created,
        "expires_at": created + timedelta(hours=12),
        "absolute_expires_at": None,
        "revoked_at": None,
        "version": 1,
        "attributes": {},
        "created_at": created,
        "updated_at": now,
    }


async def listing_in_gateway(target: Any) -> list[str]:
    """:func:`listing_figures` for the database of the gateway under test, under a heading."""
    heading = "portos listing in the gateway's own database, store only (no HTTP):"
    return [heading, *(f"  {line}" for line in await listing_figures(database_url(target.pid)))]


async def listing_figures(database_url: str, *, repeat: int = 20) -> list[str]:
    """The store's listing of the first and the last page of :data:`PAGE`: median time and the query plans."""
    from sqlalchemy import event

    from sessiongate.core.models import PageRequest, SessionQuery
    from sessiongate.storage.database import alchemy_config
    from sessiongate.storage.store import SqlSessionStore

    engine = alchemy_config(database_url).get_engine()
    store = SqlSessionStore(engine)
    lines = []
    try:
        now = datetime.now(UTC)
        total = (await store.list(SessionQuery(tenant=TENANT, count_only=True), now=now)).total or 0
        lines.append(f"{total:,} live sessions in tenant {TENANT!r} ({engine.dialect.name})")
        counting = SessionQuery(tenant=TENANT, count_only=True)
        lines.append(f"count alone: median {await _median_ms(store, counting, now, repeat):.2f} ms")
        for name, skip in (("first", 0), ("last", max(0, total - PAGE))):
            query = SessionQuery(tenant=TENANT, page=PageRequest(skip=skip, take=PAGE))
            page = await store.list(query, now=now)
            median = await _median_ms(store, query, now, repeat)
            lines.append(
                f"{name} page ($skip={skip}, $take={PAGE}): {len(page.items)} items, "
                f"median {median:.2f} ms over {repeat} runs (count + page)"
            )
            captured: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                captured.append((statement, parameters))  # noqa: B023 - used before the loop moves on

            event.listen(engine.sync_engine, "before_cursor_execute", capture)
            await store.list(query, now=now)
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
            for label, (statement, parameters) in zip(("count", "page"), captured, strict=True):
                lines.append(f"  {label} plan: {await _plan(engine, statement, parameters)}")
    finally:
        await engine.dispose()
    return lines


async def _median_ms(store: Any, query: Any, now: datetime, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await store.list(query, now=now)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


async def _plan(engine: Any, statement: str, parameters: Any) -> str:
    async with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " | ".join(str(r[-1]) for r in rows)
        rows = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {statement}", parameters)
        return " | ".join(str(r[0]).strip() for r in rows)


async def _login(target: Any) -> str:
    status, body = await target.request("POST", "/api/auth", body=LOGIN_BODY, headers=JSON)
    if status != 200:
        raise RuntimeError(f"login answered {status}: {body[:200]!r}")
    token: str = json.loads(body)["tokenId"]
    return token


async def _standalone(database_url: str | None, count: int) -> None:
    from sessiongate.storage.database import alchemy_config, upgrade

    with tempfile.TemporaryDirectory(prefix="sg-bench-portos-") as directory:
        url = database_url or f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        engine = alchemy_config(url).get_engine()
        await upgrade(engine)
        await engine.dispose()
        started = time.perf_counter()
        inserted = await seed_sessions(url, count)
        print(f"seeded {inserted:,} sessions in {time.perf_counter() - started:.1f} s")
        for line in await listing_figures(url):
            print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--sessions", type=int, default=SESSIONS)
    arguments = parser.parse_args()
    asyncio.run(_standalone(arguments.database_url, arguments.sessions))
