from __future__ import annotations

import signal
import threading
import time

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from sessiongate.runtime import Services
from sessiongate.storage.tables import SessionRecord
from tests.integration.test_create_budget_server import with_services
from tests.support.server import running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow


@pytest.fixture
def server(database_url, tmp_path):
    with running_server(database_url, tmp_path) as srv:
        yield srv


def test_real_server_issues_a_zelf_token_over_http(server):
    response = httpx.post(f"{server.base_url}/api/sessions", json={"identifier": "device_unique_id_here"})
    assert response.status_code == 200
    data = response.json()["data"]
    claims = jwt.decode(data["token"], options={"verify_signature": False})
    assert claims["identifier"] == "device_unique_id_here"
    assert claims["exp"] == data["expiresAt"]


def test_real_server_reports_health_and_readiness(server):
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server.base_url}/readyz").json() == {"status": "ok"}


def test_real_server_serves_the_docs_index(server):
    response = httpx.get(f"{server.base_url}/docs")
    assert response.status_code == 200
    assert "/docs/zelf" in response.text


def test_sessions_survive_a_restart_on_the_same_database(database_url, tmp_path):
    with running_server(database_url, tmp_path) as first:
        before = httpx.post(f"{first.base_url}/api/sessions", json={"identifier": "keep-me"}).json()["data"]
    with running_server(database_url, tmp_path) as second:
        after = httpx.post(f"{second.base_url}/api/sessions", json={"identifier": "keep-me"}).json()["data"]
    assert (after["activatedAt"], after["expiresAt"]) == (before["activatedAt"], before["expiresAt"])


def test_no_token_or_digest_reaches_the_server_log(server):
    tokens = [
        httpx.post(f"{server.base_url}/api/sessions", json={"identifier": f"log-{i}"}).json()["data"]["token"]
        for i in range(3)
    ]
    httpx.post(f"{server.base_url}/api/sessions", content=b"{bad", headers={"content-type": "application/json"})
    logs = server.logs()
    assert logs  # the server does log (start-up line), so the check below means something
    for token in tokens:
        assert token not in logs
        assert token.split(".")[2] not in logs


def _samples(text: str, name: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["method"], s.labels["path"], s.labels["status_code"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_metrics_count_and_time_requests_by_route_template_and_status(server):
    for i in range(2):
        httpx.post(f"{server.base_url}/api/sessions", json={"identifier": f"metered-{i}"})
    httpx.post(f"{server.base_url}/api/sessions", content=b"{bad", headers={"content-type": "application/json"})
    secret_looking_id = "0f0e0d0c-sid-that-must-not-become-a-label"
    assert httpx.get(f"{server.base_url}/node/api/users/session/verify/{secret_looking_id}").status_code == 401

    text = httpx.get(f"{server.base_url}/metrics").text
    totals = _samples(text, "sessiongate_requests_total")
    assert totals[("POST", "/api/sessions", "200")] == 2
    assert totals[("POST", "/api/sessions", "400")] == 1
    assert totals[("GET", "/node/api/users/session/verify/{sid}", "401")] == 1
    assert _samples(text, "sessiongate_request_duration_seconds_count")[("POST", "/api/sessions", "200")] == 2
    assert _samples(text, "sessiongate_requests_in_progress")[("POST", "/api/sessions", "200")] == 0
    assert not any(path == "/metrics" for _, path, _ in totals)
    assert secret_looking_id not in text


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_every_create_acknowledged_before_the_server_is_stopped_is_kept(database_url, tmp_path, server_name):
    acknowledged: list[str] = []

    def creating(client_number: int) -> None:
        with httpx.Client(timeout=30) as client:
            for i in range(100_000):
                identifier = f"stop-{client_number}-{i}"
                try:
                    response = client.post(f"{server.base_url}/api/sessions", json={"identifier": identifier})
                except httpx.TransportError:
                    return  # the server has stopped: this create was not acknowledged
                if response.status_code == 200:
                    acknowledged.append(identifier)

    with running_server(database_url, tmp_path, serve_args=("--server", server_name)) as server:
        clients = [threading.Thread(target=creating, args=(n,)) for n in range(8)]
        for thread in clients:
            thread.start()
        time.sleep(1.5)
        server.process.terminate()  # SIGTERM, as an orchestrator stops it
        # uvicorn ends by raising the signal again once it has shut down (so its status says what stopped it).
        assert server.process.wait(timeout=40) in {0, -signal.SIGTERM}
        for thread in clients:
            thread.join(timeout=30)
    assert len(acknowledged) > 8  # creates were in flight when it stopped

    async def count(services: Services) -> int:
        return int((await services.runner.read(select(func.count()).select_from(SessionRecord)))[0][0])

    stored = with_services(database_url, count)
    assert isinstance(stored, int)
    # Each acknowledged create is stored; a create stored as the server stopped may have lost its answer.
    assert len(acknowledged) <= stored <= len(acknowledged) + len(clients)
