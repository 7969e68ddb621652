"""The handles on the gateway's database that the layers above storage hold and hand back to it.

They pass them from where they are opened (``runtime``, the app) to the storage functions and stores that use them,
and never look into them: naming them here keeps every import of SQLAlchemy (and advanced-alchemy) inside ``storage``.
"""

from __future__ import annotations

from typing import TypeAlias

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ("Database", "DatabaseConfig")

Database: TypeAlias = AsyncEngine
"""The process's one engine (``DatabaseConfig.get_engine()``)."""
DatabaseConfig: TypeAlias = SQLAlchemyAsyncConfig
"""What ``storage.database.alchemy_config`` builds: the engine, and its pool or SQLite tuning."""
