"""``sessiongate serve --server granian``: the gateway on granian, with as many of the HTTP edge's limits as it allows.

granian parses HTTP in Rust, on a thread of its own, and writes the answers there too: the event loop does only the
application's work. In one bench run on a two-core machine it answered issp validates over 10,000 sessions at 2,266
req/s where uvicorn answered 1,711 (the bench's ``granian:`` rows measure it in every run). But the limits of
:mod:`sessiongate.server` are built into uvicorn's protocol, and granian's HTTP layer cannot be reached from Python.
Here:

- granian holds at most ``max_head_bytes`` of a request's head and at most 100 headers (431 past either, from
  granian itself, with an empty body; a ``max_header_count`` over 100 cannot raise that); this app refuses a request
  target over ``max_url_bytes`` (414) and a header line over ``max_header_line_bytes``, headers over
  ``max_header_bytes`` or more than ``max_header_count`` of them (431), with the same plain-text answers as on
  uvicorn;
- granian closes a connection whose head has not all arrived ``min(header_timeout, keep_alive_timeout)`` seconds
  after the connection opened or the last answer was sent: one timer for a slow head and an idle keep-alive
  connection, the shorter of the two;
- a body that stops arriving for ``body_timeout`` seconds gets 408 and the connection is closed (the application
  sees the client gone, and its metrics count a 499, as on uvicorn);
- each server process serves at most ``max_connections`` connections at once; a connection past them waits (in the
  listen backlog) until one closes. There is no eviction and no 503: a crowd of silent clients delays whole requests
  by up to the header timeout. Put a reverse proxy that caps connections in front when that matters, or stay on
  uvicorn (the default), which evicts them.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from sessiongate.server import HEADERS_TOO_LARGE, TARGET_TOO_LONG, ServerLimits, served_app_and_limits

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

__all__ = ("EdgeLimits", "create_granian_app", "run_granian")

GRANIAN_MIN_BUFFER = 8192
GRANIAN_MAX_HEADER_TIMEOUT_MS = 60_000


class EdgeLimits:
    """The gateway's size limits on what granian let through, and its body timeout (see the module's docstring)."""

    __slots__ = ("app", "limits")

    def __init__(self, app: ASGIApp, limits: ServerLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        limits = self.limits
        query = scope["query_string"]
        if len(scope["raw_path"] or b"") + (len(query) + 1 if query else 0) > limits.max_url_bytes:
            await _refuse(send, 414, TARGET_TOO_LONG)
            return
        total = count = 0
        with_body = False
        for name, value in scope["headers"]:
            size = len(name) + len(value)
            if size > limits.max_header_line_bytes:
                await _refuse(send, 431, HEADERS_TOO_LARGE)
                return
            total += size
            count += 1
            if (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
                with_body = True
        if total > limits.max_header_bytes or count > limits.max_header_count:
            await _refuse(send, 431, HEADERS_TOO_LARGE)
            return
        if not with_body:
            await self.app(scope, receive, send)
            return
        await _BodyTimed(receive, send, limits.body_timeout).run(self.app, scope)


class _BodyTimed:
    """One request with a body: each part must come within ``timeout`` seconds of the one before, else 408."""

    __slots__ = ("receive", "send", "started", "timed_out", "timeout", "whole")

    def __init__(self, receive: Receive, send: Send, timeout: float) -> None:
        self.receive, self.send, self.timeout = receive, send, timeout
        self.started = self.timed_out = self.whole = False

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        await app(scope, self._receive, self._send)

    async def _receive(self) -> ReceiveMessage:
        if self.timed_out:
            return {"type": "http.disconnect"}
        if self.whole:
            return await self.receive()  # the body is in: what comes next is the client's leaving, whenever it does
        try:
            async with asyncio.timeout(self.timeout):
                message = await self.receive()
        except TimeoutError:
            self.timed_out = True
            if not self.started:
                self.started = True
                await _refuse(self.send, 408, "Request body timed out.")
            # The application sees the client gone, as on uvicorn, where the connection is closed.
            return {"type": "http.disconnect"}
        self.whole = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def _send(self, message: Message) -> None:
        if self.timed_out:
            return  # the 408 is the answer
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def _refuse(send: Send, status: int, message: str) -> None:
    """The plain-text answer ``sessiongate.server`` gives on uvicorn; granian closes the connection after it."""
    body = message.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def create_granian_app() -> ASGIApp:
    """The app each granian worker serves: the gateway's, behind :class:`EdgeLimits`."""
    return EdgeLimits(*served_app_and_limits())


def granian_header_timeout_ms(limits: ServerLimits) -> int:
    """granian's one timer for a head and an idle connection: the shorter of the two, in its range."""
    shortest = min(limits.header_timeout, limits.keep_alive_timeout)
    return max(1, min(GRANIAN_MAX_HEADER_TIMEOUT_MS, round(shortest * 1000)))


def run_granian(host: str, port: int, workers: int, limits: ServerLimits, backlog: int) -> None:
    """Serve the gateway on granian until it is told to stop (SIGINT, SIGTERM)."""
    import multiprocessing

    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels

    # granian starts its workers with the default method, fork on Linux: they would inherit what ``serve`` did first
    # (its database connections; the metrics' storage, chosen when they were imported, before the workers' shared
    # directory was set). Started fresh, as uvicorn's, each worker counts into that directory.
    multiprocessing.set_start_method("spawn", force=True)
    Granian(
        "sessiongate.granian_edge:create_granian_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop if importlib.util.find_spec("uvloop") else Loops.asyncio,
        http=HTTPModes.http1,  # as on uvicorn: no cleartext HTTP/2, which none of the dialects' clients speaks
        websockets=False,  # no route is a WebSocket
        backlog=backlog,
        backpressure=limits.max_connections,
        respawn_failed_workers=True,  # as uvicorn's supervisor: a worker that dies is replaced, the others serve on
        http1_settings=HTTP1Settings(
            header_read_timeout=granian_header_timeout_ms(limits),
            max_buffer_size=max(GRANIAN_MIN_BUFFER, limits.max_head_bytes),
        ),
        log_level=LogLevels.warning,
        # Its lines go to the gateway's JSON handler (observability), as uvicorn's do: its own loggers, without their
        # plain-text handlers, pass them on.
        log_dictconfig={
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {},
            "handlers": {},
            "loggers": {"_granian": {"propagate": True}, "granian.access": {"propagate": True}},
        },
        log_access=False,  # the gateway's own (SESSIONGATE_ACCESS_LOG) names routes, not the paths as sent
    ).serve()
