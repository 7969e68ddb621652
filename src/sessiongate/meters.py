"""What an operator of an auth service watches, as Prometheus metrics, and the request they are counted for.

The services count here (logins, lock-outs, sessions, refresh reuse, database latency); ``sessiongate.observability``
serves them. Each count carries the dialect of the request it happened in, read from the request being served
(:func:`dialect`): services know nothing of requests, and a command run from the CLI counts under ``"none"``.

With several server processes, ``sessiongate serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a private directory
before they start, and every process's counts are kept there and added up at each scrape (prometheus_client's
multiprocess mode); in a single process they are kept in memory.
"""

from __future__ import annotations

import contextvars
from typing import Any, Literal

from prometheus_client import Counter, Gauge, Histogram

__all__ = (
    "DATABASE_LATENCY",
    "LIVE_SESSIONS",
    "LOCKOUTS",
    "LOGINS",
    "REFRESH_REUSE",
    "SESSIONS_CREATED",
    "SESSIONS_REVOKED",
    "RequestNotes",
    "dialect",
    "lock_reached",
    "login",
    "note_tenant",
    "notes",
)

LoginResult = Literal["success", "failure", "locked", "throttled", "unavailable"]
NO_DIALECT = "none"
"""The dialect label of what happens outside a dialect's request (a command, the sweeper, a gateway route)."""

LOGINS = Counter(
    "sessiongate_logins_total",
    "Logins (password or auth token), by dialect and result: success; failure (unknown login, wrong password or "
    "token, disabled account); locked (the login is locked out); throttled (the client address is); unavailable "
    "(too many logins waiting for a hashing worker)",
    ("dialect", "result"),
)
LOCKOUTS = Counter(
    "sessiongate_lockouts_total",
    "Lock-outs begun: a failed login that reached the limit of a login (kind=login) or of a client address "
    "(kind=address)",
    ("dialect", "kind"),
)
SESSIONS_CREATED = Counter(
    "sessiongate_sessions_created_total", "Sessions created, by the dialect of the request", ("dialect",)
)
SESSIONS_REVOKED = Counter(
    "sessiongate_sessions_revoked_total",
    "Sessions ended before they expired (logout, revocation, replacement), by the dialect of the request",
    ("dialect",),
)
REFRESH_REUSE = Counter(
    "sessiongate_refresh_reuse_detected_total",
    "Refresh tokens presented again after they were rotated (the family is revoked), by dialect",
    ("dialect",),
)
LIVE_SESSIONS = Gauge(
    "sessiongate_live_sessions",
    "Sessions neither expired nor revoked, by the dialect that created them, as last counted "
    "(every SESSIONGATE_METRICS_INTERVAL seconds)",
    ("dialect",),
    multiprocess_mode="mostrecent",
)
DATABASE_LATENCY = Histogram(
    "sessiongate_database_seconds",
    "How long the gateway waited for the database, per statement (write: until committed, queueing included) or "
    "transaction",
    ("operation",),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DB_READ = DATABASE_LATENCY.labels("read")
DB_WRITE = DATABASE_LATENCY.labels("write")
DB_TRANSACTION = DATABASE_LATENCY.labels("transaction")


class RequestNotes:
    """What the request being served has become known as, beyond its route: its tenant, a lock it reached."""

    __slots__ = ("locks_reached", "scope", "tenant")

    def __init__(self, scope: Any) -> None:
        self.scope = scope
        self.tenant: str | None = None
        self.locks_reached: list[str] = []


_NOTES: contextvars.ContextVar[RequestNotes | None] = contextvars.ContextVar("sessiongate_request", default=None)


def notes() -> contextvars.ContextVar[RequestNotes | None]:
    """The request being served (set by the app's outermost handler for each request)."""
    return _NOTES


def dialect() -> str:
    """The dialect whose route the request being served is on, or ``"none"``."""
    current = _NOTES.get()
    handler = current.scope.get("route_handler") if current is not None else None
    if handler is None:
        return NO_DIALECT
    name: str = handler.opt.get("dialect", NO_DIALECT)
    return name


def note_tenant(tenant: str) -> None:
    """Say which tenant the request being served turned out to be for (amity finds it from the API key)."""
    if (current := _NOTES.get()) is not None:
        current.tenant = tenant


def lock_reached(kind: str) -> None:
    """Say that the attempt being checked reached a limit of failed logins (it locks ``kind`` if it fails)."""
    if (current := _NOTES.get()) is not None:
        current.locks_reached.append(kind)


def login(result: LoginResult) -> None:
    """Count a login of the request being served; a failure that reached a limit also counts a lock-out."""
    name = dialect()
    LOGINS.labels(name, result).inc()
    current = _NOTES.get()
    if result == "failure" and current is not None:
        for kind in current.locks_reached:
            LOCKOUTS.labels(name, kind).inc()
