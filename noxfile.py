"""Tasks: tests, contract, lint, typecheck, specs, bench, clients. ``nox -l`` lists them."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "specs", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYTHON = "3.11"
# The gateway's spec last: its admin API, fuzzed with an admin token, disables, deletes and revokes the principals and
# sessions the dialects' runs on the same server are provisioned with.
_SPECS = sorted((p.stem for p in (ROOT / "openapi").glob("*.yaml")), key=lambda stem: (stem == "gateway", stem))


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test]", "-e", "tests/dialect_package")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole pytest suite: the quick part, then the tests that start processes (``slow``); PostgreSQL too when
    SESSIONGATE_TEST_DATABASE_URL is set."""
    _install(session)
    session.run("pytest", *session.posargs)
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session(python=PYTHON)
def contract(session: nox.Session) -> None:
    """Schemathesis in process (pytest), then its CLI against a real server process over HTTP, per database.

    ``nox -s contract -- [--database sqlite|postgresql://…]… [--spec NAME]… [--cli-only] [pytest arguments]``. The
    command-line runs go against SQLite, and against PostgreSQL too when SESSIONGATE_TEST_DATABASE_URL is set (a
    database made for the run there and dropped after it); ``--database`` picks the databases instead, ``--spec`` the
    specs, and ``--cli-only`` skips the pytest part.
    With ``--no-venv --no-install`` (as .ci/run does) nox runs it in the environment it is started from.

    Every check runs: that is Schemathesis's default, and contracts/schemathesis.toml turns none off but
    use_after_free for OPTIONS (``--checks all`` on the command line would override that per-operation setting).
    A spec whose run leaves an operation answering only 401/403 fails (``[warnings]`` in that file): such an
    operation was never exercised. Each spec's credentials are provisioned here, as an operator would.
    """
    _install(session)
    options, pytest_args = _contract_options(session.posargs)
    if not options.cli_only:
        session.run("pytest", "tests/contract", *pytest_args)
    for database in options.database or _contract_databases():
        _fuzz(session, database, options.spec or _SPECS)


def _contract_options(args: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="nox -s contract --", allow_abbrev=False)  # the rest goes to pytest
    parser.add_argument(
        "--database",
        action="append",
        metavar="sqlite|postgresql://…",
        help="a database the command-line runs use (repeatable); by default SQLite, and SESSIONGATE_TEST_DATABASE_URL",
    )
    parser.add_argument("--cli-only", action="store_true", help="only the command-line runs, not tests/contract")
    parser.add_argument(
        "--spec", action="append", choices=_SPECS, help="a spec the command-line runs fuzz (repeatable); by default all"
    )
    options, rest = parser.parse_known_args(args)
    for database in options.database or []:
        if database != "sqlite" and not database.startswith(("postgresql://", "postgresql+asyncpg://")):
            parser.error(f"--database: 'sqlite' or a postgresql:// URL, not {database.split(':')[0]!r}")
    return options, rest


def _contract_databases() -> list[str]:
    """SQLite, and the test suite's PostgreSQL when it is configured (SESSIONGATE_TEST_DATABASE_URL)."""
    return ["sqlite", *filter(None, [os.environ.get("SESSIONGATE_TEST_DATABASE_URL")])]


def _fuzz(session: nox.Session, database: str, specs: list[str]) -> None:
    """The Schemathesis command-line run of each of ``specs`` against one server on ``database``, provisioned as an
    operator would."""
    python = _python(session)
    kind = "SQLite" if database == "sqlite" else "PostgreSQL"
    with tempfile.TemporaryDirectory() as tmp, _contract_database(python, database, Path(tmp)) as url:
        directory = Path(tmp)
        env = _contract_env(url)
        _provision(session, python, env)
        with _server(directory, python, env) as base:
            for name in specs:
                spec = ROOT / "openapi" / f"{name}.yaml"
                session.log(f"Schemathesis: {spec.name} on {kind}")
                session.run(
                    "schemathesis",
                    "--config-file",
                    str(ROOT / "contracts" / "schemathesis.toml"),
                    "run",
                    str(spec),
                    "--url",
                    base,
                    "--phases",
                    "examples,coverage,fuzzing,stateful",
                    "--max-examples",
                    "30",
                    "--generation-deterministic",
                    env=_AMITY_HOOKS if name == "amity" else {},
                )


def _python(session: nox.Session) -> Path:
    """The session's interpreter: its virtualenv's, or with ``--no-venv`` the one running nox."""
    return Path(session.bin) / "python" if session.bin_paths else Path(sys.executable)


@contextlib.contextmanager
def _contract_database(python: Path, database: str, directory: Path) -> Iterator[str]:
    """A new SQLite file in ``directory``, or a new database on the PostgreSQL server ``database`` names (dropped
    afterwards); yields its SQLAlchemy async URL."""
    if database == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'contract.db'}"
        return
    script = str(ROOT / "contracts" / "database.py")
    made = subprocess.run([str(python), script, "create", database], stdout=subprocess.PIPE, text=True, check=True)
    url = made.stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([str(python), script, "drop", database, url], check=True)


# What contracts/schemathesis.toml logs in with, provisioned as an operator would (the same as tests/contract).
_CONTRACT_USERS = (
    ("--login", "999", "--role", "admin", "--permission", "admin", "--password-stdin"),
    ("--login", "user@example.com", "--id", "1234eigh89b02749e3a41c34", "--email", "user@example.com"),
)
# amity: a network with an admin token, and a secure one whose server key mints auth tokens. contracts/amity/auth.py
# gives each call the credential its operation needs, from these variables (the same keys as tests/contract).
_AMITY_CREDENTIALS = {
    "AMITY_API_KEY": "contract-api-key-0123456789abcdef0123",
    "AMITY_ADMIN_TOKEN": "contract-admin-token-0123456789abcdef",
    "AMITY_SERVER_KEY": "vault-server-key-0123456789abcdef0123",
}
_AMITY_VAULT_API_KEY = "vault-api-key-0123456789abcdef012345"
_GATEWAY_API_TOKEN = "sgt_contract-token-0123456789abcdef0123456789abcdef"
_GATEWAY_ADMIN_TOKEN = "sgt_contract-admin-0123456789abcdef0123456789abcdef"
_AMITY_HOOKS = {"SCHEMATHESIS_HOOKS": str(ROOT / "contracts" / "amity" / "hooks.py"), **_AMITY_CREDENTIALS}


def _contract_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    return env | {
        "SESSIONGATE_DATABASE_URL": database_url,
        "SESSIONGATE_ADMIN_LOGIN": "user.name@example.com",
        "SESSIONGATE_ADMIN_PASSWORD": "P665bPVi",
        # The fuzzer sends thousands of failed logins from one address; the limits would then lock out its own login.
        "SESSIONGATE_LOGIN_MAX_FAILURES": "1000000",
        "SESSIONGATE_LOGIN_MAX_ADDRESS_FAILURES": "1000000",
    }


def _provision(session: nox.Session, python: Path, env: dict[str, str]) -> None:
    def cli(*args: str, stdin: str = "") -> None:
        subprocess.run([str(python), "-m", "sessiongate", *args], input=stdin, text=True, env=env, check=True)

    cli("db", "upgrade")
    for user in _CONTRACT_USERS:
        # Only a user given --password-stdin reads one: the CLI refuses input it would otherwise drop.
        cli("users", "add", *user, stdin="portos-999-secret\n" if "--password-stdin" in user else "")
    cli("devices", "add", "--name", "BackOffice", "--env", "BackOffice")
    cli("devices", "add", "--name", "P01", "--env", "CashRegister")
    amity = _AMITY_CREDENTIALS
    cli("keys", "add", "--tenant", "contract", "--from-stdin", stdin=amity["AMITY_API_KEY"] + "\n")
    cli("keys", "add-admin", "--tenant", "contract", "--from-stdin", stdin=amity["AMITY_ADMIN_TOKEN"] + "\n")
    vault = f"{_AMITY_VAULT_API_KEY}\n{amity['AMITY_SERVER_KEY']}\n"
    cli("keys", "add", "--tenant", "vault", "--secure", "--from-stdin", stdin=vault)
    # openapi/gateway.yaml: introspection and revocation take this API token (contracts/schemathesis.toml, the same
    # test token as tests/contract/test_gateway_contract.py).
    cli("admin-tokens", "add", "--name", "contract", "--from-stdin", stdin=_GATEWAY_API_TOKEN + "\n")
    admin_token = _GATEWAY_ADMIN_TOKEN + "\n"
    cli("admin-tokens", "add", "--name", "contract-admin", "--scope", "admin", "--from-stdin", stdin=admin_token)
    session.log("provisioned the contract users, devices, amity networks and their keys, and a gateway API token")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core, the dialects, the contract runs' helpers and this file; and on memo, the dialect
    built from outside against the SDK alone (a package of its own, checked as its author would check it)."""
    _install(session)
    session.run("mypy", "--strict", "src", "plugins", "contracts", "noxfile.py")
    session.run("mypy", "--strict", "-p", "sessiongate_memo")


@nox.session(python=PYTHON)
def specs(session: nox.Session) -> None:
    """Validate every hand-written OpenAPI document."""
    session.install("openapi-spec-validator", "pyyaml")
    session.run(
        "python",
        "-c",
        "import sys, yaml, openapi_spec_validator as v\n"
        "for p in sys.argv[1:]:\n"
        "    v.validate(yaml.safe_load(open(p)))\n"
        "    print('valid', p)\n",
        *sorted(str(p) for p in (ROOT / "openapi").glob("*.yaml")),
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Real server vs a bare Litestar endpoint (granian, 1 worker) under load; prints req/s, p50/p99, shares of it and
    the goals. With a PostgreSQL server (``--pg-url`` or SESSIONGATE_TEST_DATABASE_URL) the PostgreSQL rows run too."""
    session.install("-e", ".[bench]")
    session.run("python", "bench/run.py", *session.posargs)


@nox.session(python=PYTHON)
def instructions(session: nox.Session) -> None:
    """CPU instructions per issp validate (or ``-- --scenario zelf-create``), counted by callgrind in process: a
    figure the machine's load cannot move, for comparing two versions of the code (needs valgrind)."""
    session.install("-e", ".[bench]")
    session.run("python", "bench/instructions.py", *session.posargs)


@nox.session(python=PYTHON)
def clients(session: nox.Session) -> None:
    """Published Node clients (the seeds' examples, the Amity SDK) against a real server process."""
    _install(session)
    session.run("npm", "ci", "--prefix", "clients", "--no-audit", "--no-fund", external=True)
    session.run("pytest", "-m", "clients", *session.posargs)


class _server:  # noqa: N801 - used as a context manager like a function
    """``sessiongate serve`` on a free port with ``env``; yields its base URL."""

    def __init__(self, directory: Path, python: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.python = python
        self.env = env

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [str(self.python), "-m", "sessiongate", "serve", "--port", str(port)], env=self.env, cwd=self.directory
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1):
                    return url
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
