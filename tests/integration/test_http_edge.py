from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessiongate.server import ServerLimits
from sessiongate.settings import Settings
from tests.support.server import Server, running_server

HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS = 2.0, 2.0, 1.0, 40
SLACK = 4.0  # seconds a loaded two-core machine may add to a timeout before the close is seen


def edge_env(header_timeout: float, body_timeout: float, keep_alive: float, max_connections: int) -> dict[str, str]:
    """A zelf gateway's environment with these edge limits (the size limits stay the defaults)."""
    return {
        "SESSIONGATE_DIALECTS": "zelf",
        "SESSIONGATE_HEADER_TIMEOUT": str(header_timeout),
        "SESSIONGATE_BODY_TIMEOUT": str(body_timeout),
        "SESSIONGATE_KEEP_ALIVE_TIMEOUT": str(keep_alive),
        "SESSIONGATE_MAX_CONNECTIONS": str(max_connections),
    }


ENV = edge_env(HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS)
DEFAULTS = ServerLimits()  # the size limits under test are the defaults


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("edge")
    with running_server(f"sqlite+aiosqlite:///{directory / 'gateway.db'}", directory, env=ENV) as srv:
        yield srv


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Iterator[Server]:
    # A header timeout far longer than the test, so that only the cap can be what closes a silent connection.
    directory = tmp_path_factory.mktemp("capped")
    env = ENV | {"SESSIONGATE_HEADER_TIMEOUT": "300"}
    with running_server(f"sqlite+aiosqlite:///{directory / 'gateway.db'}", directory, env=env) as srv:
        yield srv


def address(server: Server) -> tuple[str, int]:
    host, port = server.base_url.removeprefix("http://").split(":")
    return host, int(port)


def rss_kib(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


@contextlib.contextmanager
def connection(server: Server, timeout: float = 30) -> Iterator[socket.socket]:
    with socket.create_connection(address(server), timeout=timeout) as sock:
        yield sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send ``data`` while the test reads: the server may answer, and close, long before it has all arrived."""

    def send() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(data)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    return sender


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def request(target: str = "/healthz", headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers or []), "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.slow
def test_a_32_mib_header_gets_431_at_once_the_connection_closes_and_memory_stays_flat(server):
    answer = refused_a_32_mib_header_at_once_within_16_mib(server)
    assert answer.endswith(b"Request header fields too large.")


def refused_a_32_mib_header_at_once_within_16_mib(server: Server) -> bytes:
    """The answer to a 32 MiB header, checked to be 431, within ``SLACK`` and without the server growing 16 MiB."""
    before = rss_kib(server)
    with connection(server) as sock:
        started = time.monotonic()
        sender = send_in_background(sock, request(headers=[("X-Big", "a" * 32 * 1024 * 1024)]))
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    sender.join(timeout=30)
    assert status_of(answer) == 431, answer[:200]
    assert elapsed < SLACK
    assert rss_kib(server) - before < 16 * 1024  # uvicorn alone held the whole header, several times over
    return answer


@pytest.mark.slow
def test_a_hundred_thousand_headers_get_431_and_the_connection_closes(server):
    before = rss_kib(server)
    with connection(server) as sock:
        sender = send_in_background(sock, request(headers=[("X-A", "b")] * 100_000))
        answer = read_until_closed(sock)
    sender.join(timeout=30)
    assert status_of(answer) == 431
    assert rss_kib(server) - before < 16 * 1024


HEADER_LIMITS = pytest.mark.parametrize(
    ("headers", "status"),
    [
        ([("X-A", "b")] * (DEFAULTS.max_header_count - 2), 200),  # with Host and Connection: exactly the limit
        ([("X-A", "b")] * (DEFAULTS.max_header_count - 1), 431),
        ([("X-Line", "v" * (DEFAULTS.max_header_line_bytes - len("X-Line")))], 200),
        ([("X-Line", "v" * (DEFAULTS.max_header_line_bytes - len("X-Line") + 1))], 431),
        ([(f"X-{i}", "v" * 7000) for i in range(4)], 200),
        ([(f"X-{i}", "v" * 7000) for i in range(5)], 431),  # each line fits, together over 32 KiB
    ],
    ids=["100 headers", "101 headers", "8 KiB line", "8 KiB + 1 line", "28 KiB in all", "35 KiB in all"],
)
"""Headers at each size limit, and one past it: the status each gets (on either server)."""
URL_LIMIT = pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 414)])
"""A request target of exactly ``max_url_bytes``, and one byte longer: the status each gets."""


def answer_closing(server: Server, target: str = "/healthz", headers: list[tuple[str, str]] | None = None) -> bytes:
    """The whole answer to one request that asks the server to close the connection after it."""
    with connection(server) as sock:
        sock.sendall(request(target, headers=[*(headers or []), ("Connection", "close")]))
        return read_until_closed(sock)


def target_of(extra: int) -> str:
    """A request target ``extra`` bytes longer than ``max_url_bytes``."""
    target = "/healthz?pad="
    return target + "x" * (DEFAULTS.max_url_bytes - len(target) + extra)


@pytest.mark.slow
@HEADER_LIMITS
def test_headers_up_to_the_limits_are_served_and_past_them_get_431(server, headers, status):
    answer = answer_closing(server, headers=headers)
    assert status_of(answer) == status, answer[:200]


@pytest.mark.slow
@URL_LIMIT
def test_a_request_target_up_to_8_kib_is_served_and_a_longer_one_gets_414(server, extra, status):
    answer = answer_closing(server, target_of(extra))
    assert status_of(answer) == status, answer[:200]


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and ``Content-Length`` body), however the server's writes were split."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(
        next(v for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n")) if k.lower() == b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def received(sock: socket.socket) -> tuple[int, int]:
    """Linux's count of the bytes and of the segments carrying data that ``sock`` has received (``struct tcp_info``)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160)
    return struct.unpack_from("Q", info, 128)[0], struct.unpack_from("I", info, 152)[0]


@pytest.mark.slow
def test_an_answer_leaves_in_one_write_its_head_together_with_its_body(server):
    with connection(server) as sock:
        for _ in range(3):  # on a kept-alive connection too
            before = received(sock)
            sock.sendall(request())
            answer = read_response(sock)
            after = received(sock)
            assert status_of(answer) == 200
            assert after[0] - before[0] == len(answer)  # the counters are this answer's
            assert after[1] - before[1] == 1  # one segment: uvicorn alone sent the head and the body apart


@pytest.mark.slow
def test_a_head_request_is_answered_at_once_with_a_head_alone(server):
    with connection(server, timeout=5) as sock:
        sock.sendall(request().replace(b"GET ", b"HEAD ", 1))
        answer = sock.recv(65536)  # the head, not held back for a body that never comes
        assert answer.endswith(b"\r\n\r\n"), answer
        sock.sendall(request())
        assert status_of(read_response(sock)) == 200  # and the connection goes on


@pytest.mark.slow
def test_a_client_expecting_100_continue_gets_it_before_it_sends_its_body(server):
    body = json.dumps({"identifier": "continued"}).encode()
    head = request(
        "/api/sessions",  # zelf's create, at its default prefix
        headers=[("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Expect", "100-continue")],
    ).replace(b"GET ", b"POST ", 1)
    with connection(server, timeout=5) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim  # at once, not held for the answer
        sock.sendall(body)
        assert status_of(read_response(sock)) == 200


def closed_after(sock: socket.socket) -> float:
    started = time.monotonic()
    assert read_until_closed(sock) == b""
    return time.monotonic() - started


@pytest.mark.slow
def test_half_a_request_line_and_then_silence_is_dropped_within_the_header_timeout(server):
    with connection(server) as sock:
        sock.sendall(b"GET /heal")
        assert HEADER_TIMEOUT / 2 < closed_after(sock) < HEADER_TIMEOUT + SLACK


@pytest.mark.slow
def test_a_client_that_never_sends_anything_is_dropped_within_the_header_timeout(server):
    with connection(server) as sock:
        assert closed_after(sock) < HEADER_TIMEOUT + SLACK


@pytest.mark.slow
def test_headers_trickling_in_a_byte_at_a_time_are_dropped_at_the_header_timeout_all_the_same(server):
    with connection(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n")
        with contextlib.suppress(OSError):
            while time.monotonic() - started < HEADER_TIMEOUT + SLACK:
                sock.sendall(b"X")  # never ending a header line, one byte every quarter second
                time.sleep(0.25)
        assert read_until_closed(sock) == b""
        assert time.monotonic() - started < HEADER_TIMEOUT + SLACK + 1


@pytest.mark.slow
def test_a_body_that_stops_arriving_is_dropped_within_the_body_timeout_and_is_no_server_error(server):
    head = request("/api/sessions", [("Content-Type", "application/json"), ("Content-Length", "100")])
    with connection(server) as sock:
        sock.sendall(head.replace(b"GET", b"POST", 1) + b'{"identifier": "slo')
        assert closed_after(sock) < BODY_TIMEOUT + SLACK
    metrics = httpx.get(f"{server.base_url}/metrics").text
    assert 'path="/api/sessions",status_code="499"' in metrics
    assert 'path="/api/sessions",status_code="500"' not in metrics
    assert not [line for line in server.logs().splitlines() if line.startswith("{") and '"level":"error"' in line]


@pytest.mark.slow
def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server):
    with connection(server) as sock:
        sock.sendall(request())
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert closed_after(sock) < KEEP_ALIVE + SLACK / 2  # uvicorn's own default was 5 s


@contextlib.contextmanager
def paused(server: Server, seconds: float) -> Iterator[None]:
    """Stop the server process (as a loaded machine or a blocked loop would) while the block runs, and ``seconds``."""
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        yield
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


@pytest.mark.slow
def test_a_request_sent_on_a_keep_alive_connection_while_the_server_stalls_past_the_timeout_is_answered(server):
    with connection(server) as sock:
        sock.sendall(request())
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.3)  # the server waits for the next request
        with paused(server, KEEP_ALIVE + 1.5):
            sock.sendall(request())  # in time: the connection had been idle for less than its timeout
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert closed_after(sock) < KEEP_ALIVE + SLACK / 2  # and idle afterwards, it still closes


@pytest.mark.slow
def test_a_head_completed_in_time_while_the_server_stalls_past_the_header_timeout_is_answered(server):
    whole = request(headers=[("Connection", "close")])
    with connection(server) as sock:
        sock.sendall(whole[:9])
        time.sleep(0.2)  # the server has read the first bytes: the header timeout runs
        with paused(server, HEADER_TIMEOUT + 1):
            sock.sendall(whole[9:])
        assert status_of(read_until_closed(sock)) == 200


@pytest.mark.slow
def test_a_head_still_unfinished_after_a_stall_past_the_header_timeout_is_dropped(server):
    with connection(server) as sock:
        sock.sendall(b"GET /heal")
        time.sleep(0.2)
        with paused(server, HEADER_TIMEOUT + 1):
            sock.sendall(b"thz HTTP/1.1\r\n")  # arrived, but the head is still not whole
        assert closed_after(sock) < SLACK


@pytest.mark.slow
def test_past_the_connection_cap_silent_clients_make_room_and_whole_requests_are_served(capped):
    server = capped
    silent = [socket.create_connection(address(server), timeout=30) for _ in range(3 * MAX_CONNECTIONS)]
    try:
        for sock in silent:
            sock.sendall(b"GET /heal")  # half a request line, and then nothing
        for i in range(5):
            response = httpx.post(f"{server.base_url}/api/sessions", json={"identifier": f"capped-{i}"}, timeout=10)
            assert response.status_code == 200
        time.sleep(0.5)
        dropped = 0
        for sock in silent:
            sock.settimeout(0.05)
            try:
                dropped += sock.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                dropped += 1
        assert dropped >= 2 * MAX_CONNECTIONS
    finally:
        for sock in silent:
            sock.close()


@pytest.mark.slow
def test_past_the_connection_cap_with_every_request_in_progress_a_new_connection_gets_503(capped):
    server = capped
    head = request("/api/sessions", [("Content-Type", "application/json"), ("Content-Length", "100")])
    busy = [socket.create_connection(address(server), timeout=30) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in busy:
            sock.sendall(head.replace(b"GET", b"POST", 1))  # a request in progress, its body yet to come
        time.sleep(0.5)
        with connection(server) as sock:
            answer = read_until_closed(sock)
        assert status_of(answer) == 503
        assert b"\r\nretry-after: 1\r\n" in answer.lower()
        time.sleep(BODY_TIMEOUT + SLACK)  # the stalled bodies are dropped...
        assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200  # ...and there is room again
    finally:
        for sock in busy:
            sock.close()


@pytest.mark.slow
def test_with_few_file_descriptors_the_cap_is_lowered_to_fit_and_whole_requests_are_still_served(tmp_path):
    # 256 descriptors for a cap of 1000 (the default): without the cap lowered, the server would stop accepting.
    env = {"SESSIONGATE_DIALECTS": "zelf", "SESSIONGATE_HEADER_TIMEOUT": "300"}
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    with running_server(url, tmp_path, env=env, descriptor_limit=256) as server:
        silent = [socket.create_connection(address(server), timeout=30) for _ in range(400)]
        try:
            for sock in silent:
                sock.sendall(b"GET /heal")
            for i in range(5):
                response = httpx.post(f"{server.base_url}/api/sessions", json={"identifier": f"fd-{i}"}, timeout=10)
                assert response.status_code == 200
        finally:
            for sock in silent:
                sock.close()
        lowered = [json.loads(line) for line in server.logs().splitlines() if "max_connections lowered" in line]
        assert [(entry["max_connections"], entry["descriptor_limit"]) for entry in lowered] == [(192, 256)]


@pytest.mark.slow
def test_a_websocket_upgrade_stays_plain_http_under_the_same_limits(server):
    # No route is a WebSocket; an upgrade used to hand the connection to uvicorn's WebSocket protocol, out of reach.
    upgrade = [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
    upgrade += [("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("X-Big", "a" * DEFAULTS.max_header_line_bytes)]
    with connection(server) as sock:
        sock.sendall(request("/api/sessions", upgrade[:-1]))
        answer = read_response(sock)
    assert status_of(answer) == 405
    assert answer.endswith(b'{"error":"method not allowed"}')
    with connection(server) as sock:
        sock.sendall(request("/api/sessions", upgrade))
        assert status_of(read_until_closed(sock)) == 431


def test_the_edge_limits_are_settings_with_safe_defaults():
    settings = Settings.from_env({})
    assert ServerLimits.from_settings(settings) == ServerLimits(
        max_url_bytes=8192,
        max_header_line_bytes=8192,
        max_header_bytes=32768,
        max_header_count=100,
        header_timeout=10.0,
        body_timeout=10.0,
        keep_alive_timeout=5.0,
        max_connections=1000,
    )
    env = {f"SESSIONGATE_{k.upper()}": json.dumps(v) for k, v in {"max_header_count": 50, "body_timeout": 3}.items()}
    assert ServerLimits.from_settings(Settings.from_env(env)).max_header_count == 50
