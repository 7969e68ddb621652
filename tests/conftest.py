from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from sessiongate.app import create_app
from sessiongate.settings import Settings
from tests.support import server as servers
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


LOG_TAIL_CHARS = 6000
_SERVERS_BEFORE = pytest.StashKey[int]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Note which servers were started before ``item``, so that its report can show those it started."""
    item.stash[_SERVERS_BEFORE] = len(servers.STARTED)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failing test's report ends with the log of each server process it started, and whether that process lived."""
    report: pytest.TestReport = yield
    if report.failed:
        for server in servers.STARTED[item.stash.get(_SERVERS_BEFORE, len(servers.STARTED)) :]:
            status = server.process.poll()
            state = "running when the test ended" if status is None else f"exit status {status} when the test ended"
            try:
                tail = server.logs()[-LOG_TAIL_CHARS:]
            except OSError as exc:
                tail = f"(no log: {exc})"
            report.sections.append((f"server {server.base_url} (pid {server.process.pid}, {state})", tail))
    return report
