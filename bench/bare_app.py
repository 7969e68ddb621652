"""Bare Litestar app: the ceiling the gateway's throughput is compared against.

It serves ``GET /bare`` (small JSON) and ``GET /readyz``, with uvicorn exactly
like the gateway (uvloop/httptools when installed, one worker, access log off)
or, with ``--server granian``, on granian (one worker, access log off): the
reference every figure of the benchmark is a share of.

``--fake-gateway`` adds an in-memory stand-in for ``POST /api/sessions`` so the
harness can be exercised before the real gateway runs; it is not a benchmark
of anything.

Usage::

    python bench/bare_app.py --host 127.0.0.1 --port 8001 [--server granian] [--fake-gateway]
"""

from __future__ import annotations

import argparse
import importlib.util
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import uvicorn
from litestar import Litestar, get, post
from litestar.handlers import BaseRouteHandler

_SESSION_TTL = timedelta(minutes=30)
_FAKE_SESSIONS: dict[str, dict[str, str]] = {}


class CreateSession(msgspec.Struct):
    """Body of the fake ``POST /api/sessions``."""

    identifier: str


@get("/bare")
async def bare() -> dict[str, str]:
    """Return a small constant JSON document."""
    return {"status": "ok"}


@get("/readyz")
async def readyz() -> dict[str, str]:
    """Report readiness (always ready)."""
    return {"status": "ready"}


@post("/api/sessions", status_code=200)
async def fake_create_session(data: CreateSession) -> dict[str, dict[str, str]]:
    """Create (or return the live) fake session for an identifier; self-test only."""
    session = _FAKE_SESSIONS.get(data.identifier)
    if session is None:
        now = datetime.now(UTC)
        session = {
            "token": secrets.token_urlsafe(24),
            "activatedAt": now.isoformat(),
            "expiresAt": (now + _SESSION_TTL).isoformat(),
        }
        _FAKE_SESSIONS[data.identifier] = session
    return {"data": session}


def create_app(*, fake_gateway: bool = False) -> Litestar:
    """Build the bare app.

    Args:
        fake_gateway: Also mount the in-memory ``POST /api/sessions`` stand-in.

    Returns:
        The Litestar application.
    """
    handlers: list[BaseRouteHandler] = [bare, readyz]
    if fake_gateway:
        handlers.append(fake_create_session)
    return Litestar(route_handlers=handlers, debug=False, openapi_config=None)


def server_implementations() -> tuple[str, str]:
    """Pick uvicorn's loop and HTTP implementation the way the gateway does.

    Returns:
        ``(loop, http)``: uvloop/httptools when installed, else asyncio/h11.
    """
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def serve(app: Litestar, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn: one worker, access log off.

    Args:
        app: The application.
        host: Address to bind (loopback for benchmarks).
        port: Port to bind.
    """
    loop, http = server_implementations()
    uvicorn.run(app, host=host, port=port, workers=1, loop=loop, http=http, access_log=False, log_level="warning")


def serve_granian(host: str, port: int) -> None:
    """Serve the bare app (without the fake gateway) with granian: ASGI, one worker, access log off.

    Args:
        host: Address to bind (loopback for benchmarks).
        port: Port to bind.
    """
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    here = str(Path(__file__).resolve().parent)
    server = Granian(
        "bare_app:create_app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        log_access=False,
        log_level=LogLevels.warning,
        working_dir=Path(here),
    )
    server.serve()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve the bare app until terminated.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit code.
    """
    parser = argparse.ArgumentParser(description="Bare Litestar app for the benchmark baseline.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--fake-gateway", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.server == "granian":
        serve_granian(args.host, args.port)
    else:
        serve(create_app(fake_gateway=args.fake_gateway), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
