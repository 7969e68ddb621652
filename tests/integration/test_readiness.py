"""``/readyz`` of a real ``serve`` process says why it is not ready: the database is out, or migrations are pending."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url

from sessiongate.storage.database import MIGRATIONS_DIR, alchemy_config
from tests.support.databases import PG_ENV, database
from tests.support.proxy import cuttable_proxy
from tests.support.server import Server, run_command, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

needs_postgresql = pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} is not set")
# Migrations are the operator's (not applied at start), and the running server does not read the key ring meanwhile.
# The core's migrations alone (zelf owns no branch): the test undoes them with alembic, which knows no dialect's.
ENV = {
    "SESSIONGATE_AUTO_MIGRATE": "false",
    "SESSIONGATE_KEY_REFRESH_INTERVAL": "3600",
    "SESSIONGATE_DIALECTS": "zelf",
}
OUT = {"status": "unavailable", "reasons": [{"check": "database", "message": "the database cannot be reached"}]}


def readiness(server: Server) -> tuple[int, dict[str, Any]]:
    answer = httpx.get(f"{server.base_url}/readyz", timeout=30)
    return answer.status_code, answer.json()


def downgrade(database_url: str, revision: str) -> None:
    """Take the database back to ``revision`` with alembic, as ``alembic downgrade`` would."""

    def on(connection: Connection) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)

    async def go() -> None:
        engine = alchemy_config(database_url).get_engine()
        try:
            async with engine.begin() as conn:
                await conn.run_sync(on)
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_pending_migrations_make_the_gateway_unready_naming_current_and_head_revisions(empty_database_url, tmp_path):
    upgraded = run_command(empty_database_url, tmp_path, "db", "upgrade", env=ENV)
    assert upgraded.returncode == 0, upgraded.stderr
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    [head] = script.get_heads()
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)

    with running_server(empty_database_url, tmp_path, env=ENV) as server:
        assert readiness(server) == (200, {"status": "ok"})

        downgrade(empty_database_url, previous)
        status, body = readiness(server)
        assert status == 503
        assert body["status"] == "unavailable"
        [reason] = body["reasons"]
        assert reason["check"] == "migrations"
        assert (reason["current"], reason["head"]) == ([previous], [head])
        assert f"the database is at {previous}, this gateway needs {head}" in reason["message"]
        assert "sessiongate db upgrade" in reason["message"]

        downgrade(empty_database_url, "base")  # nothing left: an unmigrated database
        status, body = readiness(server)
        assert status == 503
        [reason] = body["reasons"]
        assert (reason["check"], reason["current"], reason["head"]) == ("migrations", [], [head])
        assert "the database is at no schema" in reason["message"]

        upgraded = run_command(empty_database_url, tmp_path, "db", "upgrade", env=ENV)
        assert upgraded.returncode == 0, upgraded.stderr
        assert readiness(server) == (200, {"status": "ok"})
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200


@needs_postgresql
def test_an_unreachable_postgresql_makes_the_gateway_unready_saying_so_and_nothing_of_where_it_is(tmp_path):
    with database("postgresql", tmp_path) as direct_url:
        assert run_command(direct_url, tmp_path, "db", "upgrade", env=ENV).returncode == 0
        target = make_url(direct_url)
        with cuttable_proxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            url = target.set(port=proxy.port).render_as_string(hide_password=False)
            with running_server(url, tmp_path, env=ENV) as server:
                assert readiness(server) == (200, {"status": "ok"})
                proxy.cut()
                answer = httpx.get(f"{server.base_url}/readyz", timeout=30)
                assert (answer.status_code, answer.json()) == (503, OUT)
                for where in (str(proxy.port), target.database or "", target.host or ""):
                    assert where not in answer.text
                proxy.restore()
                assert readiness(server) == (200, {"status": "ok"})


def test_a_vanished_sqlite_database_makes_the_gateway_unready_saying_so(tmp_path):
    place = tmp_path / "volume"
    place.mkdir()
    url = f"sqlite+aiosqlite:///{place / 'gateway.db'}"
    assert run_command(url, tmp_path, "db", "upgrade", env=ENV).returncode == 0
    with running_server(url, tmp_path, env=ENV) as server:
        gone = place.rename(tmp_path / "volume-detached")
        try:
            answer = httpx.get(f"{server.base_url}/readyz", timeout=30)
            assert (answer.status_code, answer.json()) == (503, OUT)
            assert "volume" not in answer.text
        finally:
            Path(gone).rename(place)
        assert readiness(server) == (200, {"status": "ok"})
