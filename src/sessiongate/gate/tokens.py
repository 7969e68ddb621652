"""The gateway's API credentials: bearer tokens that services (and, later, operators) call the gateway's own API with.

A token is a secret drawn from ``secrets``, shown once and kept only as a keyed digest
(:class:`~sessiongate.tokens.opaque.Digester`), like every other secret of the gateway. Nothing about a token is kept
in a process: every call reads its row (one indexed read), so a revoke made by any process refuses the token on the
very next request everywhere. ``last_used_at`` is written at most once per :data:`USE_INTERVAL`.
"""

from __future__ import annotations

import builtins
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, cast, get_args

import msgspec
from advanced_alchemy.base import UUIDv7AuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import String, Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from sessiongate.core.errors import Conflict, InvalidRequest, NotFound
from sessiongate.storage.runner import StatementRunner
from sessiongate.tokens.opaque import Digester

__all__ = (
    "MARK",
    "NAME_PATTERN",
    "SCOPES",
    "STATES",
    "USE_INTERVAL",
    "AddedToken",
    "ApiTokenInfo",
    "ApiTokenRecord",
    "ApiTokens",
    "Scope",
    "TokenState",
)

Scope = Literal["introspect", "admin"]
"""``introspect``: forward-auth helpers, introspection and revocation (what a resource server needs). ``admin``: that
and the admin API (which can itself make and revoke tokens of either scope)."""
SCOPES: tuple[Scope, ...] = get_args(Scope)
TokenState = Literal["live", "revoked"]
STATES: tuple[TokenState, ...] = get_args(TokenState)
MARK = "sgt_"
"""Every API token starts with it, so a leaked one is recognised (secret scanners, logs) and never taken for a JWT."""
MAX_NAME = 64
NAME_PATTERN = rf"[A-Za-z0-9][A-Za-z0-9._~-]{{0,{MAX_NAME - 1}}}"
"""A name: it is a path segment of the admin API (``…/admin/api-tokens/{name}``) and the actor of audit events
(``admin-token:<name>``), so only what a path segment never escapes (RFC 3986's unreserved characters), starting with
a letter or digit. A ``/`` made a token unreachable there, ``.`` and ``..`` are dropped by clients normalising a
path, and a non-ASCII name could pass for another in the audit log."""
PREFIX_LENGTH = len(MARK) + 8
"""How much of a token is kept in clear, to tell tokens apart in a listing: the mark and 48 of its 256 random bits."""
USE_INTERVAL = timedelta(seconds=60)
"""``last_used_at`` trails the last use by less than this: a call costs a write only now and then."""
_LONGEST = 256
_IMPORTABLE = re.compile(rf"{MARK}[A-Za-z0-9_-]{{32,200}}")
_NAME = re.compile(NAME_PATTERN)


class ApiTokenRecord(UUIDv7AuditBase):
    """An API credential of the gateway (migration 0009). Revoked rows stay, so a listing shows what was revoked."""

    __tablename__ = "sg_gateway_token"

    name: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


T = cast("Table", ApiTokenRecord.__table__)
_INFO = (T.c.id, T.c.name, T.c.scope, T.c.prefix, T.c.created_at, T.c.last_used_at, T.c.revoked_at)


class ApiTokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A token as listed: never its value, only its first characters."""

    id: str
    name: str
    scope: Scope
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> TokenState:
        """``revoked`` once revoked (refused from then on), else ``live``."""
        return "live" if self.revoked_at is None else "revoked"


class AddedToken(msgspec.Struct, frozen=True, kw_only=True):
    """A token just made: the only time its value is known."""

    info: ApiTokenInfo
    value: str


class ApiTokens:
    """Add, list, revoke and check the gateway's API tokens.

    Args:
        runner: Where the statements run (the request path's runner).
        digester: Keys the digests (the gateway's, so every process agrees).
        clock: "Now".
    """

    def __init__(self, runner: StatementRunner, digester: Digester, clock: Callable[[], datetime]) -> None:
        self.runner = runner
        self.digester = digester
        self.clock = clock

    async def add(self, name: str, scope: str, *, value: str | None = None) -> AddedToken:
        """A new token named ``name``; its value is returned once. A given ``value`` is imported instead of drawn
        (a token a deployment already hands its services, or a test's), and must look like one drawn.

        The CLI and the admin API both call this, so both refuse the same names, scopes and values; nothing is written
        before every check has passed, and a refused insert writes nothing (one statement).

        Raises:
            InvalidRequest: a bad name, scope or value.
            Conflict: a token (live or revoked) already has that name, or that value (``field`` says which).
        """
        if not _NAME.fullmatch(name):
            raise InvalidRequest(
                f"name must be 1 to {MAX_NAME} printable characters: ASCII letters, digits, '-', '.', '_' and '~', "
                "the first a letter or digit",
                field="name",
            )
        if scope not in SCOPES:
            raise InvalidRequest(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        if value is not None and not _IMPORTABLE.fullmatch(value):
            raise InvalidRequest(f"a token must be {MARK!r} and 32 to 200 URL-safe characters", field="token")
        value = value or MARK + secrets.token_urlsafe(32)
        now = self.clock()
        row = {
            "id": uuid7(),
            "name": name,
            "scope": scope,
            "digest": self.digester.digest(value),
            "prefix": value[:PREFIX_LENGTH],
            "last_used_at": None,
            "revoked_at": None,
            "created_at": now,
            "updated_at": now,
        }
        await self._refuse_taken(name, value)
        try:
            await self.runner.write(insert(T).values(row))
        except IntegrityError as exc:  # made by another call meanwhile: say which of the two is taken
            await self._refuse_taken(name, value)
            raise Conflict(f"a token named {name!r} exists already", field="name") from exc
        info = ApiTokenInfo(
            id=str(row["id"]),
            name=name,
            scope=scope,
            prefix=value[:PREFIX_LENGTH],
            created_at=now,
            last_used_at=None,
            revoked_at=None,
        )
        return AddedToken(info=info, value=value)

    async def _refuse_taken(self, name: str, value: str) -> None:
        """A name and a value are each one token's: the digest column is unique, and a value digested under an
        older key of the ring would be another row authenticating as the same secret."""
        if await self._named(name) is not None:
            raise Conflict(f"a token named {name!r} exists already", field="name")
        if await self.runner.read(select(T.c.id).where(T.c.digest.in_(self.digester.digests(value)))):
            raise Conflict("a token with this value exists already", field="token")

    async def list(self) -> list[ApiTokenInfo]:
        """Every token, oldest first, revoked ones too."""
        rows = await self.runner.read(select(*_INFO).order_by(T.c.created_at, T.c.id))
        return [_info(row) for row in rows]

    async def page(
        self, *, scope: str | None = None, state: str | None = None, limit: int, after: uuid.UUID | None = None
    ) -> tuple[builtins.list[ApiTokenInfo], bool]:
        """Up to ``limit`` tokens, newest first, after the token with id ``after`` (keyset: stable while tokens come
        and go), and whether more follow."""
        stmt = select(*_INFO).order_by(T.c.id.desc()).limit(limit + 1)
        if scope is not None:
            stmt = stmt.where(T.c.scope == scope)
        if state is not None:
            stmt = stmt.where(T.c.revoked_at.is_(None) if state == "live" else T.c.revoked_at.is_not(None))
        if after is not None:
            stmt = stmt.where(T.c.id < after)
        rows = await self.runner.read(stmt)
        return [_info(row) for row in rows[:limit]], len(rows) > limit

    async def named(self, name: str) -> ApiTokenInfo:
        """The token named ``name``, as listed.

        Raises:
            NotFound: no token has that name.
        """
        info = await self._named(name)
        if info is None:
            raise NotFound(f"no token named {name!r}", field="name")
        return info

    async def revoke(self, name: str) -> tuple[ApiTokenInfo, bool]:
        """Revoke the token named ``name``, and whether this call revoked it (again: nothing changes); it is refused
        from the next request on. Of calls racing to revoke it, exactly one changes it.

        Raises:
            NotFound: no token has that name.
        """
        info = await self.named(name)  # also keeps a name no row can have (a NUL) away from the database
        now = self.clock()
        result = await self.runner.write(
            update(T)
            .where(T.c.id == uuid.UUID(info.id), T.c.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=now)
        )
        return await self.named(name), result.rowcount == 1

    async def authenticate(self, value: str, scopes: tuple[Scope, ...]) -> ApiTokenInfo | None:
        """The live token ``value`` is, when its scope is one of ``scopes``; else ``None``. One indexed read (and
        the lookup confirmed in constant time); ``last_used_at`` is written at most once per :data:`USE_INTERVAL`."""
        if not value.startswith(MARK) or len(value) > _LONGEST:
            return None
        stmt = select(*_INFO, T.c.digest).where(T.c.digest == bindparam("presented"))
        rows = await self.digester.find(
            value,
            lambda candidate: self.runner.read(stmt, {"presented": candidate}),
            lambda old, new: self.runner.write(update(T).where(T.c.digest == old).values(digest=new)),
        )
        if not rows or not self.digester.matches(value, rows[0].digest):
            return None
        info = _info(rows[0])
        if info.revoked_at is not None or info.scope not in scopes:
            return None
        now = self.clock()
        if info.last_used_at is None or now - info.last_used_at >= USE_INTERVAL:
            await self.runner.write(update(T).where(T.c.id == rows[0].id).values(last_used_at=now))
        return info

    async def _named(self, name: str) -> ApiTokenInfo | None:
        if "\x00" in name:  # PostgreSQL text cannot hold NUL, so no token is named so
            return None
        rows = await self.runner.read(select(*_INFO).where(T.c.name == name))
        return _info(rows[0]) if rows else None


def _info(row: object) -> ApiTokenInfo:
    mapping = row._mapping  # type: ignore[attr-defined]
    return ApiTokenInfo(
        id=str(mapping["id"]),
        name=mapping["name"],
        scope=mapping["scope"],
        prefix=mapping["prefix"],
        created_at=mapping["created_at"],
        last_used_at=mapping["last_used_at"],
        revoked_at=mapping["revoked_at"],
    )
