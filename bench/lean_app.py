"""The lean anchor: a session validate on Litestar + SQLAlchemy Core + asyncpg, nothing else.

What a hand-rolled service would do for the same request as issp validate on PostgreSQL: read the cookie, digest
it (HMAC-SHA-256), one ``SELECT`` by the digest's unique index, refuse a revoked or expired row, answer a small JSON
document. No dialects, no sliding, no error shapes: the floor the gateway's PostgreSQL figure is held against.

Usage::

    python bench/lean_app.py seed --url postgresql+asyncpg://... --count 10000 --out cookies.txt
    python bench/lean_app.py serve --url postgresql+asyncpg://... --port 8003 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from litestar import Litestar, Request, get, post
from litestar.exceptions import NotAuthorizedException
from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

KEY = b"lean-anchor-digest-key"  # a benchmark's key, not a secret
URL_ENV = "LEAN_DATABASE_URL"
POOL_SIZE = 20
"""Connections per worker, no overflow: the gateway's pool in the same run (``run.PG_POOL_PER_WORKER``)."""
metadata = MetaData()
sessions = Table(
    "lean_session",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("id", String(36), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)
_BY_DIGEST = select(sessions.c.id, sessions.c.subject, sessions.c.expires_at, sessions.c.revoked_at)


def digest(secret: str) -> str:
    """The keyed digest a session is stored under."""
    return hmac.new(KEY, secret.encode(), hashlib.sha256).hexdigest()


class _State:
    engine: AsyncEngine | None = None


@post("/validate", status_code=200)
async def validate(request: Request[object, object, object]) -> dict[str, str]:
    """The session of the ``sessionCookie``: one SELECT by digest."""
    secret = request.cookies.get("sessionCookie")
    if not secret or _State.engine is None:
        raise NotAuthorizedException
    async with _State.engine.connect() as conn:
        row = (await conn.execute(_BY_DIGEST.where(sessions.c.digest == digest(secret)))).first()
    if row is None or row.revoked_at is not None or row.expires_at <= datetime.now(UTC):
        raise NotAuthorizedException
    return {"id": row.id, "subject": row.subject, "expiresAt": row.expires_at.isoformat()}


@get("/readyz")
async def readyz() -> dict[str, str]:
    """Ready once started."""
    return {"status": "ready"}


async def _start() -> None:
    _State.engine = create_async_engine(os.environ[URL_ENV], pool_size=POOL_SIZE, max_overflow=0)


async def _stop() -> None:
    if _State.engine is not None:
        await _State.engine.dispose()


def create_app() -> Litestar:
    """The anchor app; its database comes from ``LEAN_DATABASE_URL``."""
    return Litestar(
        route_handlers=[validate, readyz], on_startup=[_start], on_shutdown=[_stop], debug=False, openapi_config=None
    )


async def seed(url: str, count: int) -> list[str]:
    """Create the table and ``count`` live sessions; their cookies."""
    engine = create_async_engine(url)
    cookies = [secrets.token_urlsafe(24) for _ in range(count)]
    expires = datetime.now(UTC) + timedelta(hours=2)
    rows = [
        {"digest": digest(c), "id": secrets.token_hex(16), "subject": f"user-{i}@example.com", "expires_at": expires}
        for i, c in enumerate(cookies)
    ]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(sessions).on_conflict_do_nothing(), rows)
    finally:
        await engine.dispose()
    return cookies


def main(argv: list[str] | None = None) -> int:
    """Seed or serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--url", required=True)
    seeding.add_argument("--count", type=int, default=10_000)
    seeding.add_argument("--out", type=Path, required=True)
    serving = sub.add_parser("serve")
    serving.add_argument("--url", default=os.environ.get(URL_ENV))
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, required=True)
    serving.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "seed":
        args.out.write_text("\n".join(asyncio.run(seed(args.url, args.count))) + "\n")
        return 0
    os.environ[URL_ENV] = args.url
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    uvicorn.run(
        "lean_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
