"""Two real server processes on one database: what one changes, the other never answers from what it kept."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.server import run_command, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

CREATE, VALIDATE, DELETE = "/api/session/createSession", "/api/session/validateSession", "/api/session/deleteSession"
USER, LOGIN = "kept-rows-user", "kept-rows@example.com"
VALIDATE_ERROR = {"message": "There was an error validating the session."}


def _create(base_url: str) -> str:
    created = httpx.post(f"{base_url}{CREATE}", json={"userID": USER})
    assert created.status_code == 200
    return created.headers["set-cookie"].split(";", 1)[0].partition("=")[2]


def _validate(base_url: str, cookie: str) -> httpx.Response:
    return httpx.post(f"{base_url}{VALIDATE}", headers={"Cookie": f"sessionCookie={cookie}"})


def test_a_session_deleted_by_one_process_is_refused_by_the_other_at_once(database_url: str, tmp_path: Path):
    env = {"SESSIONGATE_DIALECTS": "issp", "SESSIONGATE_CREATE_RATE_LIMIT": "0"}
    added = run_command(database_url, tmp_path, "users", "add", "--login", LOGIN, "--id", USER, "--email", LOGIN)
    assert added.returncode == 0, added.stderr
    with running_server(database_url, tmp_path, env=env) as one, running_server(database_url, tmp_path, env=env) as two:
        doomed, bystander = _create(one.base_url), _create(one.base_url)
        for _ in range(3):  # on SQLite, the second and third are answered from the row the first kept
            assert _validate(one.base_url, doomed).status_code == 200
            assert _validate(one.base_url, bystander).status_code == 200
        _create(two.base_url)  # a commit in the other process that changes neither
        assert _validate(one.base_url, doomed).status_code == 200
        deleted = httpx.delete(f"{two.base_url}{DELETE}", headers={"Cookie": f"sessionCookie={doomed}"})
        assert deleted.status_code == 200
        refused = _validate(one.base_url, doomed)
        assert (refused.status_code, refused.json()) == (400, VALIDATE_ERROR)
        assert _validate(one.base_url, bystander).status_code == 200
