"""What a database URL names, for an operator and for the commands that must not create a database: read from the
URL alone, without connecting (and without the rest of storage: the CLI reads it before any command works)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ("sqlite_file", "where")


def sqlite_file(url: str) -> Path | None:
    """The absolute path of the SQLite file ``url`` names; ``None`` for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return None
    return Path(database).expanduser().resolve()


def where(url: str) -> str:
    """The database ``url`` names, for an operator: the SQLite file's absolute path, or PostgreSQL's host and port and
    database; never a password."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        path = sqlite_file(url)
        return "an in-memory SQLite database" if path is None else f"the SQLite file {path}"
    host = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "its local socket"
    return f"PostgreSQL at {host} (database {parsed.database or parsed.username or '?'!r})"
