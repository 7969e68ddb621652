"""JSON logs (no request bodies, headers or query strings, so no secret can reach them) and metrics."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusController
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

__all__ = ("JsonFormatter", "RequestMetrics", "configure_logging", "metrics")

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extras, and the exception type."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record``; tracebacks are kept to the exception type and message."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in vars(record).items() if k not in _RESERVED}
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = type(record.exc_info[1]).__name__
        return msgspec.json.encode(entry, enc_hook=str).decode()


def configure_logging(level: str) -> None:
    """Send the gateway's logs, as JSON lines, to standard error."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("sessiongate")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)


def metrics() -> tuple[type[RequestMetrics], type[PrometheusController]]:
    """The metrics middleware (paths grouped by template, so no session id becomes a label) and ``/metrics``."""
    return RequestMetrics, PrometheusController


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


class RequestMetrics:
    """Counts, times and tracks in flight every routed request, by method, path template and status.

    Litestar's PrometheusMiddleware, used before, built a ``Request``, label dictionaries and a ``functools.wraps``
    wrapper, and looked each labelled child up again, on every request: an eighth of a zelf create's time. This keeps
    the children it has looked up, one dictionary hit per request. The label values are bounded (route templates,
    methods, status codes), and so is what it keeps.
    """

    __slots__ = ("_app", "_children", "_in_flight")

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._in_flight: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, noting its status and how long until its last body part was handed to the server."""
        path: str = scope.get("path_template", scope["path"])
        if scope["type"] != ScopeType.HTTP or path == "/metrics":
            await self._app(scope, receive, send)
            return
        method: str = scope["method"]
        start = time.perf_counter()
        status = _SERVER_ERROR  # until a response starts: a request that ends without one became a server error
        finished = 0.0

        async def noting_send(message: Message) -> None:
            nonlocal status, finished
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = time.perf_counter()
            await send(message)

        in_flight = self._in_flight.get((method, path))
        if in_flight is None:
            # Litestar's middleware labelled the gauge with status 200, the status not being known yet.
            in_flight = self._in_flight[(method, path)] = _IN_PROGRESS.labels(method, path, 200, _APP)
        in_flight.inc()
        try:
            await self._app(scope, receive, noting_send)
        finally:
            in_flight.dec()
            key = (method, path, status)
            children = self._children.get(key)
            if children is None:
                labels = (*key, _APP)
                errors = _ERRORS.labels(*labels) if status >= _SERVER_ERROR else None
                children = self._children[key] = (_REQUESTS.labels(*labels), _DURATION.labels(*labels), errors)
            count, duration, errors = children
            count.inc()
            duration.observe((finished or time.perf_counter()) - start)
            if errors is not None:
                errors.inc()
