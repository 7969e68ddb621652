"""Whether the migrated database holds a table exactly as the code declares it (the core's, or a dialect's own)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from sessiongate.storage.tables import metadata as core_metadata


def differences_from_declared(database_url: str, table: str, metadata: Any = core_metadata) -> list[Any]:
    """Alembic's differences between ``table`` in the migrated database at ``database_url`` and its declaration in
    ``metadata`` (the core's tables by default; a dialect's own ``MetaData`` for its tables)."""

    def ours(obj: Any, name: str, kind: str, reflected: bool, compare_to: Any) -> bool:
        return name == table if kind == "table" else obj.table.name == table

    async def differences() -> list[Any]:
        async with (
            open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services,
            services.engine.connect() as conn,
        ):
            compare_type = services.engine.dialect.name == "postgresql"  # SQLite reflects GUIDs as NUMERIC

            def compare(connection: Any) -> list[Any]:
                opts = {"include_object": ours, "compare_type": compare_type}
                return list(compare_metadata(MigrationContext.configure(connection, opts=opts), metadata))

            return await conn.run_sync(compare)

    return asyncio.run(differences())
