"""The HTTP edge: limits on what a client may send and for how long, enforced before any route sees a request.

``sessiongate serve`` runs uvicorn with :class:`GatewayHttpProtocol`, its httptools protocol with these limits added.
uvicorn alone answered a 32 MiB header and 100 000 headers with 200, buffering them whole, and held a connection that
sent half a request line for as long as the client liked: 3 000 such connections stayed open for 30 s and more. Here:

- a request target over ``max_url_bytes`` gets 414, a header line over ``max_header_line_bytes``, headers over
  ``max_header_bytes`` in all or more than ``max_header_count`` of them get 431, as soon as the limit is passed (a
  header still arriving is counted as it comes); both answers are ``text/plain`` and close the connection;
- a request line and headers that have not all arrived ``header_timeout`` seconds after their first byte (or after the
  connection opened), a body that stops arriving for ``body_timeout`` seconds, and a connection idle between requests
  for ``keep_alive_timeout`` seconds are closed;
- none of these timeouts closes a connection on bytes that have already arrived: a server that was stalled (paused,
  descheduled, its loop blocked) runs its overdue timers before it reads (uvloop does), and uvicorn then closed a
  keep-alive connection on the next request, unanswered, though it came a moment after the answer before it;
- past ``max_connections`` connections in one server process, a new connection closes the longest-waiting one that
  has no request in progress (a slow or silent client's, or an idle keep-alive one), so that clients that send
  whole requests are still served; if every connection has a request in progress, the new one gets 503.

The limits are the gateway's settings (:class:`ServerLimits`), not uvicorn's, so that another server can be given
the same ones.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import select
import weakref
from dataclasses import dataclass, replace
from typing import Any

import httptools
from litestar import Litestar
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from sessiongate.settings import Settings

__all__ = (
    "HEADERS_TOO_LARGE",
    "TARGET_TOO_LONG",
    "GatewayHttpProtocol",
    "ServerLimits",
    "create_served_app",
    "served_app_and_limits",
    "use_limits",
    "within_descriptor_limit",
)

log = logging.getLogger("sessiongate.server")
DESCRIPTOR_RESERVE = 64
"""Descriptors kept for what is not a client connection: database files and connections, pipes, the listener."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What one client may send, and how long it may take (see the module's docstring and the README)."""

    max_url_bytes: int = 8192
    max_header_line_bytes: int = 8192
    max_header_bytes: int = 32768
    max_header_count: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        """The limits a gateway's settings give."""
        return cls(
            max_url_bytes=settings.max_url_bytes,
            max_header_line_bytes=settings.max_header_line_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            max_connections=settings.max_connections,
        )

    @property
    def max_head_bytes(self) -> int:
        """The most a request line and its headers can take on the wire, with their separators."""
        return self.max_url_bytes + self.max_header_bytes + 4 * self.max_header_count + 64


RECHECK_SECONDS = 0.1
"""How long a timeout that found bytes waiting unread gives the server to read them before it looks again."""
LINGER_SECONDS = 2.0
"""How long a refused connection still reads (and drops) what the client sends, so that it gets the answer."""
_limits = ServerLimits()
TARGET_TOO_LONG = "Request target too long."
"""The body of the 414 (``text/plain``), on either server."""
HEADERS_TOO_LARGE = "Request header fields too large."
"""The body of the 431 the gateway gives (``text/plain``), on either server."""


def use_limits(limits: ServerLimits) -> None:
    """Make ``limits`` those of every connection this process accepts from now on."""
    global _limits  # noqa: PLW0603 - one server per process; its protocol instances are made by uvicorn
    _limits = limits


def create_served_app() -> Litestar:
    """The app ``sessiongate serve`` runs in each server process: settings read once, the limits set from them."""
    app, limits = served_app_and_limits()
    use_limits(limits)
    return app


def served_app_and_limits() -> tuple[Litestar, ServerLimits]:
    """The app a server process serves, and its limits, from settings read once (on uvicorn and on granian).

    ``serve`` has already said what start-up says (migrations, keys), once for all workers, so the app does not.
    """
    from sessiongate.app import create_app

    settings = Settings.from_env()
    # First: it sets up the logs a lowered cap is reported in. This process serves only this app: freeze its heap.
    app = create_app(settings, announce=False, freeze_heap=True)
    return app, within_descriptor_limit(ServerLimits.from_settings(settings))


def within_descriptor_limit(limits: ServerLimits) -> ServerLimits:
    """``limits``, with room for ``max_connections`` sockets among the process's file descriptors.

    Past its descriptor limit a process can accept no connection at all, so the cap must come first: the soft limit
    is raised as far as the hard one allows, and the cap lowered (with a warning) if that is still too little.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = limits.max_connections + DESCRIPTOR_RESERVE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitting = max(1, soft - DESCRIPTOR_RESERVE)
        log.warning(
            "max_connections lowered to fit the file descriptor limit",
            extra={"max_connections": fitting, "descriptor_limit": soft},
        )
        return replace(limits, max_connections=fitting)
    return limits


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that passed a limit."""


# Per server: the connections without a request in progress, longest-waiting first (a dict keeps insertion order).
_WAITING: weakref.WeakKeyDictionary[ServerState, dict[GatewayHttpProtocol, None]] = weakref.WeakKeyDictionary()


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the gateway's :class:`ServerLimits` (``uvicorn --http`` takes this class)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = _limits
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]  # uvicorn's is an int
        self._waiting = _WAITING.setdefault(server_state, {})
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_begun_now = False
        self._head_bytes = 0
        self._header_count = 0
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None
        self._lingering = False
        self._last_body_at = 0.0

    # -- connections ------------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, making room for it past ``max_connections``; start the header timeout."""
        super().connection_made(transport)
        if log.isEnabledFor(logging.DEBUG):  # every connection passes here: build nothing for a line not written
            log.debug("connection made", extra={"client": self.client, "connections": len(self.connections)})
        self._waiting[self] = None
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its timers."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("connection lost", extra={"client": self.client, "error": repr(exc) if exc else None})
        self._waiting.pop(self, None)
        self._cancel_head_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _make_room(self) -> None:
        for other in self._waiting:
            if other is not self:
                log.debug("connection closed to make room", extra={"client": other.client})
                other.transport.close()
                return
        # Every other connection has a request in progress: this one waits its turn elsewhere.
        self._write_and_close(503, "Too many connections.", retry_after=1)

    # -- reading ----------------------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed the parser (as uvicorn does); refuse a request that passes a limit; count a head still arriving."""
        if self._lingering:
            return
        self._unset_keepalive_if_required()
        self._head_begun_now = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._write_and_close(*self._refusal)
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            # httptools hands over a header only once it is complete, holding it meanwhile: a header still arriving
            # is counted here, by the chunks that came after the request began (that chunk's share is not known).
            if not self._head_begun_now:
                self._head_bytes += len(data)
                if self._head_bytes > self.limits.max_head_bytes:
                    self._write_and_close(431, HEADERS_TOO_LARGE)
                    return
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        elif self._body_timer is None and self.cycle is not None and self.cycle.more_body:
            self._last_body_at = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_message_begin(self) -> None:
        """A request begins: its head is counted, and timed unless it is all in the chunk it began in."""
        super().on_message_begin()
        self._in_head, self._head_begun_now = True, True
        self._head_bytes = self._header_count = self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        """Collect the request target, refusing it past ``max_url_bytes`` (414)."""
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._refuse(414, TARGET_TOO_LONG)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Collect a header, refusing the request past the header line, size or count limits (431)."""
        self._header_count += 1
        self._header_bytes += len(name) + len(value)
        if (
            len(name) + len(value) > self.limits.max_header_line_bytes
            or self._header_bytes > self.limits.max_header_bytes
            or self._header_count > self.limits.max_header_count
        ):
            self._refuse(431, HEADERS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is in: the request is in progress; a body that has not all come in is timed."""
        self._in_head = False
        self._cancel_head_timer()
        self._waiting.pop(self, None)
        super().on_headers_complete()
        # The cycle's task has not run yet: its first write is still to come. Not for HEAD, whose answer has no
        # body: uvicorn writes nothing after its head.
        if self.cycle is not None and self.scope["method"] != "HEAD":
            self.cycle.transport = _OneWriteHead(self.transport)  # type: ignore[assignment]  # what the cycle uses

    def on_body(self, body: bytes) -> None:
        """Pass a part of the body on; the body timeout counts from here."""
        super().on_body(body)
        self._last_body_at = self.loop.time()

    def on_message_complete(self) -> None:
        """The whole request is in."""
        self._cancel_body_timer()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The answer is sent: unless a pipelined request goes on, the connection waits (keep-alive)."""
        super().on_response_complete()
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._waiting[self] = None

    # -- limits -----------------------------------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        raise _Refused(message)

    def timeout_keep_alive_handler(self) -> None:
        """Close an idle keep-alive connection, unless a request is already waiting in its socket to be read."""
        if self._bytes_waiting():
            self.timeout_keep_alive_task = None  # they are read next: a request (timed as any) or the client's close
            return
        log.debug("idle connection closed", extra={"client": self.client})
        super().timeout_keep_alive_handler()

    def _head_timed_out(self, recheck: bool = True) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's head waits while the one before it is answered: time it once that is done.
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
            return
        if recheck and self._bytes_waiting():
            # Once only: a client that keeps bytes coming without ending its head gets no more time for it.
            self._head_timer = self.loop.call_later(RECHECK_SECONDS, self._head_timed_out, False)
            return
        log.debug("connection closed at the header timeout", extra={"client": self.client})
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.cycle is None or not self.cycle.more_body:
            return
        if self.flow.read_paused:
            # uvicorn stops reading while the application has not taken what came: that wait is not the client's.
            self._last_body_at = self.loop.time()
        elif self._bytes_waiting():
            # Body bytes that came in time and are not read yet: once read, they count as the body arriving.
            self._body_timer = self.loop.call_later(RECHECK_SECONDS, self._body_timed_out)
            return
        waited = self.loop.time() - self._last_body_at
        if waited < self.limits.body_timeout:
            self._body_timer = self.loop.call_later(self.limits.body_timeout - waited, self._body_timed_out)
            return
        # The application sees the client gone (http.disconnect), as if it had hung up.
        log.debug("connection closed at the body timeout", extra={"client": self.client})
        self.transport.close()

    def _bytes_waiting(self) -> bool:
        """Whether the client's socket holds bytes (or its close) this process has not read yet."""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()  # not select.select: a descriptor past 1023 is out of its range
        try:
            poller.register(sock.fileno(), select.POLLIN)
            return bool(poller.poll(0))
        except (OSError, ValueError):  # the socket is already closed
            return False

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _write_and_close(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # an answer to an earlier request is being written: no room for another
            return
        body = message.encode()
        head = [STATUS_LINE[status]]
        head += [name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers]
        if retry_after is not None:
            head.append(b"retry-after: %d\r\n" % retry_after)
        head += [b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n" % len(body)]
        head += [b"connection: close\r\n\r\n", body]
        self.transport.write(b"".join(head))
        # Closing with the client's bytes still unread would send a reset, which can destroy the answer before the
        # client reads it: end the sending side, read and drop what still comes for a moment, then close.
        self._lingering = True
        self._cancel_head_timer()
        self._cancel_body_timer()
        self._waiting.pop(self, None)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


class _OneWriteHead:
    """A response cycle's transport that writes the answer's head with the first part of its body, in one write.

    uvicorn writes the head and then the body, each at once: two sends and two segments where one does, and a send
    was a tenth of the loop's time on a validate. The cycle's first write that is not an interim answer (``100
    Continue``, which must go at once) is the head; it is held until the next write, which uvicorn makes for the first
    body message of every answer but a ``HEAD`` request's (even an empty one), or until a close (an application that
    fails after starting its answer). The cycle uses ``write``, ``close`` and ``is_closing``; the rest is the
    transport's.
    """

    __slots__ = ("_head", "_state", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head = b""
        self._state = 0  # 0: no head yet, 1: the head is held, 2: the head is written

    def write(self, data: bytes) -> None:
        """Hold the head; write what comes after it together with it."""
        if self._state == 1:
            self._state = 2
            data, self._head = self._head + data, b""
        elif self._state == 0 and not data.startswith(b"HTTP/1.1 1"):
            self._state, self._head = 1, data
            return
        self._transport.write(data)

    def close(self) -> None:
        """Close after writing a held head."""
        if self._state == 1:
            self.write(b"")
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
