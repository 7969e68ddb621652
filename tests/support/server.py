"""A real ``sessiongate serve`` process on a free port, for end-to-end tests over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


STARTED: list[Server] = []
"""Every server this process started, oldest first: a failing test's report shows the logs of those it started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    database_url: str,
    directory: Path,
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    descriptor_limit: int | None = None,
    serve_args: Sequence[str] = (),
) -> Iterator[Server]:
    """Start the gateway with ``database_url`` (``serve_args`` added to ``serve``'s); stop it (SIGTERM, then SIGKILL)
    afterwards.

    ``descriptor_limit`` caps the server's open files (soft and hard ``RLIMIT_NOFILE``), as a small ``ulimit -n`` does.
    """
    port = free_port()
    log_path = directory / f"server-{port}.log"
    environ = _environ(database_url, env)
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "sessiongate", "serve", "--port", str(port), "--workers", str(workers)]
        command += serve_args
        if descriptor_limit is not None:
            command = ["sh", "-c", f'ulimit -n {int(descriptor_limit)} && exec "$0" "$@"', *command]
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=directory,
        )
    server = Server(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    STARTED.append(server)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_command(
    database_url: str, directory: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sessiongate <args>`` on ``database_url`` as an operator would, in the environment a server gets."""
    return subprocess.run(
        [sys.executable, "-m", "sessiongate", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_environ(database_url, env),
        cwd=directory,
        timeout=120,
        check=False,
    )


def _environ(database_url: str, env: Mapping[str, str] | None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    return environ | {"SESSIONGATE_DATABASE_URL": database_url, "SESSIONGATE_AUTO_MIGRATE": "true", **(env or {})}


def _wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.logs()}")
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s:\n{server.logs()}")
