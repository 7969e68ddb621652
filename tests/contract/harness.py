"""Schemathesis against a hand-written spec and the app built for one dialect, in process.

Each contract module builds one ``Target`` at import (Schemathesis parametrizes from the schema then): the app with
only that dialect enabled, on its own database. The module's ``cleanup`` fixture drops that database when the module
is done; a module that was collected but never ran has its database dropped at interpreter exit instead.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.schemas import BaseSchema

from sessiongate.app import create_app
from sessiongate.dialects import registry
from sessiongate.runtime import Services, open_services
from sessiongate.settings import Settings
from tests.conftest import ROOT
from tests.support.databases import database

CONFIG = schemathesis.Config.from_path(ROOT / "contracts" / "schemathesis.toml")
HYPOTHESIS = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=40, derandomize=True)


def backend() -> str:
    """The contract suite runs on PostgreSQL when it is configured, else on SQLite."""
    return "postgresql" if os.environ.get("SESSIONGATE_TEST_DATABASE_URL") else "sqlite"


class Target:
    """One dialect under contract test: its app on a database of its own, and its hand-written spec."""

    def __init__(self, name: str, spec: Path | None = None, **overrides: Any) -> None:
        """``spec``: the dialect's hand-written spec (default ``openapi/<name>.yaml``, the gateway's own dialects');
        ``overrides``: settings."""
        self._stack = contextlib.ExitStack()
        atexit.register(self._stack.close)
        directory = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix=f"sg-contract-{name}-")))
        url = self._stack.enter_context(database(backend(), directory))
        values: dict[str, Any] = {
            "database_url": url,
            "dialects": (name,),
            "openapi_dir": ROOT / "openapi",
            "sweep_interval": 0,
            "auto_migrate": True,
        }
        self.app: Litestar = create_app(Settings(**(values | overrides)))
        self.settings: Settings = self.app.state.settings
        spec = ROOT / "openapi" / f"{name}.yaml" if spec is None else spec
        self.schema: BaseSchema = schemathesis.openapi.from_path(spec, config=CONFIG)
        self.schema.app = self.app

    def provision(self, step: Callable[[Services], Awaitable[None]]) -> None:
        """Run ``step`` against the target's database (migrated first, the enabled dialects' branches too), as an
        operator's CLI command would."""
        migrations = registry.migrations(self.app.state.dialects.values())

        async def run() -> None:
            async with open_services(self.settings, migrate=True, migrations=migrations) as services:
                await step(services)

        asyncio.run(run())

    def cleanup_fixture(self) -> Any:
        """An autouse fixture that drops the target's database when the test session ends.

        Not when the module's tests end: a worker of pytest-xdist may run them interleaved with other modules' tests,
        and a module-scoped fixture is then torn down between them, while the target stays the one the module made
        (its database dropped, the next test of the module failed to open it)."""

        @pytest.fixture(scope="session", autouse=True)
        def cleanup() -> Iterator[None]:
            yield
            self._stack.close()

        return cleanup
