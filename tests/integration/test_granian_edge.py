"""``sessiongate serve --server granian``: the gateway served, and the edge limits granian allows, on a real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from sessiongate.granian_edge import granian_header_timeout_ms
from sessiongate.server import ServerLimits
from tests.integration.test_http_edge import (
    HEADER_LIMITS,
    SLACK,
    URL_LIMIT,
    answer_closing,
    closed_after,
    connection,
    edge_env,
    read_response,
    read_until_closed,
    refused_a_32_mib_header_at_once_within_16_mib,
    request,
    status_of,
    target_of,
)
from tests.support.server import Server, running_server

pytestmark = pytest.mark.slow  # each module starts a gateway process

HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS = 3.0, 2.0, 1.5, 4
ENV = edge_env(HEADER_TIMEOUT, BODY_TIMEOUT, KEEP_ALIVE, MAX_CONNECTIONS)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("granian")
    url = f"sqlite+aiosqlite:///{directory / 'gateway.db'}"
    with running_server(url, directory, env=ENV, serve_args=("--server", "granian")) as srv:
        yield srv


def test_on_granian_a_dialect_creates_a_session_with_its_cookie_and_no_store(server):
    response = httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "device-1"}, timeout=10)
    assert response.status_code in {200, 201}, response.text
    assert response.headers["server"] == "granian"
    assert response.headers["cache-control"] == "no-store"
    assert '"message":"listening"' in server.logs()
    assert '"server":"granian"' in server.logs()


def test_on_granian_a_32_mib_header_gets_431_at_once_and_memory_stays_flat(server):
    refused_a_32_mib_header_at_once_within_16_mib(server)


@HEADER_LIMITS
def test_on_granian_headers_up_to_the_limits_are_served_and_past_them_get_431(server, headers, status):
    answer = answer_closing(server, headers=headers)
    assert status_of(answer) == status, answer[:200]


@URL_LIMIT
def test_on_granian_a_request_target_up_to_8_kib_is_served_and_a_longer_one_gets_414(server, extra, status):
    answer = answer_closing(server, target_of(extra))
    assert status_of(answer) == status, answer[:200]
    if status == 414:
        assert answer.endswith(b"Request target too long.")


def test_on_granian_half_a_request_line_and_then_silence_is_dropped_within_the_shorter_timeout(server):
    with connection(server) as sock:
        sock.sendall(b"GET /heal")
        assert KEEP_ALIVE / 2 < closed_after(sock) < KEEP_ALIVE + SLACK


def test_on_granian_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server):
    with connection(server) as sock:
        sock.sendall(request())
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        assert closed_after(sock) < KEEP_ALIVE + SLACK / 2


def test_on_granian_a_body_that_stops_arriving_gets_408_within_the_body_timeout_and_is_no_server_error(server):
    head = request("/api/sessions", [("Content-Type", "application/json"), ("Content-Length", "100")])
    with connection(server) as sock:
        started = time.monotonic()
        sock.sendall(head.replace(b"GET", b"POST", 1) + b'{"identifier": "slo')
        answer = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status_of(answer) == 408, answer[:200]
    assert b"connection: close" in answer.lower()
    assert BODY_TIMEOUT / 2 < elapsed < BODY_TIMEOUT + SLACK
    assert not [line for line in server.logs().splitlines() if line.startswith("{") and '"level":"error"' in line]


def test_on_granian_a_body_that_arrives_in_slow_parts_within_the_body_timeout_is_served(server):
    body = b'{"identifier": "slow-but-steady"}'
    head = request("/api/sessions", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    with connection(server) as sock:
        sock.sendall(head.replace(b"GET", b"POST", 1))
        for part in (body[:10], body[10:20], body[20:]):
            time.sleep(BODY_TIMEOUT / 2)
            sock.sendall(part)
        answer = read_response(sock)
    assert status_of(answer) in {200, 201}, answer[:300]


def test_on_granian_past_the_connection_cap_a_whole_request_waits_for_a_silent_one_to_time_out(server):
    """No eviction on granian (the module's docstring): the request is served, once a silent connection is closed."""
    silent = [socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))) for _ in range(8)]
    try:
        for sock in silent:
            sock.sendall(b"GET /heal")
        time.sleep(0.3)
        started = time.monotonic()
        done: list[int] = []
        url = f"{server.base_url}/healthz"
        worker = threading.Thread(target=lambda: done.append(httpx.get(url, timeout=30).status_code))
        worker.start()
        worker.join(timeout=KEEP_ALIVE + 2 * SLACK)
        waited = time.monotonic() - started
        assert done == [200]
        assert KEEP_ALIVE / 2 < waited < KEEP_ALIVE + 2 * SLACK
    finally:
        for sock in silent:
            sock.close()


def test_granians_one_timer_is_the_shorter_of_the_header_and_keep_alive_timeouts_within_its_range():
    assert granian_header_timeout_ms(ServerLimits(header_timeout=10, keep_alive_timeout=5)) == 5000
    assert granian_header_timeout_ms(ServerLimits(header_timeout=2.5, keep_alive_timeout=5)) == 2500
    assert granian_header_timeout_ms(ServerLimits(header_timeout=600, keep_alive_timeout=300)) == 60_000


def test_on_granian_a_worker_that_dies_is_replaced_and_every_log_line_is_json(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    with running_server(url, tmp_path, env=ENV, workers=2, serve_args=("--server", "granian")) as server:
        wait_for_started(server, 2)
        workers = [json.loads(line)["pid"] for line in server.logs().splitlines() if '"message":"started"' in line]
        os.kill(workers[0], signal.SIGKILL)
        wait_for_started(server, 3)
        for _ in range(4):  # both workers, whichever takes each connection
            answer = httpx.get(f"{server.base_url}/healthz", headers={"Connection": "close"}, timeout=10)
            assert answer.status_code == 200
        assert server.process.poll() is None
        lines = server.logs().splitlines()
    assert '"message":"Unexpected exit from worker-' in "\n".join(lines)
    assert all(line.startswith("{") for line in lines), [line for line in lines if not line.startswith("{")]


def wait_for_started(server: Server, count: int) -> None:
    deadline = time.monotonic() + 30
    while server.logs().count('"message":"started"') < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.logs().count('"message":"started"') == count, server.logs()
