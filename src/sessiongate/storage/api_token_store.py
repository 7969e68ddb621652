"""``ApiTokenStore`` on SQLAlchemy Core: the ``sg_gateway_token`` table through the statement runner, one statement a
call."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from uuid_utils.compat import uuid7

from sessiongate.core.api_token_store import ApiTokenInfo
from sessiongate.storage.api_token_tables import API_TOKENS as T
from sessiongate.storage.driver_query import lookup
from sessiongate.storage.integrity import is_unique_violation
from sessiongate.storage.runner import StatementRunner
from sessiongate.storage.text import holds_nul

__all__ = ("SqlApiTokenStore",)

_INFO = (T.c.id, T.c.name, T.c.scope, T.c.prefix, T.c.created_at, T.c.last_used_at, T.c.revoked_at)
_BY_DIGEST = select(*_INFO, T.c.digest).where(T.c.digest == bindparam("presented"))


class SqlApiTokenStore:
    """:class:`~sessiongate.core.api_token_store.ApiTokenStore` on SQLite and PostgreSQL alike.

    Args:
        runner: Where statements run (the request path's runner).
    """

    def __init__(self, runner: StatementRunner) -> None:
        self.runner = runner

    async def add(self, *, name: str, scope: str, digest: str, prefix: str, now: datetime) -> ApiTokenInfo | None:
        """One ``INSERT``; the unique name and digest columns refuse a second token of either."""
        row = {
            "id": uuid7(),
            "name": name,
            "scope": scope,
            "digest": digest,
            "prefix": prefix,
            "last_used_at": None,
            "revoked_at": None,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.runner.write(insert(T).values(row))
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            return None
        return _info(row)

    async def named(self, name: str) -> ApiTokenInfo | None:
        """One read by the unique name."""
        if holds_nul(name):  # PostgreSQL text cannot hold NUL, so no token is named so
            return None
        rows = await self.runner.read(select(*_INFO).where(T.c.name == name))
        return _info(rows[0]._mapping) if rows else None

    async def digest_taken(self, digests: Sequence[str]) -> bool:
        """One read by the unique digest."""
        return bool(await self.runner.read(select(T.c.id).where(T.c.digest.in_(list(digests)))))

    async def list(self) -> builtins.list[ApiTokenInfo]:
        """One read."""
        rows = await self.runner.read(select(*_INFO).order_by(T.c.created_at, T.c.id))
        return [_info(row._mapping) for row in rows]

    async def page(
        self, *, scope: str | None, state: str | None, limit: int, after: uuid.UUID | None
    ) -> tuple[builtins.list[ApiTokenInfo], bool]:
        """One read of ``limit + 1`` rows down the primary key (keyset: stable while tokens come and go)."""
        stmt = select(*_INFO).order_by(T.c.id.desc()).limit(limit + 1)
        if scope is not None:
            stmt = stmt.where(T.c.scope == scope)
        if state is not None:
            stmt = stmt.where(T.c.revoked_at.is_(None) if state == "live" else T.c.revoked_at.is_not(None))
        if after is not None:
            stmt = stmt.where(T.c.id < after)
        rows = await self.runner.read(stmt)
        return [_info(row._mapping) for row in rows[:limit]], len(rows) > limit

    async def revoke(self, token_id: str, *, now: datetime) -> bool:
        """One conditional ``UPDATE``."""
        stmt = update(T).where(T.c.id == uuid.UUID(token_id), T.c.revoked_at.is_(None))
        return (await self.runner.write(stmt.values(revoked_at=now, updated_at=now))).rowcount == 1

    async def by_digest(self, digest: str) -> tuple[ApiTokenInfo, str] | None:
        """One indexed read by digest, on the driver (every forward auth and introspection asks this)."""
        rows = await lookup(_BY_DIGEST, self.runner, {"presented": digest})
        return (_info(rows[0]), rows[0]["digest"]) if rows else None

    async def replace_digest(self, old: str, new: str) -> None:
        """One ``UPDATE`` where the digest is still ``old``."""
        await self.runner.write(update(T).where(T.c.digest == old).values(digest=new))

    async def note_use(self, token_id: str, *, now: datetime) -> None:
        """One ``UPDATE`` by primary key."""
        await self.runner.write(update(T).where(T.c.id == uuid.UUID(token_id)).values(last_used_at=now))


def _info(mapping: Any) -> ApiTokenInfo:
    return ApiTokenInfo(
        id=str(mapping["id"]),
        name=mapping["name"],
        scope=mapping["scope"],
        prefix=mapping["prefix"],
        created_at=mapping["created_at"],
        last_used_at=mapping["last_used_at"],
        revoked_at=mapping["revoked_at"],
    )
