"""Mistakes get one clear line: what ``sessiongate serve`` and the commands say, and exit with, when what they are
given cannot work. Every test runs the real CLI in a process of its own, as an operator would."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from sessiongate.settings import POSTGRES_CONNECTIONS, Settings, default_pool
from sessiongate.storage.database import alchemy_config
from tests.support.server import free_port, run_command, running_server

CONFIGURATION, UNREACHABLE, NOT_READY, CANNOT_LISTEN = 2, 3, 4, 5  # the README's exit statuses
MANUAL = {"SESSIONGATE_AUTO_MIGRATE": "false"}
CORE_ONLY = MANUAL | {"SESSIONGATE_DIALECTS": "zelf"}  # no dialect with a migration branch of its own
INSTALLED = "amity, issp, portos, saymon, zelf"


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``Error:`` line a refused command printed (besides the line naming its database), nothing else."""
    lines = [line for line in done.stderr.splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return lines[0]


def spelled(database_url: str, scheme: str) -> str:
    return make_url(database_url).set(drivername=scheme).render_as_string(hide_password=False)


@pytest.mark.slow
def test_the_usual_spellings_of_a_database_url_reach_the_database(database_url, tmp_path):
    spellings = (
        ["sqlite", "sqlite+pysqlite"]
        if database_url.startswith("sqlite")
        else ["postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"]
    )
    for scheme in spellings:
        done = run_command(spelled(database_url, scheme), tmp_path, "db", "status")
        assert done.returncode == 0, done.stderr
        assert "pending: none" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "url",
    ["mysql://admin:hunter2-secret@db.example/sessions", "/var/lib/sessiongate/gateway.db", "not a url at all"],
)
@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["users", "list"], ["db", "status"]])
def test_a_database_url_the_gateway_cannot_use_is_one_line_naming_the_variable(url, command, tmp_path):
    if command[0] == "serve":
        command = ["serve", "--port", str(free_port())]
    done = run_command(url, tmp_path, *command)
    assert done.returncode == CONFIGURATION
    line = one_line(done)
    assert "SESSIONGATE_DATABASE_URL" in line
    assert "postgresql://" in line  # what would work
    assert "sqlite:///" in line
    assert "hunter2" not in done.stderr + done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing created


@pytest.mark.slow
@pytest.mark.parametrize("command", [["serve"], ["users", "list"]])
def test_an_unreachable_database_is_one_line_naming_host_and_port(command, tmp_path):
    port = free_port()  # nothing listens there
    if command == ["serve"]:
        command = ["serve", "--port", str(free_port())]
    done = run_command(f"postgresql://gateway:hunter2-secret@127.0.0.1:{port}/sessions", tmp_path, *command)
    assert done.returncode == UNREACHABLE
    line = one_line(done)
    assert f"127.0.0.1:{port}" in line
    assert "Connection refused" in line
    assert "hunter2" not in done.stderr + done.stdout
    assert "listening" not in done.stderr


@pytest.mark.slow
def test_an_unmigrated_database_says_how_to_migrate_and_the_db_commands_move_it(empty_database_url, tmp_path):
    url = empty_database_url  # SQLite: a file that does not exist yet, which serve makes (and then refuses to go on)
    refused = run_command(url, tmp_path, "serve", "--port", str(free_port()), env=MANUAL)
    assert refused.returncode == NOT_READY
    line = one_line(refused)
    assert "sessiongate db upgrade" in line
    assert "SESSIONGATE_AUTO_MIGRATE=true" in line
    assert "listening" not in refused.stderr
    for command in (["users", "list"], ["key-ring", "list"]):
        assert run_command(url, tmp_path, *command, env=MANUAL).returncode == NOT_READY

    status = run_command(url, tmp_path, "db", "status", env=MANUAL)
    assert status.returncode == NOT_READY
    assert "current: none" in status.stdout
    assert "pending: 0001" in status.stdout

    assert run_command(url, tmp_path, "db", "upgrade", env=CORE_ONLY).returncode == 0
    status = run_command(url, tmp_path, "db", "status", env=CORE_ONLY)
    assert status.returncode == 0, status.stderr
    head = status.stdout.splitlines()[1].split()[-1]
    assert status.stdout.splitlines()[0] == f"current: {head}"
    history = run_command(url, tmp_path, "db", "history", env=CORE_ONLY).stdout.splitlines()
    assert history[0].startswith(head)
    assert history[0].endswith("(current)")
    assert history[-1].startswith("0001")

    previous = history[1].split()[0]
    assert run_command(url, tmp_path, "db", "downgrade", previous, env=CORE_ONLY).returncode == 0
    behind = run_command(url, tmp_path, "db", "status", env=CORE_ONLY)
    assert (behind.returncode, behind.stdout.splitlines()[-1]) == (NOT_READY, f"pending: {head}")
    assert "1 migration pending" in one_line(run_command(url, tmp_path, "users", "list", env=CORE_ONLY))
    assert run_command(url, tmp_path, "db", "upgrade", env=CORE_ONLY).returncode == 0
    assert run_command(url, tmp_path, "users", "list", env=CORE_ONLY).returncode == 0


@pytest.mark.slow
def test_a_missing_table_stops_serve_in_one_line_without_the_statement_or_its_parameters(database_url, tmp_path):
    # The schema says "migrated", but the table of the keys is gone: the generated signing key is made and its INSERT
    # fails. Its parameters (the key) must appear nowhere: not in the line, not in a traceback.
    asyncio.run(_execute(database_url, "DROP TABLE sg_secret"))
    done = run_command(database_url, tmp_path, "serve", "--port", str(free_port()), env=MANUAL)
    assert done.returncode == NOT_READY
    line = one_line(done)
    assert "sessiongate db upgrade" in line
    assert "parameters" not in done.stderr
    assert "INSERT" not in done.stderr


def test_no_engine_puts_statement_parameters_in_its_errors(database_url):
    secret = "generated-signing-key-that-must-never-be-logged"

    async def fail() -> str:
        engine = alchemy_config(database_url).get_engine()
        try:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO no_such_table (value) VALUES (:value)"), {"value": secret})
        except Exception as exc:  # noqa: BLE001 - what it says is the point
            return str(exc)
        finally:
            await engine.dispose()
        return ""

    said = asyncio.run(fail())
    assert "no_such_table" in said
    assert secret not in said


@pytest.mark.slow
@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_serve_refuses_a_port_outside_1_to_65535_in_one_line(port, tmp_path):
    done = run_command("sqlite:///gateway.db", tmp_path, "serve", "--port", port)
    assert done.returncode == CONFIGURATION
    assert "--port" in one_line(done)
    assert not (tmp_path / "gateway.db").exists()


@pytest.mark.slow
def test_serve_refuses_a_taken_port_before_anything_says_it_started(database_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_command(database_url, tmp_path, "serve", "--port", str(port))
    assert done.returncode == CANNOT_LISTEN
    line = one_line(done)
    assert f"127.0.0.1:{port}" in line
    assert "in use" in line
    assert "started" not in done.stderr
    assert "listening" not in done.stderr


@pytest.mark.slow
def test_serve_refuses_a_host_that_is_not_an_address_of_this_host(tmp_path):
    done = run_command("sqlite:///gateway.db", tmp_path, "serve", "--host", "no-such-host.invalid")
    assert done.returncode == CONFIGURATION
    assert "--host" in one_line(done)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_says_once_what_listens_where_and_on_which_database(database_url, tmp_path, workers):
    with running_server(database_url, tmp_path, workers=workers) as server:
        assert httpx.get(f"{server.base_url}/healthz").status_code == 200
        said = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    listening = [entry for entry in said if entry["message"] == "listening"]
    assert len(listening) == 1
    assert listening[0]["url"] == server.base_url
    assert listening[0]["workers"] == workers
    database = make_url(database_url)
    expected = str(Path(database.database or "").resolve()) if database_url.startswith("sqlite") else database.host
    assert expected in listening[0]["database"]


@pytest.mark.slow
def test_an_empty_variable_is_an_unset_one(database_url, tmp_path):
    empty = dict.fromkeys(("SESSIONGATE_LOG_LEVEL", "SESSIONGATE_JWT_KEYS", "SESSIONGATE_DIALECTS"), "")
    done = run_command(database_url, tmp_path, "users", "list", env=empty)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SESSIONGATE_DATABSE_URL", "sqlite:///x.db", "SESSIONGATE_DATABASE_URL"),
        ("SESSIONGATE_ENVIRONMENT", "prod", "environment"),
        ("SESSIONGATE_DB_POOL_SIZE", "-3", "SESSIONGATE_DB_POOL_SIZE"),
        ("SESSIONGATE_PASSWORD_MIN_LENGTH", "0", "SESSIONGATE_PASSWORD_MIN_LENGTH"),
        ("SESSIONGATE_ZELFF__PREFIX", "/z", INSTALLED),
        ("SESSIONGATE_ZELF__PREFX", "/z", "'zelf': no option named prefx (did you mean prefix?)"),
    ],
)
def test_a_bad_setting_stops_serve_and_commands_in_one_line_naming_it(database_url, tmp_path, variable, value, named):
    for command in (["serve", "--port", str(free_port())], ["users", "list"]):
        done = run_command(database_url, tmp_path, *command, env={variable: value})
        assert done.returncode == CONFIGURATION
        assert named in one_line(done)


@pytest.mark.slow
def test_the_configuration_file_takes_dialect_options_under_dialect_options(database_url, tmp_path):
    config = tmp_path / "sessiongate.toml"
    config.write_text('dialects = ["zelf"]\n\n[dialect_options.zelf]\nprefix = "/zelf"\n')
    with running_server(database_url, tmp_path, env={"SESSIONGATE_CONFIG": str(config)}) as server:
        created = httpx.post(f"{server.base_url}/zelf/api/sessions", json={"identifier": "device-1"})
        assert created.status_code == 200, created.text
        assert httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "device-1"}).status_code == 404


@pytest.mark.slow
def test_options_of_an_installed_dialect_that_is_not_enabled_let_serve_start(database_url, tmp_path):
    config = tmp_path / "sessiongate.toml"
    config.write_text("[dialect_options.issp]\nlifetime = 60\n")
    env = {"SESSIONGATE_CONFIG": str(config), "SESSIONGATE_DIALECTS": "zelf", "SESSIONGATE_PORTOS__PREFIX": "/p"}
    with running_server(database_url, tmp_path, env=env) as server:
        created = httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "device-1"})
        assert created.status_code == 200, created.text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[zelf]\nprefix = "/zelf"\n', "[dialect_options.zelf]"),
        ('databse_url = "sqlite:///x.db"\n', "database_url"),
        ('[dialect_options.zelff]\nprefix = "/zelf"\n', INSTALLED),
        ('[dialect_options.zelf]\nprefx = "/zelf"\n', "'zelf': no option named prefx (did you mean prefix?)"),
        ("dialects = [zelf\n", "not valid TOML"),
    ],
)
def test_a_configuration_file_mistake_is_one_line_naming_the_right_spelling(database_url, tmp_path, toml, named):
    config = tmp_path / "sessiongate.toml"
    config.write_text(toml)
    env = {"SESSIONGATE_CONFIG": str(config)}
    for command in (["serve", "--port", str(free_port())], ["dialects"]):
        done = run_command(database_url, tmp_path, *command, env=env)
        assert done.returncode == CONFIGURATION
        assert named in one_line(done)


@pytest.mark.slow
def test_an_administrative_command_never_creates_a_database_and_says_which_it_works_on(database_url, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    default = {"SESSIONGATE_DATABASE_URL": ""}  # unset: ./sessiongate.db of the current directory
    for command in (["users", "list"], ["keys", "list"], ["db", "status"], ["key-ring", "list"]):
        done = run_command(database_url, elsewhere, *command, env=default)
        assert done.returncode == NOT_READY
        line = one_line(done)
        assert str(elsewhere / "sessiongate.db") in line
        assert "SESSIONGATE_DATABASE_URL" in line
        assert list(elsewhere.iterdir()) == []
    done = run_command(database_url, elsewhere, "users", "list")
    assert done.returncode == 0, done.stderr
    named = done.stderr.splitlines()[0]
    assert named.startswith("database: ")
    if database_url.startswith("sqlite"):
        assert str(Path(make_url(database_url).database or "").resolve()) in named
    else:
        url = make_url(database_url)
        assert f"{url.host}:{url.port or 5432}" in named
        assert url.password is None or url.password not in named


@pytest.mark.slow
def test_users_add_refuses_a_piped_password_without_password_stdin(database_url, tmp_path):
    done = run_command(database_url, tmp_path, "users", "add", "--login", "ada", stdin="a-forgotten-flag-pass\n")
    assert done.returncode == CONFIGURATION
    assert "--password-stdin" in one_line(done)
    assert "ada" not in run_command(database_url, tmp_path, "users", "list").stdout
    # Nothing on standard input: a principal without a password, as documented.
    assert run_command(database_url, tmp_path, "users", "add", "--login", "bea", stdin="").returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("password", "env", "said"),
    [
        ("short-pass", {}, "shorter than 12"),
        ("123qweasdzxc", {}, "most common"),
        ("Password1234", {}, "most common"),
        ("ada@example.org", {}, "is the login"),
        ("long enough!", {"SESSIONGATE_PASSWORD_MIN_LENGTH": "20"}, "shorter than 20"),
    ],
)
def test_passwords_set_through_the_cli_follow_the_policy(database_url, tmp_path, password, env, said):
    login = "ada@example.org"
    for command in (["users", "add", "--login", login], ["users", "set-password", "--login", login]):
        done = run_command(database_url, tmp_path, *command, "--password-stdin", stdin=f"{password}\n", env=env)
        assert done.returncode == CONFIGURATION
        assert said in one_line(done)
        assert password not in done.stderr
    assert login not in run_command(database_url, tmp_path, "users", "list").stdout


@pytest.mark.slow
def test_the_common_password_check_can_be_turned_off(database_url, tmp_path):
    env = {"SESSIONGATE_PASSWORD_CHECK_COMMON": "false"}
    done = run_command(
        database_url, tmp_path, "users", "add", "--login", "ada", "--password-stdin", stdin="123qweasdzxc\n", env=env
    )
    assert done.returncode == 0, done.stderr


def test_the_default_pool_keeps_every_worker_under_postgresql_default_connections():
    for workers in (1, 2, 3, 4, 8, 16, 40):
        size, overflow = default_pool(workers)
        assert size >= 1
        assert workers * (size + overflow) <= POSTGRES_CONNECTIONS
    assert default_pool(1) == (30, 0)  # one process: 30 connections kept, none opened and closed per request
    assert default_pool(4) == (20, 0)


def test_the_pool_settings_size_the_engine():
    settings = Settings(database_url="postgresql://nobody@127.0.0.1/unused", db_pool_size=3, db_max_overflow=2)
    from sessiongate.runtime import engine_config

    pool = engine_config(settings).get_engine().pool
    assert (pool.size(), pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_serve_sizes_each_workers_pool_from_the_workers(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL pool")
    with running_server(database_url, tmp_path, workers=4) as server:
        said = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    size, overflow = next(entry["pool"] for entry in said if entry["message"] == "listening")
    assert (size, overflow) == default_pool(4)
    assert 4 * (size + overflow) <= POSTGRES_CONNECTIONS
    with running_server(database_url, tmp_path, env={"SESSIONGATE_DB_POOL_SIZE": "5"}) as server:
        said = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    assert next(entry["pool"] for entry in said if entry["message"] == "listening") == [5, 0]


async def _execute(database_url: str, statement: str) -> None:
    url = make_url(database_url)
    if url.drivername.startswith("sqlite"):
        engine = alchemy_config(database_url).get_engine()
        try:
            async with engine.begin() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()
        return
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
