"""JSON logs (no request bodies, headers or query strings, so no secret can reach them) and metrics."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

__all__ = ("JsonFormatter", "configure_logging", "metrics")

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


def metrics() -> tuple[Any, type[PrometheusController]]:
    """The Prometheus middleware (paths grouped by template, so no session id becomes a label) and ``/metrics``."""
    config = PrometheusConfig(app_name="sessiongate", prefix="sessiongate", group_path=True, exclude=["/metrics"])
    return config.middleware, PrometheusController
