"""A PostgreSQL database for one ``nox -s contract`` run: ``create <server URL>`` makes an empty database on that
server and prints its SQLAlchemy async URL; ``drop <server URL> <that URL>`` drops it, ending its connections first.

Run with the session's interpreter (it has asyncpg and SQLAlchemy, the gateway's own dependencies). The URL is the
form SESSIONGATE_TEST_DATABASE_URL takes (``postgresql://user@host:port/db``, a driver name allowed); only its server
and credentials are used, through its own database.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import asyncpg  # type: ignore[import-untyped]  # no stubs; only connect and execute are used
from sqlalchemy.engine import URL, make_url


def _dsn(url: URL, database: str | None = None) -> str:
    """What asyncpg connects to: ``url`` without its driver name, on ``database`` when given."""
    plain = url.set(drivername="postgresql")
    return (plain if database is None else plain.set(database=database)).render_as_string(hide_password=False)


async def _admin(url: URL, sql: str) -> None:
    conn = await asyncpg.connect(_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create(server: str) -> str:
    url = make_url(server)
    name = f"sg_contract_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(url, f'CREATE DATABASE "{name}"'))
    return url.set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)


def drop(server: str, database: str) -> None:
    name = make_url(database).database or ""
    if not name.startswith("sg_contract_"):  # only what create made
        raise SystemExit(f"not a contract run's database: {name!r}")
    asyncio.run(_admin(make_url(server), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main(argv: list[str]) -> None:
    if argv[:1] == ["create"] and len(argv) == 2:
        print(create(argv[1]))
    elif argv[:1] == ["drop"] and len(argv) == 3:
        drop(argv[1], argv[2])
    else:
        raise SystemExit("usage: database.py create <postgresql URL> | drop <postgresql URL> <URL printed by create>")


if __name__ == "__main__":
    main(sys.argv[1:])
