"""Async HTTP/1.1 load generator on raw asyncio streams.

Used by ``bench/run.py`` when ``wrk`` is not on PATH, and always for the
exact-count memory run. Each connection is a keep-alive HTTP/1.1 stream that
sends one request at a time, reads the status line, the headers and exactly
the body (Content-Length or chunked), and records the latency.

Request bodies come from a template: every ``{id}`` in it is replaced by an
identifier unique to the request (``<prefix><connection>-<counter>``).

``--requests-file`` names a JSON list of requests (``method``, ``path``,
``headers`` as ``[name, value]`` pairs, ``body`` or null) to send instead of
one: each connection goes round the list from its own starting point, so many
distinct sessions (or a mix of operations) are driven at once.

Run as a script it prints one JSON object on stdout::

    python bench/loadgen.py --port 8000 --path /bare --connections 64 --duration 10
    python bench/loadgen.py --port 8000 --method POST --path /api/sessions \
        --header 'Content-Type: application/json' \
        --body-template '{"identifier": "{id}"}' --requests 10000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

ID_PLACEHOLDER = "{id}"
_HEADER_END = b"\r\n\r\n"
_RECONNECT_PAUSE_S = 0.01
DEFAULT_DURATION_S = 10.0


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how hard and for how long.

    Attributes:
        host: Server address (loopback only).
        port: Server port.
        method: HTTP method.
        path: Request target.
        headers: Extra request headers (Host and Content-Length are added).
        body_template: Body with ``{id}`` placeholders, or None for no body.
        id_prefix: Prefix of the unique identifiers.
        connections: Number of concurrent keep-alive connections.
        duration_s: Stop sending after this long; None means 10 s when
            ``requests`` is not set, else no time limit.
        requests: Send exactly this many requests in total, if set (the run
            stops earlier if ``duration_s`` is also set and runs out).
        timeout_s: Per-request timeout; a timed-out request is a socket error.
        max_seconds: Hard bound on the whole run.
        variants: Requests to send in turn instead of the one above (each a
            ``(method, path, headers, body_template)``), or empty.
    """

    host: str
    port: int
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    body_template: str | None = None
    id_prefix: str = ""
    connections: int = 64
    duration_s: float | None = None
    requests: int | None = None
    timeout_s: float = 10.0
    max_seconds: float = 600.0
    variants: tuple[tuple[str, str, tuple[tuple[str, str], ...], str | None], ...] = ()


@dataclass
class LoadResult:
    """Outcome of one load run; latencies in milliseconds."""

    requests: int
    non_2xx: int
    socket_errors: int
    elapsed_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    status_counts: dict[str, int] = field(default_factory=dict)
    sample_error: str = ""


@dataclass
class _Stats:
    latencies_ns: list[int] = field(default_factory=list)
    non_2xx: int = 0
    socket_errors: int = 0
    status_counts: dict[int, int] = field(default_factory=dict)
    sample_error: str = ""

    def record(self, status: int, latency_ns: int, body: bytes) -> None:
        self.latencies_ns.append(latency_ns)
        self.status_counts[status] = self.status_counts.get(status, 0) + 1
        if not 200 <= status < 300:
            self.non_2xx += 1
            if not self.sample_error:
                self.sample_error = f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}"

    def socket_error(self, exc: BaseException) -> None:
        self.socket_errors += 1
        if not self.sample_error:
            self.sample_error = f"{type(exc).__name__}: {exc}"


class _Budget:
    """Decides whether a connection may send another request."""

    def __init__(self, spec: LoadSpec) -> None:
        self._remaining = spec.requests
        duration = DEFAULT_DURATION_S if spec.duration_s is None and spec.requests is None else spec.duration_s
        self._deadline = None if duration is None else time.monotonic() + duration

    def take(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            return False
        if self._remaining is None:
            return True
        if self._remaining <= 0:
            return False
        self._remaining -= 1
        return True


class _OneRequest:
    """Builds the bytes of one request shape; only the body varies between requests."""

    def __init__(self, spec: LoadSpec, method: str, path: str, headers: tuple[tuple[str, str], ...], body: str | None):
        lines = [f"{method} {path} HTTP/1.1", f"Host: {spec.host}:{spec.port}"]
        lines += [f"{name}: {value}" for name, value in headers]
        self._head = "\r\n".join(lines)
        self._parts = None if body is None else body.split(ID_PLACEHOLDER)
        self._static = self._head.encode() + _HEADER_END if self._parts is None else b""

    def build(self, identifier: str) -> bytes:
        if self._parts is None:
            return self._static
        body = identifier.join(self._parts).encode()
        return f"{self._head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class _RequestBuilder:
    """Builds request bytes: the one request of the spec, or its variants in turn from a point of their own."""

    def __init__(self, spec: LoadSpec, conn_index: int, shapes: list[_OneRequest]) -> None:
        self._shapes = shapes
        self._next = (conn_index * len(self._shapes)) // max(spec.connections, 1)
        self._id_base = f"{spec.id_prefix}{conn_index}-"
        self._counter = 0

    def next(self) -> bytes:
        self._counter += 1
        shape = self._shapes[self._next]
        self._next = (self._next + 1) % len(self._shapes)
        return shape.build(f"{self._id_base}{self._counter}")


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Return (status, content_length, chunked, close) from a response head."""
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    return status, length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";", 1)[0], 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            return b"".join(parts)
        parts.append((await reader.readexactly(size + 2))[:-2])


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(_HEADER_END)
    status, length, chunked, close = _parse_head(head[: -len(_HEADER_END)])
    if chunked:
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        close = True
    return status, body, close


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is None:
        return
    writer.close()
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def _shapes(spec: LoadSpec) -> list[_OneRequest]:
    """The request shapes of a run, built once for all its connections."""
    shapes = spec.variants or ((spec.method, spec.path, spec.headers, spec.body_template),)
    return [_OneRequest(spec, *shape) for shape in shapes]


async def _connection(spec: LoadSpec, index: int, budget: _Budget, stats: _Stats, shapes: list[_OneRequest]) -> None:
    builder = _RequestBuilder(spec, index, shapes)
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while budget.take():
            request = builder.next()
            started = time.perf_counter_ns()
            try:
                async with asyncio.timeout(spec.timeout_s):
                    if writer is None or reader is None:
                        reader, writer = await asyncio.open_connection(spec.host, spec.port)
                    writer.write(request)
                    status, body, close = await _read_response(reader)
            except (OSError, EOFError, ValueError, IndexError, TimeoutError, asyncio.IncompleteReadError) as exc:
                stats.socket_error(exc)
                await _close(writer)
                reader = writer = None
                await asyncio.sleep(_RECONNECT_PAUSE_S)
                continue
            stats.record(status, time.perf_counter_ns() - started, body)
            if close:
                await _close(writer)
                reader = writer = None
    finally:
        await _close(writer)


def _percentile_ms(sorted_ns: list[int], pct: float) -> float:
    if not sorted_ns:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_ns)))
    return sorted_ns[rank - 1] / 1e6


def _summarise(stats: _Stats, elapsed_s: float) -> LoadResult:
    latencies = sorted(stats.latencies_ns)
    return LoadResult(
        requests=len(latencies),
        non_2xx=stats.non_2xx,
        socket_errors=stats.socket_errors,
        elapsed_s=round(elapsed_s, 3),
        rps=round(len(latencies) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
        p50_ms=round(_percentile_ms(latencies, 50), 3),
        p99_ms=round(_percentile_ms(latencies, 99), 3),
        max_ms=round(latencies[-1] / 1e6, 3) if latencies else 0.0,
        status_counts={str(code): n for code, n in sorted(stats.status_counts.items())},
        sample_error=stats.sample_error,
    )


async def run_load(spec: LoadSpec) -> LoadResult:
    """Drive the server as described by ``spec``.

    Args:
        spec: Target, request shape, concurrency and duration or request count.

    Returns:
        Throughput, latency percentiles and error counts of the run.

    Raises:
        TimeoutError: The run exceeded ``spec.max_seconds``.
    """
    stats = _Stats()
    shapes = _shapes(spec)
    budget = _Budget(spec)
    started = time.perf_counter()
    workers = [_connection(spec, index, budget, stats, shapes) for index in range(spec.connections)]
    await asyncio.wait_for(asyncio.gather(*workers), spec.max_seconds)
    return _summarise(stats, time.perf_counter() - started)


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Use uvloop for the client too when it is installed."""
    if importlib.util.find_spec("uvloop") is None:
        return None
    import uvloop

    return uvloop.new_event_loop


def _parse_header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must look like 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--path", default="/")
    parser.add_argument("--header", action="append", default=[], type=_parse_header, dest="headers")
    parser.add_argument("--body-template", default=None, help="request body; each {id} becomes a unique identifier")
    parser.add_argument("--id-prefix", default="")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=None, help="seconds (default 10 unless --requests is given)")
    parser.add_argument(
        "--requests", type=int, default=None, help="send this many requests in total (--duration may cut it short)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="hard bound on the whole run")
    parser.add_argument("--requests-file", type=Path, default=None, help="JSON list of requests to send in turn")
    return parser


def _variants(path: Path | None) -> tuple[tuple[str, str, tuple[tuple[str, str], ...], str | None], ...]:
    if path is None:
        return ()
    items = json.loads(path.read_text())
    return tuple(
        (item["method"], item["path"], tuple((name, value) for name, value in item["headers"]), item["body"])
        for item in items
    )


def _spec_from_args(args: argparse.Namespace) -> LoadSpec:
    return LoadSpec(
        host=args.host,
        port=args.port,
        method=args.method,
        path=args.path,
        headers=tuple(args.headers),
        body_template=args.body_template,
        id_prefix=args.id_prefix,
        connections=args.connections,
        duration_s=args.duration,
        requests=args.requests,
        timeout_s=args.timeout,
        max_seconds=args.max_seconds,
        variants=_variants(args.requests_file),
    )


def main(argv: list[str] | None = None) -> int:
    """Run one load test and print its result as a JSON object.

    Args:
        argv: Command-line arguments (defaults to ``sys.argv[1:]``).

    Returns:
        Process exit code: 0 on success, 1 when the run hit its hard bound.
    """
    args = _build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing non-loopback host {args.host!r}", file=sys.stderr)
        return 2
    spec = _spec_from_args(args)
    try:
        with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
            result = runner.run(run_load(spec))
    except TimeoutError:
        print(f"load run exceeded {spec.max_seconds} s", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
