"""Schemathesis against a hand-written spec and the app built for one dialect, in process.

One app per test module on a file database (the ASGI transport runs the lifespan once per test item).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from litestar import Litestar
from schemathesis.schemas import BaseSchema

from sessiongate.app import create_app
from sessiongate.settings import Settings
from tests.conftest import ROOT
from tests.support.databases import database

CONFIG = schemathesis.Config.from_path(ROOT / "contracts" / "schemathesis.toml")
HYPOTHESIS = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=40, derandomize=True)
_STACK = contextlib.ExitStack()


def backend() -> str:
    """The contract suite runs on PostgreSQL when it is configured, else on SQLite."""
    return "postgresql" if os.environ.get("SESSIONGATE_TEST_DATABASE_URL") else "sqlite"


def dialect_app(name: str, **overrides: Any) -> Litestar:
    """An app with only ``name`` enabled, on a fresh database that lives as long as the test process."""
    directory = Path(_STACK.enter_context(tempfile.TemporaryDirectory(prefix=f"sg-contract-{name}-")))
    url = _STACK.enter_context(database(backend(), directory))
    values: dict[str, Any] = {
        "database_url": url,
        "dialects": (name,),
        "openapi_dir": ROOT / "openapi",
        "sweep_interval": 0,
        "auto_migrate": True,
    }
    return create_app(Settings(**(values | overrides)))


def dialect_schema(name: str, app: Litestar) -> BaseSchema:
    """The hand-written spec of ``name``, calling ``app`` in process."""
    schema = schemathesis.openapi.from_path(ROOT / "openapi" / f"{name}.yaml", config=CONFIG)
    schema.app = app
    return schema


def close_all() -> Iterator[None]:
    """Module-scoped finaliser body: drop the databases made for the module."""
    yield
    _STACK.close()
