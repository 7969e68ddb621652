"""Audit events of the dialects' own paths, on both databases: each login (succeeded or failed), lock-out, session
created, and session ended by its user, by a password change or by a takeover of its device is recorded before the
answer, naming tenant, dialect, principal, session, client address and user agent, and never a password or token."""

from __future__ import annotations

import json
import logging

import pytest

from sessiongate.dialect import DialectStorage
from sessiongate_portos.devices import Devices
from tests.integration.test_audit import SESSIONS, api_token, events, prepared, run, session_id
from tests.support.gate import AMITY_USER, API_KEY, LOGIN, PASSWORD, USER_ID, open_session, portos_refresh_token
from tests.support.server import run_command

AGENT = {"User-Agent": "pos-terminal/7.1"}
WHERE = ("tenant", "dialect", "principal_id", "session_id", "client_address", "user_agent")


@pytest.fixture
def client(make_client):
    return prepared(make_client())


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {api_token(client)}"}


def kinds(client, admin, **params):
    return [(e["kind"], e["actor"]) for e in events(client, admin, **params)["items"]]


def where(event):
    return tuple(event[name] for name in WHERE)


def test_a_saymon_login_and_logout_are_recorded_with_who_where_and_which_session(client, admin, caplog):
    with caplog.at_level(logging.INFO, logger="sessiongate.audit"):
        response = client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD}, headers=AGENT)
        assert response.status_code == 200, response.text
        sid = session_id(client, {"Cookie": f"sid={response.json()}"})
        client.cookies.clear()
        out = client.delete("/node/api/users/session", headers={"X-Session-Id": response.json()} | AGENT)
        assert out.status_code == 200, out.text
    revoked, created, logged_in = events(client, admin)["items"]
    assert (logged_in["kind"], logged_in["actor"]) == ("login.succeeded", "user")
    assert logged_in["detail"] == {"method": "password", "login": LOGIN}
    assert where(logged_in) == ("default", "saymon", USER_ID, None, "testclient", AGENT["User-Agent"])
    assert (created["kind"], created["actor"]) == ("session.created", "user")
    assert where(created) == ("default", "saymon", USER_ID, sid, "testclient", AGENT["User-Agent"])
    assert (revoked["kind"], revoked["actor"]) == ("session.revoked", "user")
    assert where(revoked) == ("default", "saymon", USER_ID, sid, "testclient", AGENT["User-Agent"])
    assert [r.audit["kind"] for r in caplog.records if r.name == "sessiongate.audit"] == [
        "login.succeeded",
        "session.created",
        "session.revoked",
    ]
    assert PASSWORD not in caplog.text
    assert response.json() not in caplog.text  # the sid cookie is the credential; the session's id is not it


def test_a_failed_login_is_recorded_without_the_password(client, admin, caplog):
    wrong = "not-the-password-0xdeadbeef"
    with caplog.at_level(logging.INFO, logger="sessiongate.audit"):
        body = {"UserName": LOGIN, "Password": wrong, "DeviceName": "BackOffice"}
        assert client.post("/api/auth", json=body, headers=AGENT).status_code == 401
    (failed,) = events(client, admin)["items"]
    assert (failed["kind"], failed["actor"], failed["detail"]) == (
        "login.failed",
        "user",
        {"method": "password", "login": LOGIN, "reason": "invalid"},
    )
    assert where(failed) == ("default", "portos", None, None, "testclient", AGENT["User-Agent"])
    assert wrong not in json.dumps(failed)
    assert wrong not in caplog.text


def test_a_lock_out_is_recorded_once_and_refusals_during_it_record_nothing(make_client):
    client = prepared(make_client(login_max_failures=2))
    admin = {"Authorization": f"Bearer {api_token(client)}"}
    body = {"login": LOGIN, "password": "wrong-password"}
    for _ in range(2):
        assert client.post("/node/api/users/session", json=body).status_code == 401
    refused = client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD})
    assert refused.status_code != 200
    assert kinds(client, admin) == [("principal.locked", "user"), ("login.failed", "user"), ("login.failed", "user")]
    (locked,) = events(client, admin, kind="principal.locked")["items"]
    assert locked["detail"] == {"method": "password", "login": LOGIN, "lock": "login"}
    assert (locked["tenant"], locked["dialect"]) == ("default", "saymon")


@pytest.mark.parametrize(
    ("dialect", "log_out"),
    [
        ("issp", lambda client, headers: client.post("/api/session/deleteSession", headers=headers)),
        ("portos", lambda client, headers: client.delete("/api/auth", headers=headers)),
        ("amity", lambda client, headers: client.delete("/api/v4/sessions", headers=headers)),
        ("saymon", lambda client, headers: client.delete("/node/api/users/session", headers=headers)),
    ],
)
def test_each_dialects_logout_is_a_revoke_by_the_user(client, admin, dialect, log_out):
    headers, credential = open_session(client, dialect)
    sid = session_id(client, headers)
    response = log_out(client, headers | AGENT)
    assert response.status_code in {200, 204}, response.text
    client.cookies.clear()
    (created,) = events(client, admin, kind="session.created")["items"]
    (revoked,) = events(client, admin, kind="session.revoked")["items"]
    assert (created["dialect"], created["session_id"]) == (dialect, sid)
    assert (revoked["actor"], revoked["dialect"], revoked["session_id"]) == ("user", dialect, sid)
    assert revoked["principal_id"] == (AMITY_USER if dialect == "amity" else USER_ID)
    assert revoked["user_agent"] == AGENT["User-Agent"]
    assert credential not in json.dumps(events(client, admin)["items"])


def test_a_password_change_records_the_sessions_it_ended(client, admin):
    for dialect in ("saymon", "portos"):
        open_session(client, dialect)
    identity = client.app.state.services.identity
    run(client, identity.set_password, tenant="default", login=LOGIN, password="a-new-password-2")
    (revoked,) = events(client, admin, actor="password-change")["items"]
    assert (revoked["kind"], revoked["tenant"], revoked["principal_id"]) == ("session.revoked", "default", USER_ID)
    assert revoked["detail"] == {"revoked": 2, "except_session_id": None}
    assert "a-new-password-2" not in json.dumps(revoked)


def test_another_user_taking_an_amity_device_over_is_recorded(client, admin):
    first = client.post(
        "/api/v5/sessions", json={"userId": AMITY_USER, "deviceId": "phone-9"}, headers={"x-api-key": API_KEY}
    )
    assert first.status_code == 200, first.text
    sid = session_id(client, {"Authorization": f"Bearer {first.json()['accessToken']}"})
    second = client.post(
        "/api/v5/sessions", json={"userId": "grace", "deviceId": "phone-9"}, headers={"x-api-key": API_KEY} | AGENT
    )
    assert second.status_code == 200, second.text
    (taken,) = events(client, admin, actor="takeover")["items"]
    assert (taken["kind"], taken["dialect"], taken["tenant"]) == ("session.revoked", "amity", "acme")
    assert (taken["session_id"], taken["principal_id"]) == (sid, AMITY_USER)
    assert taken["user_agent"] == AGENT["User-Agent"]  # the request that took the device over
    created = events(client, admin, kind="session.created")["items"]
    assert [e["principal_id"] for e in created] == ["grace", AMITY_USER]


def test_a_new_login_on_a_portos_sale_device_records_the_session_it_ended(client, admin):
    services = client.app.state.services
    run(
        client,
        Devices(DialectStorage(services.runner)).add,
        tenant="default",
        name="P01",
        env="CashRegister",
        now=services.clock(),
    )
    body = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": "P01"}
    for _ in range(2):
        assert client.post("/api/auth", json=body, headers=AGENT).status_code == 200
    (taken,) = events(client, admin, actor="takeover")["items"]
    assert (taken["kind"], taken["dialect"], taken["tenant"]) == ("session.revoked", "portos", "default")
    assert kinds(client, admin, kind="session.created") == [("session.created", "user")] * 2
    newer, older = events(client, admin, kind="session.created")["items"]
    # it names the session it ended, and whose it was, as every other revoke's event does
    assert (taken["session_id"], taken["principal_id"]) == (older["session_id"], older["principal_id"])
    assert taken["session_id"] != newer["session_id"]
    assert taken["principal_id"] is not None


@pytest.mark.slow
def test_disabling_a_principal_from_the_cli_records_the_sessions_it_ended(client, admin, database_url, tmp_path):
    open_session(client, "saymon")
    done = run_command(database_url, tmp_path, "users", "disable", "--login", LOGIN)
    assert done.returncode == 0, done.stderr
    (revoked,) = events(client, admin, actor="cli")["items"]
    assert (revoked["kind"], revoked["principal_id"], revoked["detail"]["revoked"]) == ("session.revoked", USER_ID, 1)
    assert (revoked["client_address"], revoked["user_agent"]) == (None, None)  # no request: a command


REFUSE_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON sg_audit_event BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
        " LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON sg_audit_event FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    ],
}
ALLOW_AUDIT = {"sqlite": ["DROP TRIGGER refuse_audit"], "postgresql": ["DROP TRIGGER refuse_audit ON sg_audit_event"]}


def ddl(client, statements):
    def run_all(conn):
        for statement in statements:
            conn.exec_driver_sql(statement)

    run(client, client.app.state.services.runner.transaction, run_all)


def stored_sessions(client, admin):
    response = client.get(SESSIONS, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_a_create_whose_event_cannot_be_written_stores_no_session_and_is_not_acknowledged(client, admin):
    backend = client.app.state.services.engine.dialect.name
    ddl(client, REFUSE_AUDIT[backend])
    refused = client.post("/api/sessions", json={"identifier": "kiosk-7"}, headers=AGENT)
    assert refused.status_code >= 500
    assert "token" not in refused.text
    assert stored_sessions(client, admin) == []  # the session went with its event: never one without the other
    ddl(client, ALLOW_AUDIT[backend])
    created = client.post("/api/sessions", json={"identifier": "kiosk-7"}, headers=AGENT)
    assert created.status_code == 200, created.text
    (stored,) = stored_sessions(client, admin)
    (event,) = events(client, admin, kind="session.created")["items"]
    assert (event["actor"], event["session_id"]) == ("user", stored["id"])
    assert where(event)[:2] == ("default", "zelf")


def test_a_create_answered_with_the_live_session_it_reuses_records_no_second_event(client, admin, caplog):
    with caplog.at_level(logging.INFO, logger="sessiongate.audit"):
        first = client.post("/api/sessions", json={"identifier": "kiosk-8"}, headers=AGENT)
        again = client.post("/api/sessions", json={"identifier": "kiosk-8"}, headers=AGENT)
    assert (first.status_code, again.status_code) == (200, 200)
    (stored,) = stored_sessions(client, admin)
    (event,) = events(client, admin, kind="session.created")["items"]
    assert event["session_id"] == stored["id"]
    assert [r.audit["session_id"] for r in caplog.records if r.name == "sessiongate.audit"] == [stored["id"]]


def test_a_refresh_token_reuse_whose_events_cannot_be_written_revokes_nothing(client, admin, clock):
    token_id, refresh = portos_refresh_token(client)
    sid = session_id(client, {"Authorization": f"Bearer {token_id}"})
    rotated = client.post("/api/auth/refresh", json={"tokenId": token_id, "refreshToken": refresh})
    assert rotated.status_code == 200, rotated.text
    clock.advance(60)  # past the refresh grace: the old token back can only be a copy
    backend = client.app.state.services.engine.dialect.name
    ddl(client, REFUSE_AUDIT[backend])
    copy = {"tokenId": rotated.json()["tokenId"], "refreshToken": refresh}
    failed = client.post("/api/auth/refresh", json=copy)
    assert failed.status_code >= 500
    assert refresh not in failed.text
    # The revoke went with its events: the login still works, and its current refresh token too.
    assert [(s["id"], s["state"]) for s in stored_sessions(client, admin)] == [(sid, "live")]
    ddl(client, ALLOW_AUDIT[backend])
    again = client.post("/api/auth/refresh", json=copy)
    assert again.status_code == 401, again.text
    assert [(s["id"], s["state"]) for s in stored_sessions(client, admin)] == [(sid, "revoked")]
    kinds = [e["kind"] for e in events(client, admin, actor="theft-detection")["items"]]
    assert kinds == ["session.revoked", "refresh.reuse_detected"]
    current = {"tokenId": rotated.json()["tokenId"], "refreshToken": rotated.json()["refreshToken"]}
    assert client.post("/api/auth/refresh", json=current).status_code == 401
