"""Alembic environment: runs on a connection handed in by the gateway, or on the URL of the CLI."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

from sessiongate.storage.tables import metadata

VERSION_TABLE = "sg_alembic_version"
config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = getattr(config, "engine", None) or async_engine_from_config(
        {"sqlalchemy.url": getattr(config, "db_url", None) or config.get_main_option("sqlalchemy.url")},
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif (handed_in := config.attributes.get("connection")) is not None:
    _run(handed_in)
else:
    asyncio.run(_run_online())
