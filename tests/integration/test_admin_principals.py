"""The admin API's principals, in process on both databases: listed in keyset pages, read, created, disabled, enabled,
given a password and deleted with the CLI's checks; each change ends what it must in the dialects at once and is an
audit event naming the admin token."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from sessiongate.cli import cli
from sessiongate.identity.passwords import Passwords
from tests.support.gate import FORWARD_AUTH, LOGIN, PASSWORD, PREFIX, USER_ID, open_session, provision, run
from tests.support.gate import api_token as token

PRINCIPALS = f"{PREFIX}/admin/principals"
AUDIT = f"{PREFIX}/admin/audit-events"
NEW_PASSWORD = "a long and new passphrase 7"


@pytest.fixture
def client(make_client):
    c = make_client()
    c.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, provision, c.app.state.services)
    return c


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {token(client, 'admin')}"}


def kinds(client, admin, principal_id):
    response = client.get(AUDIT, params={"principal_id": principal_id}, headers=admin)
    assert response.status_code == 200
    return [(e["kind"], e["actor"]) for e in response.json()["items"]]


def test_only_an_admin_token_reaches_principals(client):
    introspect = {"Authorization": f"Bearer {token(client, 'introspect')}"}
    assert client.get(PRINCIPALS).status_code == 401
    assert client.get(PRINCIPALS, headers=introspect).status_code == 403
    assert client.post(PRINCIPALS, json={"login": "x"}, headers=introspect).status_code == 403


def test_a_created_principal_logs_in_and_is_listed_newest_first_in_stable_pages(client, admin):
    made = []
    for n in range(5):
        body = {"login": f"user-{n}@example.com", "id": f"user-{n}", "roles": ["staff"], "password": NEW_PASSWORD}
        response = client.post(PRINCIPALS, json=body, headers=admin)
        assert response.status_code == 201, response.text
        shown = response.json()
        assert shown["id"] == f"user-{n}"
        assert shown["has_password"] is True
        assert "password" not in shown
        assert "password_hash" not in shown
        made.append(shown["id"])
    login = client.post("/node/api/users/session", json={"login": "user-3@example.com", "password": NEW_PASSWORD})
    assert login.status_code == 200
    seen, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get(PRINCIPALS, params=params, headers=admin).json()
        seen.extend(p["id"] for p in page["items"])
        if cursor is None:  # a principal made between pages is newer than the walk: never seen twice, none skipped
            client.post(PRINCIPALS, json={"login": "late@example.com"}, headers=admin)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [*reversed(made), USER_ID]
    assert ("principal.created", "admin-token:operator") in kinds(client, admin, "user-0")


@pytest.mark.parametrize(
    "body",
    [
        {"login": "weak@example.com", "password": "short"},
        {"login": "weak@example.com", "password": "weak@example.com"},
        {"login": "weak@example.com", "password": "password1234"},
        {"login": "weak@example.com", "password": "x" * 2000},
        {"login": ""},
        {"login": "a\x00b"},
        {"login": "weak@example.com", "unknown": 1},
        {"login": "weak@example.com", "roles": "admin"},
    ],
)
def test_the_cli_password_policy_and_bounds_hold_for_a_created_principal(client, admin, body):
    response = client.post(PRINCIPALS, json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert client.get(f"{PRINCIPALS}/weak@example.com", headers=admin).status_code == 404


def test_a_taken_login_or_id_is_409(client, admin):
    assert client.post(PRINCIPALS, json={"login": LOGIN}, headers=admin).status_code == 409
    assert client.post(PRINCIPALS, json={"login": "other", "id": USER_ID}, headers=admin).status_code == 409


def test_disabling_ends_its_sessions_at_once_and_enabling_lets_it_log_in_again(client, admin):
    headers, _ = open_session(client, "saymon")
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 200
    response = client.post(f"{PRINCIPALS}/{USER_ID}/disable", headers=admin)
    assert response.status_code == 200
    assert response.json()["disabled"] is True
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    refused = client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD})
    assert refused.status_code == 403  # saymon's answer to a disabled user
    assert client.post(f"{PRINCIPALS}/{USER_ID}/disable", headers=admin).json()["disabled"] is True
    response = client.post(f"{PRINCIPALS}/{USER_ID}/enable", headers=admin)
    assert response.json()["disabled"] is False
    assert client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD}).status_code == 200
    found = kinds(client, admin, USER_ID)
    assert ("principal.disabled", "admin-token:operator") in found
    assert ("principal.enabled", "admin-token:operator") in found


def test_a_password_set_by_an_admin_replaces_the_old_one_and_ends_its_sessions(client, admin):
    headers, _ = open_session(client, "saymon")
    weak = client.post(f"{PRINCIPALS}/{USER_ID}/password", json={"password": "short"}, headers=admin)
    assert weak.status_code == 400
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 200
    response = client.post(f"{PRINCIPALS}/{USER_ID}/password", json={"password": NEW_PASSWORD}, headers=admin)
    assert response.status_code == 200
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    assert client.post("/node/api/users/session", json={"login": LOGIN, "password": PASSWORD}).status_code == 401
    assert client.post("/node/api/users/session", json={"login": LOGIN, "password": NEW_PASSWORD}).status_code == 200
    assert ("principal.password_set", "admin-token:operator") in kinds(client, admin, USER_ID)
    events = client.get(AUDIT, params={"kind": "principal.password_set"}, headers=admin).text
    assert NEW_PASSWORD not in events


def test_a_deleted_principal_is_gone_its_sessions_ended_and_a_second_delete_is_404(client, admin):
    headers, _ = open_session(client, "saymon")
    assert client.delete(f"{PRINCIPALS}/{USER_ID}", headers=admin).status_code == 204
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    assert client.get(f"{PRINCIPALS}/{USER_ID}", headers=admin).status_code == 404
    assert client.delete(f"{PRINCIPALS}/{USER_ID}", headers=admin).status_code == 404
    assert ("principal.deleted", "admin-token:operator") in kinds(client, admin, USER_ID)


def test_a_principal_is_named_in_its_tenant(client, admin):
    assert client.get(f"{PRINCIPALS}/{USER_ID}", headers=admin).json()["login"] == LOGIN
    assert client.get(f"{PRINCIPALS}/{USER_ID}", params={"tenant": "acme"}, headers=admin).status_code == 404
    assert client.get(PRINCIPALS, params={"tenant": "acme"}, headers=admin).json()["items"] == []


@pytest.mark.parametrize("principal_id", [".", ".."])
def test_an_id_no_url_path_can_name_is_refused_by_the_api_and_the_cli(
    client, admin, principal_id, database_url, monkeypatch
):
    refused = client.post(PRINCIPALS, json={"login": "dot@example.com", "id": principal_id}, headers=admin)
    assert refused.status_code == 400
    assert "no URL path can name it" in refused.json()["detail"]
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    cli_refused = CliRunner().invoke(cli, ["users", "add", "--login", "dot@example.com", "--id", principal_id])
    assert cli_refused.exit_code == 2
    assert "no URL path can name it" in cli_refused.stderr
    listed = client.get(PRINCIPALS, headers=admin).json()["items"]
    assert "dot@example.com" not in [p["login"] for p in listed]
