"""``sessiongate sessions``, through the real CLI on both databases: it lists, shows and revokes the sessions the admin
API does, with the same effect on the dialects (refused at once) and the same audit events, made by ``cli``."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from sessiongate.cli import cli
from sessiongate.gate.tokens import ApiTokens
from sessiongate.identity.passwords import Passwords
from tests.support.gate import FORWARD_AUTH, PREFIX, USER_ID, open_session, provision, run

SESSIONS = f"{PREFIX}/admin/sessions"
AUDIT = f"{PREFIX}/admin/audit-events"


@pytest.fixture
def client(make_client, database_url, monkeypatch):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    c = make_client()
    c.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, provision, c.app.state.services)
    return c


@pytest.fixture
def admin(client):
    services = client.app.state.services
    value = run(client, ApiTokens(services.runner, services.digester, services.clock).add, "operator", "admin").value
    return {"Authorization": f"Bearer {value}"}


def sessiongate(*args: str):
    return CliRunner().invoke(cli, ["sessions", *args])


def session_id(client, headers):
    response = client.get(FORWARD_AUTH, headers=headers)
    assert response.status_code == 200
    return response.headers["x-session-id"]


def test_the_cli_lists_what_the_admin_api_lists_in_the_same_shape(client, admin):
    for dialect in ("saymon", "portos", "zelf"):
        open_session(client, dialect)
    listed = sessiongate("list", "--json")
    assert listed.exit_code == 0, listed.output
    from_cli = [json.loads(line) for line in listed.stdout.splitlines()]
    from_api = client.get(SESSIONS, headers=admin).json()["items"]
    assert [s["id"] for s in from_cli] == [s["id"] for s in from_api]
    assert {s["dialect"] for s in from_cli} == {"saymon", "portos", "zelf"}
    mine = sessiongate("list", "--principal", USER_ID, "--dialect", "portos")
    assert mine.exit_code == 0
    assert len(mine.stdout.splitlines()) == 1
    assert "portos" in mine.stdout


def test_the_cli_pages_with_the_cursor_it_prints(client, admin):
    for n in range(3):
        client.post("/api/sessions", json={"identifier": f"device-{n}"})
    first = sessiongate("list", "--limit", "2")
    assert first.exit_code == 0
    assert len(first.stdout.splitlines()) == 2
    cursor = first.stderr.split("--cursor ", 1)[1].strip()
    rest = sessiongate("list", "--limit", "2", "--cursor", cursor)
    assert rest.exit_code == 0
    assert len(rest.stdout.splitlines()) == 1
    assert "more:" not in rest.stderr
    bad = sessiongate("list", "--cursor", "not-a-cursor")
    assert bad.exit_code == 1
    assert "cursor" in bad.stderr


def test_a_session_revoked_by_the_cli_is_refused_at_once_and_audited_as_the_clis(client, admin):
    headers, _ = open_session(client, "saymon")
    sid = session_id(client, headers)
    shown = sessiongate("show", "--id", sid, "--json")
    assert json.loads(shown.stdout)["state"] == "live"
    revoked = sessiongate("revoke", "--id", sid)
    assert revoked.exit_code == 0, revoked.output
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    assert client.get("/node/api/users/current", headers=headers).status_code == 401
    again = sessiongate("revoke", "--id", sid)
    assert again.exit_code == 0
    assert "already ended" in again.stdout
    events = client.get(AUDIT, params={"session_id": sid, "kind": "session.revoked"}, headers=admin).json()["items"]
    assert [(e["actor"], e["detail"]["changed"]) for e in events] == [("cli", False), ("cli", True)]


def test_a_principal_s_sessions_are_revoked_by_the_cli_but_the_one_kept(client, admin):
    opened = {d: open_session(client, d)[0] for d in ("issp", "saymon", "portos")}
    keep = session_id(client, opened["saymon"])
    revoked = sessiongate("revoke-principal", "--principal", USER_ID, "--except", keep)
    assert revoked.exit_code == 0, revoked.output
    assert "revoked 2 sessions" in revoked.stdout
    assert client.get(FORWARD_AUTH, headers=opened["saymon"]).status_code == 200
    assert client.get(FORWARD_AUTH, headers=opened["issp"]).status_code == 401
    stranger = sessiongate("revoke-principal", "--principal", "someone-else", "--except", keep)
    assert stranger.exit_code == 1
    assert "except_session_id names no session of this principal" in stranger.stderr
    assert client.get(FORWARD_AUTH, headers=opened["saymon"]).status_code == 200


@pytest.mark.parametrize("session", ["nope", "00000000-0000-0000-0000-000000000000", "x" * 3000])
def test_an_unknown_session_is_one_line_and_exit_1(client, session):
    for command in ("show", "revoke"):
        refused = sessiongate(command, "--id", session)
        assert refused.exit_code == 1
        assert refused.stderr.strip().splitlines()[-1] == "Error: no such session"  # after the "database:" line
        assert "Traceback" not in refused.output
