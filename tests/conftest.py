from __future__ import annotations

import gc
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from sessiongate.app import create_app
from sessiongate.settings import Settings
from tests.support import pauses
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
_GC_PAUSES = pytest.StashKey[list[tuple[float, int, int]]]()


PAUSES = pauses.watch()
# A test process builds app after app: about 15 000 objects of each outlive their test into the oldest generation, and
# the default thresholds then scanned the whole heap every few tests. A quarter as often still collects every app.
gc.set_threshold(700, 10, 40)


_RUNNING: list[pytest.Item] = []
"""The test being run, while one is."""
_start_process = subprocess.Popen.__init__


def _start_process_in_a_slow_test(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
    """Only a test marked ``slow`` (or ``clients``) may start a process: the README's test line leaves those out to
    stay quick, so a process started elsewhere would make it slow again unnoticed."""
    if _RUNNING and not any(_RUNNING[-1].get_closest_marker(mark) for mark in ("slow", "clients")):
        command = args[0] if args else kwargs.get("args")
        pytest.fail(f"{_RUNNING[-1].nodeid} starts a process ({command!r}): mark it slow")
    _start_process(self, *args, **kwargs)


subprocess.Popen.__init__ = _start_process_in_a_slow_test  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Note which servers were started before ``item``, so that its report can show those it started."""
    item.stash[_SERVERS_BEFORE] = len(servers.STARTED)
    PAUSES.recent.clear()
    _RUNNING.append(item)
    try:
        return (yield)
    finally:
        _RUNNING.pop()


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
        if PAUSES.recent:
            took = ", ".join(f"{seconds:.2f} s (generation {generation})" for generation, seconds in PAUSES.recent)
            report.sections.append(("this test process's garbage collector", f"paused it during the test: {took}"))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A test worker tells the controller its longest collector pause (see pytest_terminal_summary)."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["gc_pause"] = (PAUSES.longest, PAUSES.longest_generation, PAUSES.long_ones)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's
def pytest_testnodedown(node: Any, error: object) -> None:
    """The controller keeps each worker's longest collector pause."""
    if (pause := getattr(node, "workeroutput", {}).get("gc_pause")) is not None:
        node.config.stash.setdefault(_GC_PAUSES, []).append(pause)


@pytest.hookimpl(trylast=True)  # after the durations, beside the summary CI shows
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line: the longest pause the garbage collector caused in a test process, and how many reached LONG."""
    found = config.stash.get(_GC_PAUSES, []) or [(PAUSES.longest, PAUSES.longest_generation, PAUSES.long_ones)]
    longest, generation, _ = max(found)
    many = sum(count for _, _, count in found)
    terminalreporter.write_line(
        f"garbage collector: longest pause in a test process {longest:.2f} s (generation {generation}); "
        f"{many} of {pauses.LONG} s or more"
    )
