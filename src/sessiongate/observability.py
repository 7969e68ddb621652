"""Logs and metrics.

Logs: every line on standard error is one JSON object, of every standard library record (the gateway's own, uvicorn's
and any library's): ``time``, ``level``, ``logger``, ``message``, ``pid``, then the record's extras. structlog's
processors define the line; :class:`JsonLineFormatter` writes a record without an exception or a stack as they would,
straight, and hands the others to them. An exception is logged as its type and its frames (file, line, function):
never its message nor a local value, which can hold a token, a password or a statement's parameters. With
``SESSIONGATE_ACCESS_LOG=true`` each request is one line (:class:`RequestObserver`): method, route template (never the
path as sent, which can carry a session id), status, duration, dialect, tenant where known (the request's session,
login, new session or API key named it) and the client address the gateway trusts; never a header, cookie, body or
query string.

Metrics: ``/metrics`` (or ``SESSIONGATE_METRICS_PORT``, served by ``serve`` itself), optionally behind a bearer token
(``SESSIONGATE_METRICS_TOKEN``); with several server processes, every process's counts are added up at each scrape
(:func:`metrics_directory`). What is counted is in ``sessiongate.meters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import msgspec
import structlog
from litestar import Request, Response, get
from litestar.enums import ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils import normalize_path
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as exposition
from prometheus_client.multiprocess import MultiProcessCollector
from structlog.tracebacks import extract

from sessiongate import meters
from sessiongate.dialects.base import forwarded_client
from sessiongate.metric_values import Step, Timing, counting, gauge_steps

if TYPE_CHECKING:
    from litestar._asgi.asgi_router import ASGIRouter

    from sessiongate.runtime import Services
    from sessiongate.settings import Settings

__all__ = (
    "MULTIPROC_ENV",
    "RequestObserver",
    "configure_logging",
    "count_live_sessions",
    "metrics_directory",
    "metrics_handler",
    "metrics_registry",
    "serve_metrics",
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus_client's multiprocess mode keeps each process's counts (read when it is first imported)."""
MAX_FRAMES = 50
"""Frames logged per exception (the innermost ones, where it was raised), so a deep recursion logs a bounded line."""
_FIRST = ("time", "level", "logger", "message", "pid")
_DROPPED = frozenset({"color_message", "positional_args"})  # uvicorn's coloured copy of its message; the arguments


# -- logs ---------------------------------------------------------------------------------------------------------


_ENCODER = msgspec.json.Encoder(enc_hook=str)


def _encode(entry: Mapping[str, Any], **_: Any) -> str:
    return _ENCODER.encode(entry).decode()


def _exception_as_frames(_logger: Any, _name: str, entry: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """``exc_info`` as the exception's type and, for it and each cause, the type and the frames."""
    exc_info = entry.pop("exc_info", None)
    entry.pop("stack_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or exc_info[1] is None:
        return entry
    exc_type, exc, traceback = cast("tuple[type[BaseException], BaseException, TracebackType | None]", exc_info)
    entry["exception"] = exc_type.__name__
    stacks = extract(exc_type, exc, traceback, show_locals=False).stacks
    entry["traceback"] = [
        {
            "type": stack.exc_type,
            "cause": stack.is_cause,
            "frames": [
                {"file": frame.filename, "line": frame.lineno, "function": frame.name}
                for frame in stack.frames[-MAX_FRAMES:]
            ],
        }
        for stack in stacks
    ]
    return entry


def _ordered(_logger: Any, _name: str, entry: structlog.typing.EventDict) -> structlog.typing.EventDict:
    entry["pid"] = os.getpid()
    first = {key: entry[key] for key in _FIRST if key in entry}
    return first | {key: value for key, value in entry.items() if key not in first and key not in _DROPPED}


_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)
"""What every record has of itself: structlog's ExtraAdder takes a record's other attributes for its extras."""
_NOT_EXTRAS = _RECORD_KEYS | _DROPPED | {"time", "pid", "message", "event", "_record", "_from_structlog"}
"""Attributes the structlog line never shows as extras: the stamp and the pid overwrite theirs, ``message`` is the
record's message, an ``event`` becomes the message, the processors' own keys are removed."""
_LEVEL_ALIASES = {"warn": "warning", "exception": "error"}  # structlog's add_log_level: stdlib's aliases


def _processor_formatter() -> structlog.stdlib.ProcessorFormatter:
    """structlog's processors over the standard library's record: what defines the line."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _exception_as_frames,
            structlog.processors.EventRenamer("message"),
            _ordered,
            structlog.processors.JSONRenderer(serializer=_encode),
        ],
    )


class JsonLineFormatter(logging.Formatter):
    """The line structlog's processors (:func:`_processor_formatter`) write of a record, written straight when the
    record has no exception or stack to render: the same keys in the same order with the same values, ``time`` too
    being the moment of formatting, without structlog's copy of the record and its chain of processors (they took
    some 6 % of a zelf create's time, for its audit line).

    A record goes to structlog's processors instead when it carries an exception or a stack, when structlog made it,
    or when it is not what structlog's copy of it would be: a subclass of :class:`logging.LogRecord` or a custom
    record factory (the copy is the factory's), a standard attribute deleted (the copy has the default).
    """

    _pid: ClassVar[int] = os.getpid()  # a system call per line otherwise; renewed in a forked child (below)

    def __init__(self) -> None:
        super().__init__()
        self._structlog = _processor_formatter()
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """One JSON line of ``record``."""
        fields = record.__dict__
        if (
            type(record) is not logging.LogRecord
            or logging.getLogRecordFactory() is not logging.LogRecord
            or "_logger" in fields
            or "_name" in fields
        ):
            return self._structlog.format(record)
        try:
            if record.exc_info or record.stack_info:
                return self._structlog.format(record)
            level: str = record.levelname.lower()
            entry = {
                "time": self._stamp(time.time_ns()),
                "level": _LEVEL_ALIASES.get(level, level),
                "logger": record.name,
                "message": record.getMessage(),
                "pid": self._pid,
            }
        except AttributeError:  # a standard attribute deleted: structlog's copy of the record has LogRecord's own
            return self._structlog.format(record)
        for key, value in fields.items():
            if key not in _NOT_EXTRAS:
                entry[key] = value
        if "event" in fields:
            entry["message"] = fields["event"]
        return _ENCODER.encode(entry).decode()

    def _stamp(self, nanoseconds: int) -> str:
        # TimeStamper's datetime.now(UTC).isoformat() with the "+00:00" as "Z" (of time.time_ns()'s clock, rounded
        # down to the microsecond as datetime.now rounds it) for half its cost: the date and time of day are
        # formatted once a second.
        second, micro = divmod(nanoseconds // 1000, 1_000_000)
        known, prefix = self._second
        if second != known:
            prefix = datetime.fromtimestamp(second, UTC).isoformat().removesuffix("+00:00")
            self._second = (second, prefix)  # one tuple: a thread sees an old second with its own prefix, or the new
        return f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"

    @classmethod
    def _renew_pid(cls) -> None:
        cls._pid = os.getpid()


os.register_at_fork(after_in_child=JsonLineFormatter._renew_pid)


def json_formatter() -> logging.Formatter:
    """The formatter of every log line: one JSON object (:class:`JsonLineFormatter`)."""
    return JsonLineFormatter()


def configure_logging(level: str) -> None:
    """Send every log line of the process, as JSON, to standard error; the gateway's own from ``level`` up.

    uvicorn's loggers lose their own handlers and pass their lines on to this one (``serve`` runs uvicorn without a
    logging configuration of its own), and so does anything a library logs from a warning up.
    """
    # No line shows a record's thread or process (its pid is the formatter's own): a record that does not look them up
    # is cheaper to make, and every line of the process makes one.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    gateway = logging.getLogger("sessiongate")
    gateway.handlers.clear()
    gateway.setLevel(level)
    gateway.propagate = True
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


# -- requests -----------------------------------------------------------------------------------------------------

access = logging.getLogger("sessiongate.access")

# The names, labels and help texts of Litestar's PrometheusMiddleware with prefix "sessiongate", which served them
# before, so dashboards built on them keep working.
_LABELS = ("method", "path", "status_code", "app_name")
_APP = "sessiongate"
_REQUESTS = Counter("sessiongate_requests_total", "Total requests", _LABELS)
_ERRORS = Counter("sessiongate_requests_error_total", "Total errors in requests", _LABELS)
_DURATION = Histogram("sessiongate_request_duration_seconds", "Request duration, in seconds", _LABELS)
_IN_PROGRESS = Gauge(
    "sessiongate_requests_in_progress", "Total requests currently in progress", _LABELS, multiprocess_mode="livesum"
)
_SERVER_ERROR = 500
_METRICS_PATH = "/metrics"


class _Exchange:
    """The send a request is answered through, noting the answer's status and when its last body part went out."""

    __slots__ = ("finished", "send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = _SERVER_ERROR  # until a response starts: a request that ends without one became a server error
        self.finished = 0.0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = time.perf_counter()
        await self.send(message)


class RequestObserver:
    """The app's outermost handler: notes each request for the metrics (``sessiongate.meters``), counts, times and
    tracks in flight every routed one by method, route template and status, and, with the access log on, logs each
    request once answered, routed or not.

    One handler outside Litestar's, not a Litestar middleware: any middleware makes Litestar wrap every route in a
    second exception handler, which with the counting itself had cost a tenth of an issp validate's instructions. The
    counts are those Litestar's PrometheusMiddleware kept, looked up once per label set and kept (the label values are
    bounded: route templates, methods, status codes). A request is timed from when it reaches the app until its last
    body part was handed to the server.

    Args:
        app: Litestar's own handler (``app.asgi_handler``).
        router: Litestar's router (``app.asgi_router``): which route a request is for, asked before it is served so
            that it is counted in flight under its route (the router's own cached lookup, which it then repeats).
        access_log: Log each request.
        settings: Which proxies are trusted, for the client address.
    """

    __slots__ = (
        "_access_log",
        "_app",
        "_children",
        "_in_flight",
        "_networks",
        "_plain",
        "_proxies",
        "_router",
        "_trust_forwarded",
    )

    def __init__(self, app: ASGIApp, *, router: ASGIRouter, access_log: bool, settings: Settings) -> None:
        self._app = app
        self._router = router
        self._access_log = access_log
        self._trust_forwarded = settings.trust_forwarded
        self._proxies = settings.trusted_proxies
        self._networks = tuple(settings.trusted_proxy_networks)
        self._children: dict[tuple[str, str, int], tuple[Step, Timing, Step | None]] = {}
        self._in_flight: dict[tuple[str, str], Step] = {}
        # The gauge of a request for a route without parameters, by its method and path exactly as sent: one lookup.
        # Only paths equal to their route's template are kept, so they are bounded by the app's routes, whatever is
        # sent.
        self._plain: dict[tuple[str, str, str], Step] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with its notes set; count it, and log it, after."""
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        start = time.perf_counter()
        notes = meters.RequestNotes(scope)
        token = meters.notes().set(notes)
        exchange = _Exchange(send)
        method: str = scope["method"]
        in_flight = self._in_flight_gauge(scope, method)
        if in_flight is not None:
            in_flight.inc(1.0)
        try:
            await self._app(scope, receive, exchange)
        finally:
            if in_flight is not None:
                in_flight.inc(-1.0)
            meters.notes().reset(token)
            path: str | None = scope.get("path_template") if "route_handler" in scope else None
            if path is not None and path != _METRICS_PATH:
                self._count(method, path, exchange.status, (exchange.finished or time.perf_counter()) - start)
            if self._access_log:
                self._log(scope, path, exchange.status, time.perf_counter() - start, notes)

    def _in_flight_gauge(self, scope: Scope, method: str) -> Step | None:
        sent: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        key = (method, sent, root_path)
        if (gauge := self._plain.get(key)) is not None:
            return gauge
        # The route as the router will find it (its root path taken off the same way); none when it finds none.
        path = sent.split(root_path, maxsplit=1)[-1] if root_path else sent
        try:
            template: str = self._router.handle_routing(path=normalize_path(path), method=method)[4]
        except Exception:  # noqa: BLE001  # not found, method not allowed: the router answers that itself
            return None
        if template == _METRICS_PATH:
            return None
        gauge = self._in_flight.get((method, template))
        if gauge is None:
            # Litestar's middleware labelled the gauge with status 200, the status not being known yet.
            gauge = self._in_flight[(method, template)] = gauge_steps(_IN_PROGRESS.labels(method, template, 200, _APP))
        if path == template:
            self._plain[key] = gauge
        return gauge

    def _count(self, method: str, path: str, status: int, duration: float) -> None:
        key = (method, path, status)
        children = self._children.get(key)
        if children is None:
            labels = (*key, _APP)
            errors = counting(_ERRORS.labels(*labels)) if status >= _SERVER_ERROR else None
            children = self._children[key] = (
                counting(_REQUESTS.labels(*labels)),
                Timing(_DURATION.labels(*labels)),
                errors,
            )
        count, timed, errors = children
        count.inc(1.0)
        timed.observe(duration)
        if errors is not None:
            errors.inc(1.0)

    def _log(self, scope: Scope, path: str | None, status: int, duration: float, notes: meters.RequestNotes) -> None:
        handler = scope.get("route_handler")
        access.info(
            "request",
            extra={
                "method": scope.get("method"),
                # The route's template, never the path as sent: that can carry a session id or anything at all.
                "path": path,
                "status": status,
                "duration": round(duration, 6),
                "dialect": handler.opt.get("dialect") if handler is not None else None,
                "tenant": notes.tenant,
                "client": self._client(scope),
            },
        )

    def _client(self, scope: Scope) -> str:
        client = scope.get("client")
        peer = client[0] if client else None
        if not self._trust_forwarded:
            return peer or "unknown"
        forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        return forwarded_client(peer, forwarded, proxies=self._proxies, networks=self._networks)


# -- metrics ------------------------------------------------------------------------------------------------------


def metrics_registry() -> CollectorRegistry:
    """What a scrape reads: every process's counts in multiprocess mode, else this process's own."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def authorized(header: str | None, token: str | None) -> bool:
    """Whether an ``Authorization`` header carries the metrics token (always, when none is set); constant time."""
    if token is None:
        return True
    scheme, _, presented = (header or "").partition(" ")
    # Both sides hashed to one length first, so the comparison's time tells nothing of the token's length either.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        _digest(presented.strip().encode("utf-8", "replace")), _digest(token.encode())
    )


def _digest(value: bytes) -> bytes:
    return hmac.digest(b"sessiongate-metrics", value, "sha256")


_UNAUTHORIZED = b"metrics need the bearer token (SESSIONGATE_METRICS_TOKEN)\n"


def metrics_handler(registry: CollectorRegistry, token: str | None) -> HTTPRouteHandler:
    """``GET /metrics`` on the gateway's own port: the Prometheus text format, behind the token when one is set."""

    @get("/metrics", tags=["operations"], sync_to_thread=True, include_in_schema=False)
    def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        if not authorized(request.headers.get("authorization"), token):
            return Response(
                _UNAUTHORIZED, status_code=401, media_type="text/plain", headers={"WWW-Authenticate": "Bearer"}
            )
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return scrape


async def count_live_sessions(services: Services, dialects: Sequence[str]) -> None:
    """Set the live-sessions gauge: one grouped count of the sessions neither revoked nor expired."""
    from sessiongate.storage.gauges import live_sessions_by_dialect

    counts = dict.fromkeys(dialects, 0) | await live_sessions_by_dialect(services.runner, now=services.clock())
    for name, count in counts.items():
        meters.LIVE_SESSIONS.labels(name).set(count)


async def keep_counting_live_sessions(services: Services, dialects: Sequence[str], interval: float) -> None:
    """Count the live sessions at once, then every ``interval`` seconds; a failure is logged and tried again."""
    log = logging.getLogger("sessiongate.metrics")
    while True:
        try:
            await count_live_sessions(services, dialects)
        except Exception as exc:  # noqa: BLE001 - the database can be out; the next round tries again
            log.warning("live sessions not counted", extra={"exception": type(exc).__name__})
        await asyncio.sleep(interval)


@contextlib.contextmanager
def metrics_directory(workers: int) -> Iterator[str | None]:
    """With several server processes, a private directory for their counts (``PROMETHEUS_MULTIPROC_DIR``, set for
    the processes started meanwhile), removed afterwards; with one, none (its counts are in its memory)."""
    if workers <= 1:
        yield os.environ.get(MULTIPROC_ENV) or None
        return
    before = os.environ.get(MULTIPROC_ENV)
    path = tempfile.mkdtemp(prefix="sessiongate-metrics-")  # owner-only (0700)
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        if before is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = before
        shutil.rmtree(path, ignore_errors=True)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the standard library's name
        """Requests to the metrics port are not logged (the standard library's handler writes them raw)."""


def serve_metrics(host: str, port: int, token: str | None, directory: str | None) -> Callable[[], None]:
    """Serve ``GET /metrics`` on ``host:port`` from a thread of this process; returns what stops it.

    Args:
        host: Address to listen on.
        port: Port to listen on.
        token: The bearer token a scrape must carry; ``None``: none.
        directory: The server processes' counts (multiprocess mode); ``None``: this process's own.

    Raises:
        OSError: the port cannot be listened on.
    """
    if directory is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if environ.get("REQUEST_METHOD") not in {"GET", "HEAD"}:
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET, HEAD")])
            return [b"method not allowed\n"]
        if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [_UNAUTHORIZED]
        body = exposition(registry)
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body]

    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="sg-metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
