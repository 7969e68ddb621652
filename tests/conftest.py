from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from sessiongate.app import create_app
from sessiongate.settings import Settings
from tests.support.clock import FakeClock
from tests.support.databases import backends, database, migrated_database

ROOT = Path(__file__).resolve().parents[1]
TEST_JWT_KEY = "test-signing-key-0123456789abcdef-0123456789"


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with migrated_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=backends())
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database never migrated, for tests of what a migration does (``database_url`` is migrated already)."""
    with database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "openapi_dir": ROOT / "openapi",
            "sweep_interval": 0,
            "auto_migrate": True,
        }
        return Settings(**(values | overrides))

    return make


@pytest.fixture
def make_client(
    make_settings: Callable[..., Settings], clock: FakeClock
) -> Iterator[Callable[..., TestClient[Litestar]]]:
    clients: list[TestClient[Litestar]] = []

    def make(**overrides: Any) -> TestClient[Litestar]:
        client = TestClient(create_app(make_settings(**overrides), clock=clock))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
