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
    """Schemathesis in process (pytest), then its CLI against a real server process over HTTP."""
    _install(session)
    session.run("pytest", "tests/contract", *session.posargs)
    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp), Path(session.bin) / "python") as url:
        for spec in sorted((ROOT / "openapi").glob("*.yaml")):
            session.run(
                "schemathesis",
                "--config-file",
                str(ROOT / "contracts" / "schemathesis.toml"),
                "run",
                str(spec),
                "--url",
                url,
                "--checks",
                "all",
                "--phases",
                "examples,coverage,fuzzing,stateful",
                "--max-examples",
                "30",
                "--generation-deterministic",
            )


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
    """``sessiongate serve`` on a free port with a temporary SQLite file; yields its base URL."""

    def __init__(self, directory: Path, python: Path) -> None:
        self.directory = directory
        self.python = python

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
        env["SESSIONGATE_DATABASE_URL"] = f"sqlite+aiosqlite:///{self.directory / 'contract.db'}"
        self.process = subprocess.Popen(  # noqa: S603
            [str(self.python), "-m", "sessiongate", "serve", "--port", str(port)], env=env, cwd=self.directory
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=1):  # noqa: S310 - our own local server
                    return url
            except OSError:
                time.sleep(0.1)
        self.process.kill()
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
