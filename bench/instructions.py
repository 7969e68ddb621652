"""CPU instructions per request, counted by callgrind: what the load of the machine cannot move (nox -s instructions).

Wall-clock figures on a shared machine move by tens of percent between runs; an instruction count does not. The
gateway's ASGI app is called in process (no server, no socket) on a temporary SQLite file holding ``--sessions``
issp sessions. Two runs under ``valgrind --tool=callgrind`` differ only in the number of requests they make
(``--requests`` and 0): the difference of their counts, divided by that number, is what one request costs the app,
Litestar's work included and the HTTP server's not. What runs by the wall clock (the sweeper, the live-session
gauge, the key ring's re-read, an issp slide) is set far out, so that valgrind's slowness does not count more of it.
Two counts of the same code still differ by up to about 1 % (the sessions' random secrets, the collector's timing):
compare versions by more than that.

Scenarios: ``issp-validate`` (GET validateSession, the sessions' cookies in turn, each sent back as the last answer
set it, so that no header repeats) and ``zelf-create`` (a new device session per request, one at a time).

Usage::

    python bench/instructions.py [--scenario issp-validate] [--sessions 200] [--requests 1500]
    python bench/instructions.py --drive 1500 ...   # one run, in process (what valgrind runs), with its timing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCENARIOS = ("issp-validate", "zelf-create")
USER_ID, LOGIN = "bench-user", "bench@example.com"
COLLECTED = re.compile(r"Collected : (\d+)")
# Far out, so that what runs by the wall clock runs as often in a run ~50 times slower under valgrind: never.
QUIET = {
    "SESSIONGATE_KEY_REFRESH_INTERVAL": "3600",
    "SESSIONGATE_METRICS_INTERVAL": "1000000",
    "SESSIONGATE_SWEEP_INTERVAL": "1000000",
    "SESSIONGATE_ISSP__TOUCH_INTERVAL": "1000000",
}


def gateway_env(database: Path) -> dict[str, str]:
    """Production settings (its log lines included), all dialects, no create budget, the temporary database; nothing
    by the wall clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONGATE_")}
    return (
        env
        | QUIET
        | {
            "PYTHONHASHSEED": "0",  # the same dict and set layouts in every run
            "SESSIONGATE_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
            "SESSIONGATE_DIALECTS": "*",
            "SESSIONGATE_ENVIRONMENT": "production",
            "SESSIONGATE_CREATE_RATE_LIMIT": "0",
        }
    )


def prepare(database: Path) -> dict[str, str]:
    """A migrated database with the issp user, through the operators' command line."""
    env = gateway_env(database)
    cli = [sys.executable, "-m", "sessiongate"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*cli, "users", "add", "--login", LOGIN, "--id", USER_ID, "--email", LOGIN],
        env=env,
        check=True,
        capture_output=True,
    )
    return env


class InProcess:
    """The gateway's app, its lifespan driven by hand, called like a server calls it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lifespan: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InProcess:
        started = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            if message["type"].startswith("lifespan.startup"):
                if message["type"].endswith("failed"):
                    raise RuntimeError(message.get("message", "the app did not start"))
                started.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        await self._lifespan.put({"type": "lifespan.startup"})
        self._task = asyncio.create_task(self.app(scope, self._lifespan.get, send))
        await started.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        if self._task is not None:
            await self._task

    async def call(
        self, method: str, path: str, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request: its status, headers and body."""
        sent = [(b"host", b"localhost"), *(headers or [])]
        if body:
            sent += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": sent,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }
        pending = [{"type": "http.request", "body": body, "more_body": False}]
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop()
            await asyncio.Event().wait()  # the client stays connected
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], message["headers"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.app(scope, receive, send)
        return answer["status"], answer["headers"], answer["body"]


async def issp_session(gateway: InProcess) -> bytes:
    """A new issp session's cookie, as a client sends it back."""
    status, headers, body = await gateway.call(
        "POST", "/api/session/createSession", json.dumps({"userId": USER_ID}).encode()
    )
    if status != 200:
        raise RuntimeError(f"createSession answered {status}: {body[:200]!r}")
    return next(value.split(b";")[0] for name, value in headers if name == b"set-cookie")


async def drive(scenario: str, sessions: int, requests: int, warm: int) -> float:
    """Set up, warm up, then make ``requests`` requests; the seconds they took."""
    from sessiongate.app import create_app  # after the environment is set

    async with InProcess(create_app(announce=False)) as gateway:
        cookies = [await issp_session(gateway) for _ in range(sessions)]

        async def one(i: int) -> None:
            if scenario == "issp-validate":
                cookie = cookies[i % len(cookies)]
                status, headers, body = await gateway.call(
                    "GET", "/api/session/validateSession", headers=[(b"cookie", cookie)]
                )
                # Sent back as a browser sends it: each answer's cookie (its new expiry) is the next request's, so no
                # two requests present the same header, as with many clients.
                cookies[i % len(cookies)] = next(v.split(b";")[0] for n, v in headers if n == b"set-cookie")
            else:
                payload = json.dumps({"identifier": f"bench-device-{i}"}).encode()
                status, _, body = await gateway.call("POST", "/api/sessions", payload)
            if status != 200:
                raise RuntimeError(f"{scenario} answered {status}: {body[:200]!r}")

        for i in range(warm):
            await one(-1 - i)
        start = time.perf_counter()
        for i in range(requests):
            await one(i)
        return time.perf_counter() - start


def run_drive(args: argparse.Namespace) -> int:
    import uvloop

    os.environ.update(gateway_env(Path(os.environ["BENCH_INSTRUCTIONS_DATABASE"])))
    seconds = uvloop.run(drive(args.scenario, args.sessions, args.drive, args.warm))
    if args.drive:
        print(f"{args.scenario}: {seconds / args.drive * 1e6:.1f} us per request (in process, wall clock)")
    return 0


def count(args: argparse.Namespace, requests: int, workdir: Path, label: str) -> int:
    """Instructions of one run making ``requests`` requests (its own copy of the prepared database)."""
    database = workdir / f"{label}.db"
    shutil.copy(workdir / "prepared.db", database)
    env = gateway_env(database) | {"BENCH_INSTRUCTIONS_DATABASE": str(database)}
    argv = [sys.executable, __file__, "--drive", str(requests), "--scenario", args.scenario]
    argv += ["--sessions", str(args.sessions), "--warm", str(args.warm)]
    out = workdir / f"{label}.callgrind"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = COLLECTED.findall(done.stderr)
    if done.returncode or not found:
        raise RuntimeError(f"the {label} run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(found[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=SCENARIOS, default="issp-validate")
    parser.add_argument("--sessions", type=int, default=200, help="issp sessions made first (default 200)")
    parser.add_argument("--requests", type=int, default=1500, help="requests counted (default 1500)")
    parser.add_argument("--warm", type=int, default=200, help="requests made before counting starts (default 200)")
    parser.add_argument("--drive", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive is not None:
        return run_drive(args)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind); nothing counted", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="sessiongate-instructions-") as tmp:
        workdir = Path(tmp)
        prepare(workdir / "prepared.db")
        with_requests = count(args, args.requests, workdir, "with")
        without = count(args, 0, workdir, "without")
    per_request = (with_requests - without) / args.requests
    print(
        f"{args.scenario}: {per_request:,.0f} instructions per request "
        f"(callgrind, in process; {args.requests} and 0 requests over {args.sessions} sessions)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
