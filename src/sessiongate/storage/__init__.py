"""Persistence: advanced-alchemy tables, the engine, migrations and the lean hot-path statements."""
