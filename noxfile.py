"""Tasks: tests, contract, lint, typecheck, specs, bench, clients. ``nox -l`` lists them."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "specs", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYTHON = "3.11"


def _install(session: nox.Session) -> None:
    session.install("-e", ".[test]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole pytest suite (PostgreSQL too when SESSIONGATE_TEST_DATABASE_URL is set)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def contract(session: nox.Session) -> None:
    """Schemathesis in process (pytest), then its CLI against a real server process over HTTP.

    Every check runs: that is Schemathesis's default, and contracts/schemathesis.toml turns none off but
    use_after_free for OPTIONS (``--checks all`` on the command line would override that per-operation setting).
    A spec whose run leaves an operation answering only 401/403 fails (``[warnings]`` in that file): such an
    operation was never exercised. Each spec's credentials are provisioned here, as an operator would.
    """
    _install(session)
    session.run("pytest", "tests/contract", *session.posargs)
    python = Path(session.bin) / "python"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        env = _contract_env(directory)
        _provision(session, python, env)
        with _server(directory, python, env) as url:
            for spec in sorted((ROOT / "openapi").glob("*.yaml")):
                session.run(
                    "schemathesis",
                    "--config-file",
                    str(ROOT / "contracts" / "schemathesis.toml"),
                    "run",
                    str(spec),
                    "--url",
                    url,
                    "--phases",
                    "examples,coverage,fuzzing,stateful",
                    "--max-examples",
                    "30",
                    "--generation-deterministic",
                    env=_AMITY_HOOKS if spec.stem == "amity" else {},
                )


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
_AMITY_HOOKS = {"SCHEMATHESIS_HOOKS": str(ROOT / "contracts" / "amity" / "hooks.py"), **_AMITY_CREDENTIALS}


def _contract_env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    return env | {
        "SESSIONGATE_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'contract.db'}",
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
        cli("users", "add", *user, stdin="portos-999-secret\n")
    cli("devices", "add", "--name", "BackOffice", "--env", "BackOffice")
    cli("devices", "add", "--name", "P01", "--env", "CashRegister")
    amity = _AMITY_CREDENTIALS
    cli("keys", "add", "--tenant", "contract", "--from-stdin", stdin=amity["AMITY_API_KEY"] + "\n")
    cli("keys", "add-admin", "--tenant", "contract", "--from-stdin", stdin=amity["AMITY_ADMIN_TOKEN"] + "\n")
    vault = f"{_AMITY_VAULT_API_KEY}\n{amity['AMITY_SERVER_KEY']}\n"
    cli("keys", "add", "--tenant", "vault", "--secure", "--from-stdin", stdin=vault)
    session.log("provisioned the contract users, devices, amity networks and their keys")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the core and the dialects."""
    _install(session)
    session.run("mypy", "--strict", "src", "plugins")


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
    """Real server vs a bare Litestar endpoint under load; prints req/s, p50/p99 and ratios."""
    session.install("-e", ".")
    session.run("python", "bench/run.py", *session.posargs)


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
