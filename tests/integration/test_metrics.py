"""``/metrics`` of a real ``serve`` with several workers: every scrape adds up every worker's counts exactly."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateways import DEVICE, LOGIN, PASSWORD, provision
from tests.support.server import Server, free_port, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"authorization": f"Bearer {TOKEN}"}
ENV = {
    "SESSIONGATE_ACCESS_LOG": "true",  # each line names the worker (pid) that served the request
    "SESSIONGATE_METRICS_TOKEN": TOKEN,
    "SESSIONGATE_METRICS_INTERVAL": "0.5",
    "SESSIONGATE_LOGIN_MAX_FAILURES": "2",
    "SESSIONGATE_PORTOS__REFRESH_GRACE": "0",
    "SESSIONGATE_CREATE_RATE_LIMIT": "0",
}
CREATES = "/api/sessions"
ROUNDS = 10


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    matching = [v for (n, ls), v in found.items() if n == name and set(labels.items()) <= ls]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else 0.0


def access_lines(server: Server) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "sessiongate.access"]


def pids_serving(server: Server, method: str, path: str) -> set[int]:
    return {line["pid"] for line in access_lines(server) if (line["method"], line["path"]) == (method, path)}


def create_until_both_workers_served(server: Server) -> int:
    """zelf sessions created in parallel on new connections, until both workers have served some; how many."""
    created = 0
    with ThreadPoolExecutor(8) as pool:
        for batch in range(ROUNDS):
            ids = [f"device-{batch}-{i}" for i in range(16)]
            statuses = list(pool.map(lambda i: httpx.post(f"{server.base_url}{CREATES}", json={"identifier": i}), ids))
            assert all(s.status_code == 200 for s in statuses)
            created += len(ids)
            if len(pids_serving(server, "POST", CREATES)) == 2:  # the two workers
                return created
    raise AssertionError("the requests never reached both workers")


def test_counters_add_up_over_two_workers_in_every_scrape(database_url, tmp_path):
    auth_token = provision(database_url)
    with running_server(database_url, tmp_path, env=ENV, workers=2) as server:
        base = server.base_url
        created = create_until_both_workers_served(server)

        # portos: a login, a refresh, the rotated token used again (reuse: the session is revoked), then two wrong
        # passwords (the second reaches the limit: a lock-out) and a right one refused while locked.
        auth = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}
        login = httpx.post(f"{base}/api/auth", json=auth).json()
        body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
        assert httpx.post(f"{base}/api/auth/refresh", json=body).status_code == 200
        time.sleep(0.05)
        assert httpx.post(f"{base}/api/auth/refresh", json=body).status_code == 401
        for _ in range(2):
            assert httpx.post(f"{base}/api/auth", json=auth | {"Password": "wrong"}).status_code == 401
        assert httpx.post(f"{base}/api/auth", json=auth).status_code == 423  # PORTOS answers a lock with 423
        # saymon: a login by auth token, and a logout.
        sid = httpx.post(f"{base}/node/api/users/session", json={"auth-token": auth_token}).json()
        assert httpx.delete(f"{base}/node/api/users/session", headers={"cookie": f"sid={sid}"}).status_code == 200

        expected = {
            ("sessiongate_requests_total", (("method", "POST"), ("path", CREATES), ("status_code", "200"))): created,
            ("sessiongate_sessions_created_total", (("dialect", "zelf"),)): created,
            ("sessiongate_sessions_created_total", (("dialect", "portos"),)): 1,
            ("sessiongate_sessions_created_total", (("dialect", "saymon"),)): 1,
            ("sessiongate_sessions_revoked_total", (("dialect", "portos"),)): 1,
            ("sessiongate_sessions_revoked_total", (("dialect", "saymon"),)): 1,
            ("sessiongate_refresh_reuse_detected_total", (("dialect", "portos"),)): 1,
            ("sessiongate_logins_total", (("dialect", "portos"), ("result", "success"))): 1,
            ("sessiongate_logins_total", (("dialect", "portos"), ("result", "failure"))): 2,
            ("sessiongate_logins_total", (("dialect", "portos"), ("result", "locked"))): 1,
            ("sessiongate_logins_total", (("dialect", "saymon"), ("result", "success"))): 1,
            ("sessiongate_lockouts_total", (("dialect", "portos"), ("kind", "login"))): 1,
        }
        # Two scrapes at a time, on new connections: while one worker answers, the other accepts the second. One
        # at a time, a loaded machine once gave all thirty to the same worker.
        with ThreadPoolExecutor(2) as pool:
            for scrape in range(3 * ROUNDS):
                for answer in pool.map(lambda _: httpx.get(f"{base}/metrics", headers=BEARER), range(2)):
                    assert answer.status_code == 200
                    found = samples(answer.text)
                    for (name, labels), count in expected.items():
                        assert value(found, name, **dict(labels)) == count, (scrape, name, labels)
                    assert value(found, "sessiongate_database_seconds_count", operation="write") >= created
                    assert value(found, "sessiongate_database_seconds_count", operation="read") > 0
                if scrape >= ROUNDS and len(pids_serving(server, "GET", "/metrics")) == 2:
                    break
            else:
                raise AssertionError("the scrapes never reached both workers")

        # The live sessions, as last counted by a worker (every half second here): the zelf ones (the portos one
        # was revoked by the reuse, the saymon one by the logout).
        deadline = time.monotonic() + 10
        while True:
            found = samples(httpx.get(f"{base}/metrics", headers=BEARER).text)
            live = (value(found, "sessiongate_live_sessions", dialect=d) for d in ("zelf", "portos", "saymon"))
            if tuple(live) == (created, 0, 0):
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.2)


def test_metrics_need_the_token_when_one_is_set(database_url, tmp_path):
    with running_server(database_url, tmp_path, env=ENV) as server:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}, {"authorization": "Basic x"}):
            answer = httpx.get(f"{server.base_url}/metrics", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.headers["www-authenticate"] == "Bearer"
            assert "sessiongate_" not in answer.text
        assert httpx.get(f"{server.base_url}/metrics", headers=BEARER).status_code == 200


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_metrics_on_a_port_of_their_own_add_up_every_worker(database_url, tmp_path, server_name):
    port = free_port()
    env = ENV | {"SESSIONGATE_METRICS_PORT": str(port)}
    serve_args = ("--server", server_name)
    with running_server(database_url, tmp_path, env=env, workers=2, serve_args=serve_args) as server:
        created = create_until_both_workers_served(server)
        assert httpx.get(f"{server.base_url}/metrics", headers=BEARER).status_code == 404
        metrics = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(metrics).status_code == 401
        assert httpx.post(metrics, headers=BEARER).status_code == 405
        assert httpx.get(f"http://127.0.0.1:{port}/other", headers=BEARER).status_code == 404
        for _ in range(3):
            found = samples(httpx.get(metrics, headers=BEARER).text)
            assert value(found, "sessiongate_sessions_created_total", dialect="zelf") == created
            assert value(found, "sessiongate_requests_total", method="POST", path=CREATES, status_code="200") == created
