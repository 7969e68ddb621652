"""Which refusals say "a row with that unique key is there already", as opposed to any other refused statement.

A store answers a taken name or login as a result (``None``, a conflict), never as an error; every other refusal (a
NOT NULL or CHECK constraint, a trigger's, a foreign key) is raised as the runner raised it. SQLAlchemy wraps them all
in ``IntegrityError``, and SQLite reports a trigger's refusal as a constraint too: catching ``IntegrityError`` alone
answered "already exists" on SQLite where PostgreSQL raised the refusal.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

__all__ = ("is_unique_violation",)

_SQLITE_UNIQUE = frozenset({1555, 2067})  # SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE unique_violation


def is_unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` is a statement refused because a unique index (or primary key) already holds its key."""
    if not isinstance(exc, IntegrityError):
        return False
    driver_error = exc.orig
    code = getattr(driver_error, "sqlite_errorcode", None)
    if code is not None:
        return code in _SQLITE_UNIQUE
    return getattr(driver_error, "sqlstate", None) == _UNIQUE_VIOLATION
