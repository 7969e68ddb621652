"""Key material: from settings, or generated once and kept in the database so every process agrees."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import cast

import msgspec
from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from uuid_utils.compat import uuid7

from sessiongate.settings import Settings
from sessiongate.storage.tables import SecretRecord

__all__ = ("KeyMaterial", "load_key_material")

_JWT_SECRET = "jwt:auto-1"  # noqa: S105 - the name of a generated key, not a key
_DIGEST_SECRET = "digest-key"  # noqa: S105 - likewise


class KeyMaterial(msgspec.Struct, frozen=True, kw_only=True):
    """The keys a process signs and digests with."""

    jwt_keys: dict[str, str]
    active_kid: str
    digest_key: bytes


async def load_key_material(engine: AsyncEngine, settings: Settings) -> KeyMaterial:
    """Keys from settings where given; the rest generated on first start and read back from the database.

    Generation is an insert-if-absent followed by a read, so two processes starting together agree.
    """
    jwt_keys = dict(settings.jwt_keys)
    if not jwt_keys:
        jwt_keys = {_JWT_SECRET.split(":", 1)[1]: await _stored_secret(engine, _JWT_SECRET)}
    active = settings.jwt_active_kid or next(iter(jwt_keys))
    digest = settings.token_key or await _stored_secret(engine, _DIGEST_SECRET)
    return KeyMaterial(jwt_keys=jwt_keys, active_kid=active, digest_key=digest.encode())


async def _stored_secret(engine: AsyncEngine, name: str) -> str:
    table = cast("Table", SecretRecord.__table__)
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    stmt = (
        insert(table)
        .values(id=uuid7(), name=name, value=secrets.token_urlsafe(48), created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    async with engine.begin() as conn:
        await conn.execute(stmt)
        value = (await conn.execute(select(table.c.value).where(table.c.name == name))).scalar_one()
    return str(value)
