"""Audit events, on both databases: every admin API change and every admin-token change is recorded before it is
acknowledged, naming who, from where and about what, never a secret; listed by the admin API (keyset pages, filters)
and by `sessiongate audit`; written as a log line; swept after the retention."""

from __future__ import annotations

import json
import logging
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from sessiongate.gate.tokens import ApiTokens
from sessiongate.identity.passwords import Passwords
from sessiongate.sessions.audit import AuditLog, NewEvent
from sessiongate.settings import GatewaySettings
from sessiongate.storage.audit_table import AuditEventRecord
from tests.support.gate import FORWARD_AUTH, PREFIX, USER_ID, open_session, portos_refresh_token, provision, run
from tests.support.migrations import differences_from_declared
from tests.support.server import run_command

EVENTS = f"{PREFIX}/admin/audit-events"
SESSIONS = f"{PREFIX}/admin/sessions"
REVOKE_PRINCIPAL = f"{PREFIX}/admin/revoke-principal-sessions"


def prepared(client):
    client.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(client, provision, client.app.state.services)
    return client


@pytest.fixture
def client(make_client):
    return prepared(make_client())


def api_token(client, scope="admin", name="operator"):
    services = client.app.state.services
    return run(client, ApiTokens(services.runner, services.digester, services.clock).add, name, scope).value


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {api_token(client)}", "User-Agent": "ops-console/1.0"}


def session_id(client, headers):
    return client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]


def events(client, admin, **params):
    response = client.get(EVENTS, params=params, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_admin_revoke_is_recorded_with_who_from_where_and_about_what(client, admin, caplog):
    headers, credential = open_session(client, "portos")
    sid = session_id(client, headers)
    with caplog.at_level(logging.INFO, logger="sessiongate.audit"):
        assert client.post(f"{SESSIONS}/{sid}/revoke", headers=admin).status_code == 200
    (event,) = events(client, admin, actor="admin-token:operator")["items"]
    assert event.pop("id")
    assert event.pop("at")
    assert event.pop("client_address")
    assert event == {
        "kind": "session.revoked",
        "actor": "admin-token:operator",
        "tenant": "default",
        "dialect": "portos",
        "principal_id": USER_ID,
        "session_id": sid,
        "user_agent": "ops-console/1.0",
        "detail": {"changed": True},
    }
    (line,) = [r for r in caplog.records if r.name == "sessiongate.audit" and r.audit["actor"] != "user"]
    assert line.audit["session_id"] == sid
    assert line.audit["kind"] == "session.revoked"
    assert credential not in caplog.text
    assert admin["Authorization"].split()[1] not in caplog.text
    # Again: nothing changes, and the attempt is recorded as such.
    client.post(f"{SESSIONS}/{sid}/revoke", headers=admin)
    by_admin = events(client, admin, actor="admin-token:operator")["items"]
    assert [e["detail"] for e in by_admin] == [{"changed": False}, {"changed": True}]


def test_revoking_a_principals_sessions_is_recorded_with_how_many(client, admin):
    for dialect in ("issp", "saymon"):
        open_session(client, dialect)
    client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=admin)
    (event,) = events(client, admin, kind="session.revoked")["items"]
    assert (event["principal_id"], event["tenant"], event["detail"]) == (
        USER_ID,
        "default",
        {"revoked": 2, "except_session_id": None},
    )


def test_reads_record_nothing_and_refusals_record_nothing(client, admin):
    client.get(SESSIONS, headers=admin)
    client.get(f"{SESSIONS}/nope", headers=admin)
    client.post(f"{SESSIONS}/nope/revoke", headers=admin)
    introspect = {"Authorization": f"Bearer {api_token(client, scope='introspect', name='rs')}"}
    assert client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=introspect).status_code == 403
    assert events(client, admin)["items"] == []


def test_only_an_admin_token_lists_events(client):
    assert client.get(EVENTS).status_code == 401
    introspect = {"Authorization": f"Bearer {api_token(client, scope='introspect', name='rs')}"}
    assert client.get(EVENTS, headers=introspect).status_code == 403
    headers, _ = open_session(client, "saymon")
    assert client.get(EVENTS, headers=headers).status_code == 401


def test_event_pages_are_keyset_and_stable_while_events_are_added(client, admin, clock):
    services = client.app.state.services
    audit = AuditLog(services.runner, services.clock)
    for n in range(5):
        run(client, audit.record, NewEvent(kind="session.revoked", actor="cli", session_id=f"s-{n}"))
    first = events(client, admin, limit=2)
    assert [e["session_id"] for e in first["items"]] == ["s-4", "s-3"]
    run(client, audit.record, NewEvent(kind="session.revoked", actor="cli", session_id="s-new"))
    second = events(client, admin, limit=2, cursor=first["next_cursor"])
    third = events(client, admin, limit=2, cursor=second["next_cursor"])
    assert [e["session_id"] for e in second["items"] + third["items"]] == ["s-2", "s-1", "s-0"]
    assert third["next_cursor"] is None
    assert [e["session_id"] for e in events(client, admin, session_id="s-new")["items"]] == ["s-new"]
    assert events(client, admin, actor="admin-token:operator")["items"] == []
    assert events(client, admin, kind="login.failed")["items"] == []
    now = clock.now.isoformat()
    assert len(events(client, admin, after=now)["items"]) == 6
    assert events(client, admin, before=now)["items"] == []


@pytest.mark.parametrize(
    "params", [{"cursor": "nope"}, {"limit": "0"}, {"after": "today"}, {"kind": "a\x00"}, {"actor": "x" * 2000}]
)
def test_bad_listing_parameters_are_400(client, admin, params):
    response = client.get(EVENTS, params=params, headers=admin)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_long_or_nul_holding_value_is_kept_cut_not_lost(client, admin):
    services = client.app.state.services
    event = NewEvent(kind="session.revoked", actor="cli", user_agent="agent\x00" + "u" * 1000, tenant="t" * 500)
    run(client, AuditLog(services.runner, services.clock).record, event)
    (listed,) = events(client, admin)["items"]
    assert listed["user_agent"].startswith("agent\ufffduuu")
    assert len(listed["user_agent"]) == 256
    assert len(listed["tenant"]) == 64


def test_events_older_than_the_retention_are_swept(make_client, clock):
    client = prepared(make_client(sweep_interval=0.05, gateway=GatewaySettings(audit_retention_days=1)))
    services = client.app.state.services
    audit = AuditLog(services.runner, services.clock)
    run(client, audit.record, NewEvent(kind="session.revoked", actor="cli", session_id="old"))
    clock.advance(86_400 + 1)
    run(client, audit.record, NewEvent(kind="session.revoked", actor="cli", session_id="recent"))
    deadline = time.monotonic() + 10
    while (left := run(client, _session_ids, services)) != ["recent"]:
        assert time.monotonic() < deadline, f"still there after the sweeps: {left}"
        time.sleep(0.05)


async def _session_ids(services):
    rows = await services.runner.read(select(AuditEventRecord.session_id).order_by(AuditEventRecord.id))
    return [row[0] for row in rows]


def test_a_retention_under_a_day_is_a_settings_error():
    with pytest.raises(ValueError, match="audit_retention_days"):
        GatewaySettings(audit_retention_days=0)


@pytest.mark.slow
def test_admin_token_changes_are_recorded_and_listed_by_the_audit_command(database_url, tmp_path):
    added = run_command(database_url, tmp_path, "admin-tokens", "add", "--name", "ops", "--scope", "admin")
    assert added.returncode == 0, added.stderr
    token = added.stdout.split("token: ", 1)[1].split()[0]
    assert run_command(database_url, tmp_path, "admin-tokens", "revoke", "--name", "ops").returncode == 0
    listed = run_command(database_url, tmp_path, "audit", "--json")
    assert listed.returncode == 0, listed.stderr
    revoked, created = (json.loads(line) for line in listed.stdout.splitlines())
    assert (created["kind"], created["actor"], created["detail"]["name"]) == ("admin_token.created", "cli", "ops")
    assert created["detail"]["scope"] == "admin"
    assert revoked["kind"] == "admin_token.revoked"
    assert token not in listed.stdout
    assert token[:12] == created["detail"]["prefix"]
    plain = run_command(database_url, tmp_path, "audit", "--kind", "admin_token.revoked")
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 1
    assert "admin_token.revoked" in plain.stdout
    paged = run_command(database_url, tmp_path, "audit", "--limit", "1")
    assert "more: --cursor " in paged.stderr
    cursor = paged.stderr.split("--cursor ", 1)[1].split()[0]
    rest = run_command(database_url, tmp_path, "audit", "--limit", "1", "--cursor", cursor)
    assert "admin_token.created" in rest.stdout
    assert run_command(database_url, tmp_path, "audit", "--cursor", "nope").returncode != 0


def test_migration_0011_creates_what_the_table_declares(database_url):
    assert differences_from_declared(database_url, AuditEventRecord.__tablename__) == []


def test_a_revocation_through_rfc_7009_is_recorded_by_the_calling_token(client, admin):
    headers, credential = open_session(client, "saymon")
    sid = session_id(client, headers)
    resource_server = api_token(client, scope="introspect", name="resource-server")
    form = {"Authorization": f"Bearer {resource_server}", "Content-Type": "application/x-www-form-urlencoded"}
    assert client.post(f"{PREFIX}/revoke", data={"token": credential}, headers=form).status_code == 200
    assert client.post(f"{PREFIX}/revoke", data={"token": "unknown"}, headers=form).status_code == 200
    (event,) = events(client, admin, kind="session.revoked")["items"]
    assert (event["kind"], event["actor"], event["session_id"], event["dialect"]) == (
        "session.revoked",
        "api-token:resource-server",
        sid,
        "saymon",
    )
    assert credential not in json.dumps(event)


def test_a_reused_portos_refresh_token_is_recorded_as_theft_detected_and_its_session_revoked(client, admin, clock):
    token_id, refresh = portos_refresh_token(client)
    sid = session_id(client, {"Authorization": f"Bearer {token_id}"})
    rotated = client.post("/api/auth/refresh", json={"tokenId": token_id, "refreshToken": refresh})
    assert rotated.status_code == 200
    clock.advance(60)  # past the refresh grace: the old token back can only be a copy
    reused = client.post("/api/auth/refresh", json={"tokenId": rotated.json()["tokenId"], "refreshToken": refresh})
    assert reused.status_code == 401
    listed = events(client, admin, actor="theft-detection")["items"]
    assert [(e["kind"], e["actor"]) for e in listed] == [
        ("session.revoked", "theft-detection"),
        ("refresh.reuse_detected", "theft-detection"),
    ]
    assert all((e["dialect"], e["tenant"], e["principal_id"]) == ("portos", "default", USER_ID) for e in listed)
    assert all(e["session_id"] == sid for e in listed)
    assert refresh not in json.dumps(listed)
