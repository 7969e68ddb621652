"""Benchmark harness for sessiongate (``nox -s bench`` runs ``python bench/run.py``).

Starts its servers on free 127.0.0.1 ports, access log off:

* ``bench/bare_app.py`` on granian, one worker: a bare Litestar app, the throughput ceiling every figure is a
  share of (issue 17), and the same app on uvicorn (uvloop/httptools when installed) beside it;
* ``sessiongate serve --workers 1`` (uvicorn) on a temporary SQLite file, production settings, and, for the
  scenarios that ask for it, ``--workers 2`` on another;
* with a PostgreSQL server (``--pg-url``, else ``SESSIONGATE_TEST_DATABASE_URL``): ``sessiongate serve --workers 2``
  on a fresh database of it, and the lean Litestar + SQLAlchemy Core + asyncpg validate (``bench/lean_app.py``,
  two workers) on another; both databases are dropped at the end.

Then it drives each scenario at ``--connections`` (and at a low concurrency for
the tail latency), waiting for the gateway to go idle after each run, runs an
exact number of session creates while sampling the gateway's RSS, and prints the
figures next to their goals (only the goals the issues set). It exits 0 whatever
the figures are; non-zero means the harness itself could not run.

It measures as issue 17 did: each server of one worker (the bare apps, the gateway)
pinned to the same one CPU and the load generator to the others (``--no-pin``
lets them roam), and issue 17's goal scenarios in ``--rounds`` interleaved
repetitions with the bare baselines, each goal held on the median of its rounds.

Adding a scenario is one entry in ``SCENARIOS``. Each dialect's scenarios, with
their setup through the operators' CLI (``gateway_cli.py``), are in
``scenarios_<dialect>.py``; portos refresh, whose token is single-use, drives its
own load. ``--scenarios`` picks a subset.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.client
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import median_low
from typing import TYPE_CHECKING

# The dialects' scenarios live beside this file (its directory is on sys.path when it runs as a script).
import scenarios_amity
import scenarios_issp
import scenarios_load
import scenarios_portos
import scenarios_saymon

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
    from types import FrameType

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
ID_PLACEHOLDER = "{id}"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
WRK_TIMEOUT_S = 5
GOAL_MIN_RATIO = 0.10
GOAL_MAX_P99_LOW_MS = 10.0
GOAL_MAX_PEAK_RSS_MB = 200.0
GOAL_MAX_RSS_GROWTH_MB = 20.0
MEMORY_SCENARIO = "zelf-create"
SETTLE_TIMEOUT_S = 30.0
SETTLE_SAMPLE_S = 0.25
SETTLE_IDLE_FRACTION = 0.05  # of one core
# Issue 17's goals, as shares of bare Litestar on granian with one worker, measured in the same run.
GOAL_MANY_VALIDATE_RATIO = 0.45
GOAL_MANY_VALIDATE_P99_MS = 60.0
GOAL_MANY_VALIDATE_P99_LOW_VS_BARE = 2.0
GOAL_CREATE_RATIO = 0.25
GOAL_MIX_RATIO = 0.35
GOAL_PG_VALIDATE_RATIO = 0.15
GOAL_SCENARIOS = ("issp-validate-many", "zelf-create", "mix", "pg-issp-validate-many", "lean-validate-many")
"""The scenarios issue 17's goals hold: measured in interleaved rounds with the bare baselines (``--rounds``)."""
PG_ENV = ("SESSIONGATE_BENCH_PG_URL", "SESSIONGATE_TEST_DATABASE_URL")
ONE_WORKER_TARGETS = frozenset({"bare", "bare-uvicorn", "gateway", "granian"})
"""The servers of one worker, which the goals compare; pinned to one CPU together (``--pin``)."""
PG_POOL_PER_WORKER = 20
"""The PostgreSQL pool of each worker of the gateway and of the lean anchor (``lean_app.POOL_SIZE``): 2 x 2 x 20 = 80
connections at most, under PostgreSQL's default 100 less the superuser's 3."""


class HarnessError(RuntimeError):
    """The harness itself could not run (server did not start, tool broke...)."""


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Target:
    """A running server the harness talks to."""

    name: str
    port: int
    pid: int

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request (for scenario setup hooks).

        Args:
            method: HTTP method.
            path: Request target.
            body: Request body, if any.
            headers: Request headers.

        Returns:
            ``(status, body)`` of the response.
        """
        return await asyncio.to_thread(http_request, self.port, method, path, body, dict(headers or {}))


@dataclass(frozen=True)
class Scenario:
    """One request shape to benchmark.

    ``path``, ``headers`` and ``body`` may contain ``{key}`` placeholders filled
    from the dict the ``setup`` coroutine returns (e.g. a token it created).
    ``body`` may also contain ``{id}``, replaced per request by an identifier
    unique across the whole benchmark run (both load generators honour it; the
    body is a template rather than a Python callable so wrk can build it in Lua).

    Attributes:
        name: Key used by ``--scenarios``.
        label: Human label in the report.
        method: HTTP method.
        path: Request target.
        headers: Request headers.
        body: Body template, or None.
        setup: Coroutine run once against the target before the load.
        min_ratio: Goal for req/s relative to the bare app (None: no goal; only the issues' goals are set).
        max_p99_low_ms: Goal for p99 at low concurrency (None: no goal).
        driver: Drives the load itself instead of a load generator, for requests that cannot be replayed (a
            single-use refresh token): ``driver(target, connections, seconds)`` returns the figures of a load run.
        figures: Run once after the scenario's load, for lines the report prints as they are (query plans...).
        target: The server it runs against: ``gateway`` (SQLite, one worker), ``sqlite-2w`` (SQLite, two workers),
            ``pg`` (PostgreSQL, two workers),
            ``lean`` (the lean asyncpg anchor), ``bare-uvicorn``, ``bare``.
        max_connections: Cap on ``--connections`` for a deliberately slow request: 64 connections queue more argon2id
            logins than the load generator's timeout allows, and measure the queue rather than the server.
    """

    name: str
    label: str
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    setup: Callable[[Target], Awaitable[dict[str, str]]] | None = None
    min_ratio: float | None = None
    max_p99_low_ms: float | None = None
    driver: Callable[[Target, int, float], Awaitable[Mapping[str, float]]] | None = None
    max_connections: int | None = None
    figures: Callable[[Target], Awaitable[list[str]]] | None = None
    target: str = "gateway"


JSON_HEADERS: Mapping[str, str] = {"Content-Type": "application/json"}

BARE = Scenario(name="bare-get", label="bare GET, granian", method="GET", path="/bare", target="bare")
BARE_UVICORN = Scenario(
    name="bare-get-uvicorn", label="bare GET, uvicorn", method="GET", path="/bare", target="bare-uvicorn"
)

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        # portos first: its pages are of the 100 000 sessions it seeds, before the other scenarios add theirs.
        *scenarios_portos.scenarios(Scenario),
        Scenario(
            name="zelf-create",
            label="zelf create",
            method="POST",
            path="/api/sessions",
            headers=JSON_HEADERS,
            body='{"identifier": "{id}"}',
            min_ratio=GOAL_MIN_RATIO,
            max_p99_low_ms=GOAL_MAX_P99_LOW_MS,
        ),
        *scenarios_issp.scenarios(Scenario),
        *scenarios_saymon.scenarios(Scenario),
        *scenarios_amity.scenarios(Scenario),
        *scenarios_load.scenarios(Scenario),
    )
}


def render(template: str, context: Mapping[str, str]) -> str:
    """Fill ``{key}`` placeholders from a setup context, leaving ``{id}`` alone.

    Args:
        template: Text with ``{key}`` placeholders (JSON braces are left as they are).
        context: Values returned by a scenario's setup hook.

    Returns:
        The rendered text.
    """
    for key, value in context.items():
        if key != "id":
            template = template.replace("{" + key + "}", value)
    return template


@dataclass(frozen=True)
class Request:
    """A scenario rendered for one target: what the load generators send."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    variants: str | None = None
    """A JSON list of requests sent in turn instead of this one (``method``, ``path``, ``headers``, ``body``; a body's
    ``{id}`` is unique per request, as in ``Scenario.body``)."""


async def prepare(scenario: Scenario, target: Target) -> Request:
    """Run the scenario's setup hook and render its request.

    Args:
        scenario: Scenario to prepare.
        target: Server it will be run against.

    Returns:
        The concrete request shape.
    """
    context = await scenario.setup(target) if scenario.setup else {}
    headers = tuple((name, render(value, context)) for name, value in scenario.headers.items())
    body = None if scenario.body is None else render(scenario.body, context)
    return Request(scenario.method, render(scenario.path, context), headers, body, context.get("variants"))


# --------------------------------------------------------------------------- results


@dataclass
class LoadResult:
    """Figures of one load run (latencies in ms)."""

    scenario: str
    label: str
    connections: int
    loadgen: str
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    sample_error: str = ""

    @property
    def errors(self) -> int:
        """Non-2xx responses plus socket errors."""
        return self.non_2xx + self.socket_errors


@dataclass
class RssSample:
    """Memory of the serving process(es) after a number of creates."""

    creates: int
    rss_mb: float
    hwm_mb: float
    pid: int


@dataclass
class Round:
    """One interleaved repetition of issue 17's goal rows: the bare baselines, then each goal scenario, back to back,
    so that every share compares runs minutes apart at most."""

    bare: LoadResult
    bare_low: LoadResult
    bare_uvicorn: LoadResult
    main: dict[str, LoadResult] = field(default_factory=dict)
    low: dict[str, LoadResult] = field(default_factory=dict)

    def share(self, scenario: str) -> float | None:
        """The scenario's req/s as a share of bare granian's in this round (None: not measured)."""
        result = self.main.get(scenario)
        return result.rps / self.bare.rps if result and self.bare.rps else None


@dataclass
class Report:
    """Everything the harness measured.

    With rounds, ``bare``, ``bare_low``, ``bare_uvicorn`` and the goal scenarios' rows of ``main`` and ``low`` are
    the runs of median req/s among the rounds'; the goals are held on the rounds themselves.
    """

    settings: dict[str, object] = field(default_factory=dict)
    bare: LoadResult | None = None
    bare_low: LoadResult | None = None
    bare_uvicorn: LoadResult | None = None
    main: list[LoadResult] = field(default_factory=list)
    low: list[LoadResult] = field(default_factory=list)
    rounds: list[Round] = field(default_factory=list)
    memory: list[RssSample] = field(default_factory=list)
    memory_errors: int = 0
    memory_rps: float = 0.0
    memory_target: int = 0
    peak_before_mb: float = 0.0
    peak_reset: bool = False
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_request(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Send one blocking HTTP request to 127.0.0.1.

    Args:
        port: Server port.
        method: HTTP method.
        path: Request target.
        body: Request body, if any.
        headers: Request headers.

    Returns:
        ``(status, body)`` of the response.
    """
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class Server:
    """A server process started by the harness, in its own process group."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines the server printed."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_server(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    port: int,
    workdir: Path,
    cores: frozenset[int] | None = None,
) -> Server:
    """Start a server process in a new session, output to a log file.

    Args:
        name: Label for messages.
        argv: Command line.
        env: Environment.
        port: Port it will listen on.
        workdir: Directory for its log file and working directory.
        cores: CPUs it and every process and thread it starts may run on (None: the harness's own).

    Returns:
        The started server.
    """
    log_path = workdir / f"{name}.log"
    # Set in the child before exec, so that no thread or worker of the server ever runs elsewhere.
    pin = None if cores is None else functools.partial(os.sched_setaffinity, 0, cores)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=workdir,
            start_new_session=True,
            preexec_fn=pin,  # noqa: PLW1509 -- the harness starts its servers from one thread
        )
    where = "" if cores is None else f", on CPU {','.join(map(str, sorted(cores)))}"
    progress(f"started {name} (pid {process.pid}) on {HOST}:{port}{where}: {shlex.join(argv)}")
    return Server(name, port, process, log_path)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_server(server: Server) -> None:
    """Stop a server and everything in its process group: TERM, then KILL.

    Args:
        server: Server started by :func:`start_server` (its pid is its group id).
    """
    pgid = server.process.pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        server.process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        progress(f"{server.name} ignored SIGTERM; killing it")
    _signal_group(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(STOP_TIMEOUT_S)


def wait_ready(server: Server, path: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``GET path`` until it answers 200.

    Args:
        server: Server to poll.
        path: Readiness path.
        timeout_s: Give up after this long.

    Raises:
        HarnessError: The server exited or did not become ready in time.
    """
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise HarnessError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            status, _ = http_request(server.port, "GET", path)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return
            last = f"HTTP {status}"
        time.sleep(0.2)
    raise HarnessError(f"{server.name} not ready after {timeout_s:.0f} s ({last}):\n{server.log_tail()}")


def server_implementations() -> tuple[str, str]:
    """uvicorn's loop and HTTP implementation as chosen for both servers."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def gateway_command(port: int, target_cmd: str | None, workers: int = 1, server: str = "uvicorn") -> list[str]:
    """Command line of the gateway: the console script next to this Python, else ``-m``.

    Args:
        port: Port to serve on.
        target_cmd: Self-test override with ``{host}``/``{port}``/``{python}`` placeholders.
        workers: Server processes.
        server: ``serve --server``.

    Returns:
        The argv to start.
    """
    if target_cmd:
        filled = target_cmd.format(host=HOST, port=port, python=shlex.quote(sys.executable), bench=BENCH_DIR)
        return shlex.split(filled)
    serve = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--server", server]
    script = Path(sys.executable).parent / "sessiongate"
    if script.exists():
        return [str(script), *serve]
    return [sys.executable, "-m", "sessiongate", *serve]


def gateway_env(workdir: Path, extra: Sequence[str]) -> dict[str, str]:
    """Environment of the gateway: production, all dialects, a temp SQLite file, no budget of creates per address.

    Args:
        workdir: Temporary directory holding the database.
        extra: ``KEY=VALUE`` overrides from ``--gateway-env``.

    Returns:
        The environment.
    """
    env = {k: v for k, v in os.environ.items() if k not in PG_ENV}  # the harness's, not settings of the gateway
    env.update(
        SESSIONGATE_DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'bench.db'}",
        SESSIONGATE_DIALECTS="*",
        SESSIONGATE_ENVIRONMENT="production",
        # The load generator creates from one address, thousands a second: with the per-address budget of creates on,
        # the run would measure 429s. Off, it measures the creates themselves (the budget's own cost is one dict
        # lookup, and the hook that takes it runs either way).
        SESSIONGATE_CREATE_RATE_LIMIT="0",
        PYTHONUNBUFFERED="1",
    )
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep:
            raise HarnessError(f"--gateway-env wants KEY=VALUE, got {item!r}")
        env[key] = value
    return env


# --------------------------------------------------------------------------- memory


def _parent_pids() -> dict[int, int]:
    """Map pid -> parent pid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """Return ``root`` and all its descendants.

    Args:
        root: Process id.

    Returns:
        Pids, root first.
    """
    children: dict[int, list[int]] = {}
    for pid, ppid in _parent_pids().items():
        children.setdefault(ppid, []).append(pid)
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def read_memory_kb(pid: int) -> tuple[int, int] | None:
    """Return ``(VmRSS, VmHWM)`` in kB of a process, or None if it is gone."""
    values: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def reset_peak(root: int) -> bool:
    """Reset the peak RSS (VmHWM) of a process tree to its current RSS; whether the kernel allowed it."""
    try:
        for pid in process_tree(root):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def sample_memory(root: int, creates: int) -> RssSample:
    """Sample the largest RSS and peak RSS over a process tree.

    Args:
        root: Pid of the process the harness started.
        creates: Creates completed so far (label of the sample).

    Returns:
        The sample; ``pid`` is the process with the largest RSS.

    Raises:
        HarnessError: No process of the tree could be read.
    """
    readings = {pid: mem for pid in process_tree(root) if (mem := read_memory_kb(pid)) is not None}
    if not readings:
        raise HarnessError(f"cannot read memory of pid {root} or its children")
    pid = max(readings, key=lambda p: readings[p][0])
    rss = readings[pid][0]
    hwm = max(mem[1] for mem in readings.values())
    return RssSample(creates=creates, rss_mb=round(rss / 1024, 1), hwm_mb=round(hwm / 1024, 1), pid=pid)


# --------------------------------------------------------------------------- load generators


def lua_string(text: str) -> str:
    """Quote text as a Lua string literal (bytes outside printable ASCII as ``\\ddd``)."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        if char in '\\"':
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def wrk_script(request: Request, id_prefix: str) -> str:
    """Lua script for wrk: fixed request, or a body with a unique ``{id}`` per request.

    Each wrk thread gets a number in ``setup``; ids are ``<prefix><thread>-<counter>``.

    Args:
        request: Rendered request.
        id_prefix: Prefix making ids unique across runs.

    Returns:
        Lua source.
    """
    headers = "".join(f"  [{lua_string(name)}] = {lua_string(value)},\n" for name, value in request.headers)
    lines = [
        "-- generated by bench/run.py",
        f"local method = {lua_string(request.method)}",
        f"local path = {lua_string(request.path)}",
        "local headers = {\n" + headers + "}",
        "local next_tid = 0",
        "function setup(thread)",
        '  thread:set("tid", next_tid)',
        "  next_tid = next_tid + 1",
        "end",
    ]
    if request.body is None or ID_PLACEHOLDER not in request.body:
        body = "nil" if request.body is None else lua_string(request.body)
        lines += [
            "local req",
            f"function init(args) req = wrk.format(method, path, headers, {body}) end",
            "function request() return req end",
        ]
    else:
        parts = ", ".join(lua_string(part) for part in request.body.split(ID_PLACEHOLDER))
        lines += [
            f"local parts = {{{parts}}}",
            f"local prefix = {lua_string(id_prefix)}",
            "local counter = 0",
            "function request()",
            "  counter = counter + 1",
            '  local id = prefix .. tid .. "-" .. counter',
            "  return wrk.format(method, path, headers, table.concat(parts, id))",
            "end",
        ]
    return "\n".join(lines) + "\n"


# The variants file wrk_variants_script reads: records ended by NUL, fields by \x01, header name and value by \x02,
# headers by \x03; none of those bytes can be in an HTTP request head, and the bodies here are JSON text.
_RECORD, _FIELD, _NAME, _HEADER = "\0", "\x01", "\x02", "\x03"


def wrk_variants(variants: str) -> bytes:
    """A JSON list of requests (``Request.variants``) as the file :func:`wrk_variants_script` reads.

    Raises:
        HarnessError: a request holds one of the file's separators.
    """
    records = []
    for item in json.loads(variants):
        headers = "".join(f"{name}{_NAME}{value}{_HEADER}" for name, value in item["headers"])
        body = item.get("body")
        fields = [item["method"], item["path"], headers, "0" if body is None else "1", body or ""]
        record = _FIELD.join(fields)
        if any(sep in field for field in fields for sep in (_RECORD, _FIELD)) or record.count(_NAME) != len(
            item["headers"]
        ):
            raise HarnessError(f"a request of the variants holds a separator byte: {item['path']}")
        records.append(record + _RECORD)
    return "".join(records).encode()


def wrk_variants_script(data: Path, id_prefix: str) -> str:
    """Lua script for wrk: the requests of ``data`` (:func:`wrk_variants`) in turn, each built once at start.

    Every wrk thread starts at its own point of the list; a body with ``{id}`` is built per request, with
    ``<prefix><thread>-<counter>`` in it, as :func:`wrk_script` does.
    """
    return (
        "\n".join(
            [
                "-- generated by bench/run.py",
                f"local file = {lua_string(str(data))}",
                f"local prefix = {lua_string(id_prefix)}",
                "local ready, templates, count, at, counter = {}, {}, 0, 0, 0",
                r'local fields = "^([^\1]*)\1([^\1]*)\1([^\1]*)\1([01])\1(.*)$"',
                "local next_tid = 0",
                "function setup(thread)",
                '  thread:set("tid", next_tid)',
                "  next_tid = next_tid + 1",
                "end",
                "function init(args)",
                '  local f = assert(io.open(file, "rb"))',
                '  local text = f:read("*a")',
                "  f:close()",
                '  for record in string.gmatch(text, "([^%z]*)%z") do',
                r"    local method, path, head, has_body, body = record:match(fields)",
                "    local headers = {}",
                r'    for name, value in head:gmatch("([^\2\3]*)\2([^\3]*)\3") do headers[name] = value end',
                "    count = count + 1",
                '    if has_body == "1" and body:find("{id}", 1, true) then',
                "      local parts, from = {}, 1",
                "      while true do",
                '        local s, e = body:find("{id}", from, true)',
                "        if not s then break end",
                "        parts[#parts + 1] = body:sub(from, s - 1)",
                "        from = e + 1",
                "      end",
                "      parts[#parts + 1] = body:sub(from)",
                "      templates[count] = {method, path, headers, parts}",
                "    else",
                '      ready[count] = wrk.format(method, path, headers, has_body == "1" and body or nil)',
                "    end",
                "  end",
                "  at = (tid * 7919) % count",
                "end",
                "function request()",
                "  at = at % count + 1",
                "  local built = ready[at]",
                "  if built then return built end",
                "  local t = templates[at]",
                "  counter = counter + 1",
                '  return wrk.format(t[1], t[2], t[3], table.concat(t[4], prefix .. tid .. "-" .. counter))',
                "end",
            ]
        )
        + "\n"
    )


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE_RE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+|nan|inf)", re.MULTILINE)
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> dict[str, float]:
    """Extract figures from wrk's ``--latency`` output.

    Args:
        output: wrk's stdout.

    Returns:
        ``requests``, ``rps``, ``p50_ms``, ``p99_ms``, ``non_2xx``, ``socket_errors``.

    Raises:
        HarnessError: The output has no request count or throughput line.
    """
    requests, rps = _REQUESTS_RE.search(output), _RPS_RE.search(output)
    if requests is None or rps is None:
        raise HarnessError(f"cannot parse wrk output:\n{output}")
    latency = {int(pct): float(value) * _UNIT_MS[unit] for pct, value, unit in _PERCENTILE_RE.findall(output)}
    non_2xx = _NON2XX_RE.search(output)
    sockets = _SOCKET_RE.search(output)
    rps_value = float(rps.group(1))
    return {
        "requests": float(requests.group(1)),
        "rps": 0.0 if rps_value != rps_value or rps_value == float("inf") else rps_value,
        "p50_ms": latency.get(50, 0.0),
        "p99_ms": latency.get(99, 0.0),
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
        "socket_errors": float(sum(int(n) for n in sockets.groups())) if sockets else 0.0,
    }


@dataclass(frozen=True)
class LoadRun:
    """One invocation of a load generator."""

    target: Target
    request: Request
    connections: int
    duration_s: float
    requests: int | None = None
    id_prefix: str = ""


def run_wrk(run: LoadRun, workdir: Path, threads: int) -> dict[str, float]:
    """Drive the target with wrk for ``run.duration_s``.

    Args:
        run: What to send and how hard.
        workdir: Directory for the Lua script.
        threads: wrk threads (capped at the connection count).

    Returns:
        Figures parsed from wrk's output.

    Raises:
        HarnessError: wrk failed or timed out.
    """
    script = workdir / f"wrk-{run.id_prefix or 'static'}.lua"
    if run.request.variants is None:
        script.write_text(wrk_script(run.request, run.id_prefix))
    else:
        data = workdir / f"wrk-{run.id_prefix or 'static'}.requests"
        data.write_bytes(wrk_variants(run.request.variants))
        script.write_text(wrk_variants_script(data, run.id_prefix))
    duration = max(1, round(run.duration_s))
    argv = [
        "wrk",
        f"-t{min(threads, run.connections)}",
        f"-c{run.connections}",
        f"-d{duration}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{run.target.port}{run.request.path}",
    ]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"wrk did not finish: {shlex.join(argv)}") from exc
    if done.returncode != 0:
        raise HarnessError(f"wrk exited {done.returncode}: {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def run_python_loadgen(run: LoadRun) -> dict[str, float | str]:
    """Drive the target with ``bench/loadgen.py`` in a subprocess.

    Args:
        run: What to send, how hard, and for how long or how many requests.

    Returns:
        The JSON object loadgen printed.

    Raises:
        HarnessError: loadgen failed or timed out.
    """
    request = run.request
    argv = [sys.executable, str(BENCH_DIR / "loadgen.py"), "--host", HOST, "--port", str(run.target.port)]
    argv += ["--method", request.method, "--path", request.path, "--connections", str(run.connections)]
    argv += ["--id-prefix", run.id_prefix]
    for name, value in request.headers:
        argv += ["--header", f"{name}: {value}"]
    if request.body is not None:
        argv += ["--body-template", request.body]
    if request.variants is not None:
        requests_file = Path(tempfile.gettempdir()) / f"sg-bench-{os.getpid()}-{run.id_prefix}requests.json"
        requests_file.write_text(request.variants)
        argv += ["--requests-file", str(requests_file)]
    bound = run.duration_s + 60
    argv += ["--max-seconds", str(bound), "--duration", str(run.duration_s)]
    if run.requests is not None:
        argv += ["--requests", str(run.requests)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=bound + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HarnessError("python loadgen did not finish") from exc
    finally:
        if request.variants is not None:
            requests_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise HarnessError(f"python loadgen exited {done.returncode}: {done.stderr}")
    result: dict[str, float | str] = json.loads(done.stdout)
    return result


def drive(run: LoadRun, scenario: Scenario, loadgen: str, workdir: Path, wrk_threads: int) -> LoadResult:
    """Run one load and normalise the figures of either generator.

    Args:
        run: What to send and how hard.
        scenario: Scenario being measured (for labels).
        loadgen: ``wrk`` or ``python``.
        workdir: Scratch directory.
        wrk_threads: wrk threads.

    Returns:
        The figures.
    """
    raw: Mapping[str, float | str]
    raw = run_wrk(run, workdir, wrk_threads) if loadgen == "wrk" else run_python_loadgen(run)
    return load_result(scenario, run.connections, loadgen, raw)


def load_result(scenario: Scenario, connections: int, loadgen: str, raw: Mapping[str, float | str]) -> LoadResult:
    """Normalise the figures a load generator or a scenario's driver returned."""
    return LoadResult(
        scenario=scenario.name,
        label=scenario.label,
        connections=connections,
        loadgen=loadgen,
        requests=int(raw["requests"]),
        rps=float(raw["rps"]),
        p50_ms=float(raw["p50_ms"]),
        p99_ms=float(raw["p99_ms"]),
        non_2xx=int(raw["non_2xx"]),
        socket_errors=int(raw["socket_errors"]),
        sample_error=str(raw.get("sample_error", "")),
    )


# --------------------------------------------------------------------------- phases


@dataclass(frozen=True)
class Placement:
    """Which CPUs the servers and the load generator run on.

    Issue 17's goals are shares of bare Litestar with one worker, measured (as the issue measured them) with each
    server pinned to one core. Unpinned, a server whose HTTP runs on threads of its own (granian's are Rust) takes
    a second core whenever the load generator leaves one idle, so "one worker" would mean one to two cores,
    varying from run to run. Pinned, every server of one worker, the bare ones and the gateway alike, gets the
    same one CPU, the load generator (and this harness) the others, and servers of two workers all of them.
    """

    server: frozenset[int] | None = None
    loadgen: frozenset[int] | None = None
    every: frozenset[int] | None = None

    @classmethod
    def choose(cls, pin: bool) -> Placement:
        """Split this process's CPUs: the last for one-worker servers, the rest for the load generator.

        Args:
            pin: ``--pin``; without it, or with fewer than two CPUs, nothing is pinned.

        Returns:
            The placement.
        """
        cores = sorted(os.sched_getaffinity(0))
        if not pin or len(cores) < 2:
            return cls()
        return cls(server=frozenset(cores[-1:]), loadgen=frozenset(cores[:-1]), every=frozenset(cores))

    def cores_of(self, target: str) -> frozenset[int] | None:
        """CPUs for a server (None: unpinned)."""
        return self.server if target in ONE_WORKER_TARGETS else self.every

    def describe(self) -> str:
        """One line for the report."""
        if self.server is None or self.loadgen is None:
            return "unpinned"
        return (
            f"one-worker servers on CPU {','.join(map(str, sorted(self.server)))},"
            f" load generator on {','.join(map(str, sorted(self.loadgen)))}, two-worker servers on all"
        )


@dataclass
class Bench:
    """Settings and state shared by the benchmark phases."""

    args: argparse.Namespace
    loadgen: str
    workdir: Path
    placement: Placement = field(default_factory=Placement)
    report: Report = field(default_factory=Report)
    _runs: int = 0

    def prefix(self, label: str) -> str:
        """Return an identifier prefix unique to one load run."""
        self._runs += 1
        return f"bench-{label}-{secrets.token_hex(3)}-{self._runs}-"

    def measure(self, scenario: Scenario, target: Target, request: Request, connections: int) -> LoadResult:
        """Warm up, then measure one scenario at one concurrency."""
        if self.args.warmup > 0:
            progress(f"{scenario.label} @{connections}: warm-up {self.args.warmup:g} s")
            warm = LoadRun(target, request, connections, self.args.warmup, id_prefix=self.prefix("warm"))
            self._drive(warm, scenario)
            settle(target)
        loadgen = "its own driver" if scenario.driver else self.loadgen
        progress(f"{scenario.label} @{connections}: {self.args.duration:g} s with {loadgen}")
        run = LoadRun(target, request, connections, self.args.duration, id_prefix=self.prefix(scenario.name))
        result = self._drive(run, scenario)
        settle(target)
        if scenario.driver:
            return result  # its requests cannot be replayed by a probe
        if result.errors and not result.sample_error:
            result.sample_error = probe(target, request, self.prefix("probe"))
        if result.sample_error:
            progress(f"  first error: {result.sample_error}")
        return result

    def _drive(self, run: LoadRun, scenario: Scenario) -> LoadResult:
        if scenario.driver is None:
            return drive(run, scenario, self.loadgen, self.workdir, self.args.wrk_threads)
        raw = asyncio.run(scenario.driver(run.target, run.connections, run.duration_s))
        return load_result(scenario, run.connections, "driver", raw)


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU time of processes, in seconds (the ones that are gone count 0)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def settle(target: Target) -> None:
    """Wait until the server is idle: a load generator stops sending, but requests it left queued (64 slow logins
    take seconds) would still be served during the next run and spoil its figures.
    """
    pids = process_tree(target.pid)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last = cpu_seconds(pids)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_SAMPLE_S)
        now = cpu_seconds(pids)
        if now - last < SETTLE_IDLE_FRACTION * SETTLE_SAMPLE_S:
            return
        last = now
    progress(f"{target.name} still busy {SETTLE_TIMEOUT_S:g} s after the run; going on")


def probe(target: Target, request: Request, id_prefix: str) -> str:
    """Send one request of the scenario and describe its answer (wrk shows no error bodies).

    Args:
        target: Server.
        request: Rendered request.
        id_prefix: Identifier for ``{id}``.

    Returns:
        ``HTTP <status>: <body>`` of an error, ``HTTP <status>`` alone of a success (its body may be a session
        secret), or the socket error.
    """
    body = None if request.body is None else request.body.replace(ID_PLACEHOLDER, f"{id_prefix}0").encode()
    try:
        status, answer = http_request(target.port, request.method, request.path, body, dict(request.headers))
    except OSError as exc:
        return f"probe failed: {type(exc).__name__}: {exc}"
    if status < 400:
        return f"HTTP {status} (probe after the run: the errors were not answers, e.g. timeouts)"
    return f"HTTP {status}: {answer[:300].decode('utf-8', 'replace')} (probe after the run)"


def bench_scenarios(bench: Bench, targets: Mapping[str, Target], scenarios: Sequence[Scenario]) -> None:
    """Measure every scenario at high and low concurrency: issue 17's goal scenarios in interleaved rounds with the
    bare baselines (``--rounds``), the others once, in their order.

    Args:
        bench: Shared settings and report.
        targets: The running servers, by :attr:`Scenario.target`.
        scenarios: Gateway scenarios to run.
    """
    args = bench.args
    figures_run = set()
    in_rounds: list[tuple[Scenario, Target, Request]] = []
    for scenario in scenarios:
        target = targets.get(scenario.target)
        if target is None:
            progress(f"{scenario.label}: skipped, no {scenario.target} server (no PostgreSQL: --pg-url)")
            continue
        # Set up in the scenarios' order, whether measured now or in the rounds: portos counts the sessions there are.
        request = asyncio.run(prepare(scenario, target))
        if scenario.name in GOAL_SCENARIOS:
            in_rounds.append((scenario, target, request))
            continue
        connections = min(args.connections, scenario.max_connections or args.connections)
        bench.report.main.append(bench.measure(scenario, target, request, connections))
        bench.report.low.append(bench.measure(scenario, target, request, args.low_connections))
        if scenario.figures and scenario.figures not in figures_run:
            figures_run.add(scenario.figures)
            progress(f"{scenario.label}: figures")
            bench.report.notes += asyncio.run(scenario.figures(target))
    bare_request = asyncio.run(prepare(BARE, targets["bare"]))
    for number in range(1, args.rounds + 1):
        progress(f"round {number} of {args.rounds}: the bare baselines and issue 17's goal scenarios")
        one = Round(
            bare=bench.measure(BARE, targets["bare"], bare_request, args.connections),
            bare_low=bench.measure(BARE, targets["bare"], bare_request, args.low_connections),
            bare_uvicorn=bench.measure(BARE_UVICORN, targets["bare-uvicorn"], bare_request, args.connections),
        )
        for scenario, target, request in in_rounds:
            connections = min(args.connections, scenario.max_connections or args.connections)
            one.main[scenario.name] = bench.measure(scenario, target, request, connections)
            one.low[scenario.name] = bench.measure(scenario, target, request, args.low_connections)
        bench.report.rounds.append(one)
    summarise_rounds(bench.report)


def median_run(runs: Sequence[LoadResult]) -> LoadResult:
    """The run of median req/s (the lower middle one of an even number, as the goals' :func:`median_low`)."""
    middle = median_low([run.rps for run in runs])
    return next(run for run in runs if run.rps == middle)


def summarise_rounds(report: Report) -> None:
    """Put the rounds' median runs in the report's rows, the goal scenarios in the scenarios' order."""
    rounds = report.rounds
    report.bare = median_run([one.bare for one in rounds])
    report.bare_low = median_run([one.bare_low for one in rounds])
    report.bare_uvicorn = median_run([one.bare_uvicorn for one in rounds])
    for name in rounds[0].main:
        report.main.append(median_run([one.main[name] for one in rounds]))
        report.low.append(median_run([one.low[name] for one in rounds]))
    order = list(SCENARIOS)
    report.main.sort(key=lambda run: order.index(run.scenario))
    report.low.sort(key=lambda run: order.index(run.scenario))


def runs_of(report: Report, scenario: str, *, low: bool = False) -> list[LoadResult]:
    """Every run of a scenario at one concurrency: one per round for a goal scenario, else its one run."""
    if any(scenario in one.main for one in report.rounds):
        return [(one.low if low else one.main)[scenario] for one in report.rounds]
    return [run for run in (report.low if low else report.main) if run.scenario == scenario]


def bench_memory(bench: Bench, gateway: Target) -> None:
    """Send exactly ``--creates`` creates in batches, sampling RSS after each batch.

    Always uses the Python load generator, which can stop at an exact count.
    Stops early (and says so) when ``--memory-seconds`` runs out.

    Args:
        bench: Shared settings and report.
        gateway: The gateway.
    """
    scenario = SCENARIOS[MEMORY_SCENARIO]
    request = asyncio.run(prepare(scenario, gateway))
    report = bench.report
    report.memory_target = bench.args.creates
    # The goal is about what creates leave behind; the scenarios before may have raised the peak transiently
    # (an argon2id login holds 64 MiB while it hashes). Keep that figure, then restart the peak from here.
    report.peak_before_mb = sample_memory(gateway.pid, 0).hwm_mb
    report.peak_reset = reset_peak(gateway.pid)
    report.memory.append(sample_memory(gateway.pid, 0))
    done, started, errors = 0, time.perf_counter(), 0
    deadline = time.monotonic() + bench.args.memory_seconds
    while done < bench.args.creates and (remaining_s := deadline - time.monotonic()) > 0:
        batch = min(bench.args.sample_every, bench.args.creates - done)
        run = LoadRun(gateway, request, bench.args.connections, remaining_s, batch, bench.prefix("mem"))
        result = drive(run, scenario, "python", bench.workdir, bench.args.wrk_threads)
        done += result.requests + result.socket_errors
        errors += result.errors
        sample = sample_memory(gateway.pid, done)
        report.memory.append(sample)
        progress(f"memory: {done} creates, RSS {sample.rss_mb} MB, peak {sample.hwm_mb} MB, errors {errors}")
    if done < bench.args.creates:
        progress(f"memory: stopped after {done} creates: --memory-seconds {bench.args.memory_seconds:g} ran out")
    report.memory_errors = errors
    report.memory_rps = round(done / (time.perf_counter() - started), 1)


# --------------------------------------------------------------------------- report


def progress(message: str) -> None:
    """Print a progress line on stderr."""
    print(f"» {message}", file=sys.stderr, flush=True)


def verdict(ok: bool) -> str:
    """Return ``PASS`` or ``FAIL``."""
    return "PASS" if ok else "FAIL"


def _row(result: LoadResult, bare_rps: float | None) -> str:
    ratio = f"{100 * result.rps / bare_rps:6.1f} %" if bare_rps else "       —"
    return (
        f"  {result.label:<42} {result.connections:>5} {result.rps:>10.1f} {result.p50_ms:>8.2f} "
        f"{result.p99_ms:>8.2f} {result.errors:>7} {ratio}"
    )


def print_load_table(title: str, results: Sequence[LoadResult], bare_rps: float | None) -> None:
    """Print one table of load results.

    Args:
        title: Heading.
        results: Rows.
        bare_rps: Baseline throughput for the ratio column (None: no ratio).
    """
    print(f"\n{title}")
    print(f"  {'scenario':<42} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  vs bare")
    for result in results:
        print(_row(result, bare_rps))


def print_rounds(report: Report) -> None:
    """Print each round's req/s of the bare baselines and the goal scenarios, with each scenario's share."""
    rounds = report.rounds
    if len(rounds) < 2:
        return
    print(f"\nrounds @{report.settings['connections']} connections: req/s (share of the round's bare granian)")
    print(f"  {'scenario':<42} " + " ".join(f"{'round ' + str(n):>18}" for n in range(1, len(rounds) + 1)))
    print(f"  {BARE.label:<42} " + " ".join(f"{one.bare.rps:>18.0f}" for one in rounds))
    print(f"  {BARE_UVICORN.label:<42} " + " ".join(f"{one.bare_uvicorn.rps:>18.0f}" for one in rounds))
    for name in rounds[0].main:
        cells = [f"{one.main[name].rps:.0f} ({one.share(name) or 0:.2f}x)" for one in rounds]
        print(f"  {SCENARIOS[name].label:<42} " + " ".join(f"{cell:>18}" for cell in cells))


def print_memory(report: Report) -> None:
    """Print the RSS samples of the memory run."""
    if not report.memory:
        return
    print(f"\nmemory: {report.memory[-1].creates} zelf creates ({report.memory_rps:.0f} req/s, python loadgen)")
    if report.peak_reset:
        print(f"  peak before the creates, reset when they began: {report.peak_before_mb:.1f} MB")
    else:
        print("  the kernel refused to reset the peak: it includes the scenarios before the creates")
    print(f"  {'creates':>8} {'RSS MB':>8} {'peak MB':>8}  pid")
    for sample in report.memory:
        print(f"  {sample.creates:>8} {sample.rss_mb:>8.1f} {sample.hwm_mb:>8.1f}  {sample.pid}")


def goal_lines(report: Report) -> Iterator[tuple[str, str, str]]:
    """Yield ``(verdict, goal, figure)`` for every goal that was measured.

    Args:
        report: Measurements.
    """
    bare_rps = report.bare.rps if report.bare else 0.0
    low = {result.scenario: result for result in report.low}
    for result in report.main:
        scenario = SCENARIOS[result.scenario]
        if scenario.min_ratio is not None and bare_rps:
            ratio = result.rps / bare_rps
            goal = f"{result.label} req/s >= {100 * scenario.min_ratio:.0f} % of bare"
            yield verdict(ratio >= scenario.min_ratio), goal, f"{100 * ratio:.1f} %"
        low_result = low.get(result.scenario)
        # Every round's runs, not only the median ones.
        errors = sum(run.errors for run in runs_of(report, result.scenario))
        low_errors = sum(run.errors for run in runs_of(report, result.scenario, low=True))
        figure = f"{errors} @{result.connections}" + (f", {low_errors} @{low_result.connections}" if low_result else "")
        yield verdict(errors + low_errors == 0), f"{result.label} errors == 0", figure
        if low_result and scenario.max_p99_low_ms is not None:
            goal = f"{result.label} p99 @{low_result.connections} conns < {scenario.max_p99_low_ms:g} ms"
            yield verdict(low_result.p99_ms < scenario.max_p99_low_ms), goal, f"{low_result.p99_ms:.2f} ms"
    yield from _memory_goals(report)


def issue17_goals(report: Report) -> Iterator[tuple[str, str, str]]:
    """Yield ``(verdict, goal, figure)`` for issue 17's goals; a goal whose scenario did not run is ``FAIL``.

    Each goal is held on the median of its rounds: of the shares of bare granian's req/s in the same round, of the
    p99s, of the p99s at low load over bare's in the same round, of the PostgreSQL validate over the lean anchor.

    Args:
        report: Measurements.
    """
    rounds = report.rounds

    def held(values: list[float], goal: str, ok: Callable[[float], bool], unit: str) -> tuple[str, str, str]:
        if not values or len(values) < len(rounds):
            return verdict(False), goal, "not measured"
        middle = median_low(values)
        each = ", ".join(f"{value:.2f}" for value in values)
        figure = f"{middle:.2f}{unit}" + (f" (rounds: {each})" if len(values) > 1 else "")
        return verdict(ok(middle)), goal, figure

    def shares(name: str) -> list[float]:
        return [share for one in rounds if (share := one.share(name)) is not None]

    def share(name: str, goal: float, label: str) -> tuple[str, str, str]:
        return held(shares(name), f"{label} >= {goal:.2f}x bare", lambda value: value >= goal, "x")

    many = "issp-validate-many"
    yield share(many, GOAL_MANY_VALIDATE_RATIO, "issp validate, 10,000 sessions")
    p99s = [one.main[many].p99_ms for one in rounds if many in one.main]
    connections = report.settings.get("connections", "-")
    goal = f"issp validate, 10,000 sessions: p99 @{connections} <= {GOAL_MANY_VALIDATE_P99_MS:g} ms"
    yield held(p99s, goal, lambda value: value <= GOAL_MANY_VALIDATE_P99_MS, " ms")
    low_ratios = [
        one.low[many].p99_ms / one.bare_low.p99_ms for one in rounds if many in one.low and one.bare_low.p99_ms
    ]
    goal = f"issp validate, 10,000 sessions: p99 at low load <= {GOAL_MANY_VALIDATE_P99_LOW_VS_BARE:g}x bare's"
    yield held(low_ratios, goal, lambda value: value <= GOAL_MANY_VALIDATE_P99_LOW_VS_BARE, "x")
    yield share("zelf-create", GOAL_CREATE_RATIO, "zelf create")
    yield share("mix", GOAL_MIX_RATIO, "mix: 90 % validates, 10 % creates")
    yield share("pg-issp-validate-many", GOAL_PG_VALIDATE_RATIO, "PG 2 workers: issp validate")
    pg, lean = "pg-issp-validate-many", "lean-validate-many"
    over_lean = [
        one.main[pg].rps / one.main[lean].rps
        for one in rounds
        if pg in one.main and lean in one.main and one.main[lean].rps
    ]
    yield held(
        over_lean, "PG 2 workers: issp validate >= lean asyncpg anchor", lambda value: value >= 1.0, "x the anchor"
    )
    gateway = [  # every run of every scenario, every round's too; not the anchor's
        run
        for name in {run.scenario for run in [*report.main, *report.low]}
        if SCENARIOS[name].target != "lean"
        for low in (False, True)
        for run in runs_of(report, name, low=low)
    ]
    errors = sum(run.errors for run in gateway)
    yield verdict(errors == 0), "no error in any scenario of the gateway", str(errors)


def _memory_goals(report: Report) -> Iterator[tuple[str, str, str]]:
    if len(report.memory) < 2:
        return
    peak = max(sample.hwm_mb for sample in report.memory)
    goal = f"peak RSS during the creates < {GOAL_MAX_PEAK_RSS_MB:g} MB"
    yield verdict(peak < GOAL_MAX_PEAK_RSS_MB), goal, f"{peak:.1f} MB"
    first, last = report.memory[1], report.memory[-1]
    if len(report.memory) > 2:
        growth = last.rss_mb - first.rss_mb
        goal = f"RSS flat: growth {first.creates}->{last.creates} creates < {GOAL_MAX_RSS_GROWTH_MB:g} MB"
        yield verdict(growth < GOAL_MAX_RSS_GROWTH_MB), goal, f"{growth:+.1f} MB"
    yield (
        verdict(last.creates >= report.memory_target),
        "memory run completed",
        f"{last.creates} of {report.memory_target}",
    )
    yield verdict(report.memory_errors == 0), "memory run errors == 0", str(report.memory_errors)


def print_report(report: Report) -> None:
    """Print all tables and the goals.

    Args:
        report: Measurements.
    """
    settings = report.settings
    print(
        f"\nsessiongate benchmark: loadgen={settings['loadgen']}, {settings['duration']} s per run"
        f" (+{settings['warmup']} s warm-up), gateway on uvicorn {settings['server']}, access log off;"
        f" 'vs bare' is the share of bare Litestar on granian, 1 worker, in this run; {settings['placement']}"
    )
    bare_rps = report.bare.rps if report.bare else None
    main = [r for r in (report.bare, report.bare_uvicorn) if r is not None] + report.main
    print_load_table(f"throughput @{settings['connections']} connections (or a scenario's cap)", main, bare_rps)
    low = ([report.bare_low] if report.bare_low else []) + report.low
    if low:
        low_rps = report.bare_low.rps if report.bare_low else None
        print_load_table(f"tail latency @{settings['low_connections']} connections", low, low_rps)
    if report.notes:
        print()
        for line in report.notes:
            print(line)
    print_rounds(report)
    print_memory(report)
    print("\ngoals")
    for word, goal, figure in goal_lines(report):
        print(f"  {word}  {goal:<64} {figure}")
    print("\nissue 17 goals (shares of bare Litestar on granian, 1 worker, this run)")
    for word, goal, figure in issue17_goals(report):
        print(f"  {word}  {goal:<72} {figure}")
    print("\nissue 15 goal (the gateway's own API beside issp validate, this run)")
    for word, goal, figure in issue15_goals(report):
        print(f"  {word}  {goal:<72} {figure}")


def issue15_goals(report: Report) -> Iterator[tuple[str, str, str]]:
    """Forward auth on a kept session at least as fast as issp validate, at both loads (introspection: figures only)."""
    for rows, where in ((report.main, "throughput"), (report.low, "low load")):
        found = {r.scenario: r for r in rows}
        validate, forward = found.get("issp-validate"), found.get("forward-auth")
        goal = f"forward auth >= issp validate ({where})"
        if validate and forward:
            yield verdict(forward.rps >= validate.rps), goal, f"{forward.rps:.0f} vs {validate.rps:.0f} req/s"
        else:
            yield verdict(False), goal, "not measured"


# --------------------------------------------------------------------------- main


def choose_loadgen(requested: str) -> str:
    """Resolve ``--loadgen``: ``auto`` picks wrk when it is on PATH.

    Args:
        requested: ``auto``, ``wrk`` or ``python``.

    Returns:
        ``wrk`` or ``python``.

    Raises:
        HarnessError: ``wrk`` was asked for but is not installed.
    """
    has_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not has_wrk:
        raise HarnessError("--loadgen wrk: wrk is not on PATH")
    if requested == "auto":
        return "wrk" if has_wrk else "python"
    return requested


def select_scenarios(names: str | None) -> list[Scenario]:
    """Resolve ``--scenarios`` (comma list; default all).

    Args:
        names: Comma-separated scenario names, or None.

    Returns:
        The scenarios, in the given order.

    Raises:
        HarnessError: An unknown name was given.
    """
    if not names:
        return list(SCENARIOS.values())
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in SCENARIOS]
    if unknown:
        raise HarnessError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return [SCENARIOS[name] for name in wanted]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description="sessiongate benchmark harness (a report, not a test).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run (default 2)")
    parser.add_argument("--connections", type=int, default=64, help="connections for throughput runs (default 64)")
    parser.add_argument("--low-connections", type=int, default=4, help="connections for the tail-latency run")
    parser.add_argument(
        "--scenarios", default=None, help=f"comma list of gateway scenarios (default all: {','.join(SCENARIOS)})"
    )
    parser.add_argument(
        "--rounds",
        type=_positive,
        default=3,
        help="interleaved repetitions of the bare baselines and issue 17's goal scenarios; goals hold the median"
        " (default 3, as issue 17 measured)",
    )
    parser.add_argument("--creates", type=int, default=100_000, help="creates in the memory run (0 skips it)")
    parser.add_argument("--sample-every", type=int, default=10_000, help="creates between RSS samples")
    parser.add_argument("--memory-seconds", type=float, default=600.0, help="time budget of the memory run")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--wrk-threads", type=int, default=1, help="wrk threads (default 1: leaves a core to the server)"
    )
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one-worker servers on one CPU, the load generator on the others (default: on, as issue 17 measured)",
    )
    parser.add_argument("--gateway-env", action="append", default=[], metavar="KEY=VALUE", help="extra gateway env")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON to this file")
    parser.add_argument("--max-seconds", type=int, default=1800, help="hard bound on the whole harness run")
    parser.add_argument(
        "--pg-url", default=None, help="PostgreSQL server for the PG rows (default: $SESSIONGATE_TEST_DATABASE_URL)"
    )
    parser.add_argument("--target-cmd", default=None, help=argparse.SUPPRESS)
    return parser


def _raise_on_signal(signum: int, _frame: FrameType | None) -> None:
    # Ignore repeats so that a second signal cannot interrupt the cleanup.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def _on_alarm(_signum: int, _frame: FrameType | None) -> None:
    raise HarnessError("harness exceeded --max-seconds")


def install_signal_handlers(max_seconds: int) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit and bound the run with SIGALRM, so cleanup runs.

    Args:
        max_seconds: Hard bound on the whole run.
    """
    signal.signal(signal.SIGTERM, _raise_on_signal)
    signal.signal(signal.SIGHUP, _raise_on_signal)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max_seconds)


def pg_admin_url(args: argparse.Namespace) -> str | None:
    """The PostgreSQL server the PG scenarios use (``--pg-url``, else the environment), or None."""
    url = args.pg_url or next((os.environ[name] for name in PG_ENV if os.environ.get(name)), None)
    return url or None


def _pg_admin(url: str, sql: str) -> None:
    import asyncpg  # the gateway's own PostgreSQL driver

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def pg_database(url: str, stack: contextlib.ExitStack, label: str) -> str:
    """A fresh database on the server of ``url``, dropped when ``stack`` closes: its SQLAlchemy asyncpg URL."""
    name = f"sg_bench_{label}_{secrets.token_hex(4)}"
    _pg_admin(url, f'CREATE DATABASE "{name}"')
    stack.callback(_pg_admin, url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    base, _, _ = url.replace("postgresql://", "postgresql+asyncpg://", 1).rpartition("/")
    return f"{base}/{name}"


def start_targets(bench: Bench, stack: contextlib.ExitStack, scenarios: Sequence[Scenario]) -> dict[str, Target]:
    """Start the bare apps, the gateway and, when a scenario needs them, the PostgreSQL servers; wait for all.

    Args:
        bench: Shared settings.
        stack: Exit stack that stops the servers (and drops their databases).
        scenarios: The scenarios to run (which servers they need).

    Returns:
        The targets, by :attr:`Scenario.target`.
    """
    bare_script = [sys.executable, str(BENCH_DIR / "bare_app.py"), "--host", HOST]
    commands: dict[str, tuple[tuple[list[str], dict[str, str]], int]] = {}
    port = free_port()
    commands["bare"] = ([*bare_script, "--port", str(port), "--server", "granian"], dict(os.environ)), port
    port = free_port()
    commands["bare-uvicorn"] = ([*bare_script, "--port", str(port)], dict(os.environ)), port
    env = gateway_env(bench.workdir, bench.args.gateway_env)
    port = free_port()
    commands["gateway"] = (gateway_command(port, bench.args.target_cmd), env), port
    wanted = {scenario.target for scenario in scenarios}
    if "sqlite-2w" in wanted:
        port = free_port()
        two_env = env | {"SESSIONGATE_DATABASE_URL": f"sqlite+aiosqlite:///{bench.workdir / 'bench-2w.db'}"}
        commands["sqlite-2w"] = (gateway_command(port, bench.args.target_cmd, workers=2), two_env), port
    if "granian" in wanted:
        port = free_port()
        granian_env = env | {"SESSIONGATE_DATABASE_URL": f"sqlite+aiosqlite:///{bench.workdir / 'bench-granian.db'}"}
        commands["granian"] = (gateway_command(port, bench.args.target_cmd, server="granian"), granian_env), port
    pg_url = pg_admin_url(bench.args)
    if pg_url is None and wanted & {"pg", "lean"}:
        progress("no PostgreSQL server (--pg-url or SESSIONGATE_TEST_DATABASE_URL): the PostgreSQL rows are skipped")
    elif pg_url is not None:
        if "pg" in wanted:
            port = free_port()
            pg_env = env | {
                "SESSIONGATE_DATABASE_URL": pg_database(pg_url, stack, "gateway"),
                "SESSIONGATE_AUTO_MIGRATE": "true",
                # It and the lean anchor share one server of PostgreSQL's default 100 connections: each gets
                # PG_POOL_PER_WORKER per worker, no overflow, so neither is refused a connection the other holds.
                "SESSIONGATE_DB_POOL_SIZE": str(PG_POOL_PER_WORKER),
                "SESSIONGATE_DB_MAX_OVERFLOW": "0",
            }
            commands["pg"] = (gateway_command(port, bench.args.target_cmd, workers=2), pg_env), port
        if "lean" in wanted:
            port = free_port()
            lean_env = dict(os.environ) | {"LEAN_DATABASE_URL": pg_database(pg_url, stack, "lean")}
            lean = [sys.executable, str(BENCH_DIR / "lean_app.py"), "serve", "--port", str(port), "--workers", "2"]
            commands["lean"] = (lean, lean_env), port
    servers = {}
    for name, ((argv, server_env), server_port) in commands.items():
        cores = bench.placement.cores_of(name)
        servers[name] = start_server(name, argv, server_env, server_port, bench.workdir, cores)
        stack.callback(stop_server, servers[name])
    for server in servers.values():
        wait_ready(server, "/readyz")
    progress(f"servers ready: {', '.join(servers)}")
    return {name: Target(name, server.port, server.process.pid) for name, server in servers.items()}


def run(args: argparse.Namespace) -> Report:
    """Run every phase; servers are stopped on the way out, whatever happens.

    Args:
        args: Parsed command line.

    Returns:
        The measurements.
    """
    scenarios = select_scenarios(args.scenarios)
    loadgen = choose_loadgen(args.loadgen)
    loop, http = server_implementations()
    with tempfile.TemporaryDirectory(prefix="sessiongate-bench-") as tmp, contextlib.ExitStack() as stack:
        placement = Placement.choose(args.pin)
        if placement.loadgen is not None:
            # wrk, the Python load generator and the scenarios' own drivers run in or under this process.
            os.sched_setaffinity(0, placement.loadgen)
        bench = Bench(args=args, loadgen=loadgen, workdir=Path(tmp), placement=placement)
        bench.report.settings = {
            "placement": placement.describe(),
            "loadgen": loadgen,
            "duration": args.duration,
            "warmup": args.warmup,
            "connections": args.connections,
            "low_connections": args.low_connections,
            "server": f"{loop}/{http}",
            "creates": args.creates,
            "rounds": args.rounds,
        }
        targets = start_targets(bench, stack, scenarios)
        bench_scenarios(bench, targets, scenarios)
        if args.creates > 0:
            bench_memory(bench, targets["gateway"])
        return bench.report


def write_json(report: Report, path: Path) -> None:
    """Write the report as JSON.

    Args:
        report: Measurements.
        path: Output file.
    """
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        0 whatever the figures; 1 if the harness itself broke.
    """
    args = build_parser().parse_args(argv)
    install_signal_handlers(args.max_seconds)
    try:
        report = run(args)
    except HarnessError as exc:
        print(f"bench harness error: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.alarm(0)
    print_report(report)
    if args.json:
        write_json(report, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
