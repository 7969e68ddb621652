from __future__ import annotations

from sessiongate.storage.database import alchemy_config


def test_a_long_lived_process_can_build_many_database_configs():
    # Each app and CLI command builds one; a test run or an embedding host builds thousands in one process.
    configs = [alchemy_config("postgresql+asyncpg://nobody@127.0.0.1/unused") for _ in range(2000)]
    assert len({c.session_scope_key for c in configs}) == len(configs)
