"""The admin API's auth tokens of principals, in process on both databases: made for a principal named by its public
id and shown once, a token logs in through saymon and is refused from the very next login after a revoke; ``replace``
revokes the others; revokes are idempotent and count each token once however many run at once; each change is an
audit event that never holds the token; the CLI and the API change the same tokens and record the same events."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from sessiongate.cli import cli
from sessiongate.identity.passwords import Passwords
from sessiongate.sessions.audit import KINDS
from sessiongate.storage.audit_table import AuditEventRecord
from tests.support.gate import LOGIN, PASSWORD, PREFIX, USER_ID, run
from tests.support.gate import api_token as token

PRINCIPALS = f"{PREFIX}/admin/principals"
TOKENS = f"{PRINCIPALS}/{USER_ID}/auth-tokens"
REVOKE = f"{TOKENS}/revoke"
AUDIT = f"{PREFIX}/admin/audit-events"
SAYMON_LOGIN = "/node/api/users/session"


@pytest.fixture
def client(make_client):
    c = make_client(dialects=("saymon",))
    services = c.app.state.services
    services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, services.identity.add_principal, tenant="default", login=LOGIN, principal_id=USER_ID, password=PASSWORD)
    return c


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {token(client, 'admin')}"}


def make(client, admin, **body):
    response = client.post(TOKENS, json=body, headers=admin) if body else client.post(TOKENS, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def revoke(client, admin):
    response = client.post(REVOKE, headers=admin)
    assert response.status_code == 200, response.text
    return response.json()["revoked"]


def saymon_login(client, auth_token):
    response = client.post(SAYMON_LOGIN, json={"auth-token": auth_token})
    client.cookies.clear()
    return response.status_code


def events(client, admin, kind):
    response = client.get(AUDIT, params={"kind": kind}, headers=admin)
    assert response.status_code == 200
    return response.json()["items"]


def test_every_audit_kind_fits_its_column():
    assert max(map(len, KINDS)) <= AuditEventRecord.__table__.c.kind.type.length


def test_only_an_admin_token_reaches_auth_tokens(client):
    introspect = {"Authorization": f"Bearer {token(client, 'introspect', 'reader')}"}
    for path in (TOKENS, REVOKE):
        no_token = client.post(path)
        assert no_token.status_code == 401
        assert no_token.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
        assert client.post(path, headers=introspect).status_code == 403
    assert events(client, {"Authorization": f"Bearer {token(client, 'admin')}"}, "auth_token.created") == []


def test_a_token_made_through_the_api_logs_in_through_saymon_until_revoked_and_is_never_shown_again(client, admin):
    made = make(client, admin)
    value = made["token"]
    assert (made["tenant"], made["principal_id"], made["replaced"]) == ("default", USER_ID, False)
    assert saymon_login(client, value) == 200

    assert revoke(client, admin) == 1
    assert saymon_login(client, value) == 401
    assert revoke(client, admin) == 0  # idempotent: nothing left to revoke

    audit = client.get(AUDIT, headers=admin)
    assert value not in audit.text
    assert value not in client.get(f"{PRINCIPALS}/{USER_ID}", headers=admin).text
    created = events(client, admin, "auth_token.created")
    assert [(e["actor"], e["tenant"], e["principal_id"], e["detail"]) for e in created] == [
        ("admin-token:operator", "default", USER_ID, {"login": LOGIN, "replace": False})
    ]
    revoked = events(client, admin, "auth_token.revoked")
    assert [(e["principal_id"], e["detail"]["revoked"]) for e in revoked] == [(USER_ID, 0), (USER_ID, 1)]


def test_replace_revokes_the_principals_other_tokens(client, admin):
    first, second = make(client, admin)["token"], make(client, admin, replace=False)["token"]
    assert saymon_login(client, first) == saymon_login(client, second) == 200
    third = make(client, admin, replace=True)
    assert third["replaced"] is True
    assert (saymon_login(client, first), saymon_login(client, second)) == (401, 401)
    assert saymon_login(client, third["token"]) == 200
    assert [e["detail"]["replace"] for e in events(client, admin, "auth_token.created")] == [True, False, False]
    assert revoke(client, admin) == 1


def test_parallel_revokes_all_answer_200_and_count_each_token_once(client, admin):
    for _ in range(5):
        make(client, admin)
    counts: list[int] = []
    statuses: list[int] = []

    def one() -> None:
        response = client.post(REVOKE, headers=admin)
        statuses.append(response.status_code)
        counts.append(response.json()["revoked"])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert sum(counts) == 5
    assert sorted(e["detail"]["revoked"] for e in events(client, admin, "auth_token.revoked")) == sorted(counts)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (f"{PRINCIPALS}/nobody/auth-tokens", {}),
        (TOKENS, {"tenant": "elsewhere"}),
        (f"{PRINCIPALS}/nobody/auth-tokens/revoke", {}),
        (REVOKE, {"tenant": "elsewhere"}),
    ],
)
def test_an_unknown_principal_is_404_and_nothing_is_made_or_recorded(client, admin, path, params):
    refused = client.post(path, params=params, headers=admin)
    assert refused.status_code == 404, refused.text
    assert events(client, admin, "auth_token.created") == events(client, admin, "auth_token.revoked") == []


@pytest.mark.parametrize("body", [{"replace": "yes"}, {"replace": 1}, {"other": True}, [True], "x", {"replace": None}])
def test_a_body_that_is_not_the_replace_flag_is_400_and_makes_nothing(client, admin, body):
    refused = client.post(TOKENS, json=body, headers=admin)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert revoke(client, admin) == 0
    assert events(client, admin, "auth_token.created") == []


@pytest.mark.parametrize("params", [{"tenant": "\x00"}, {"tenant": "x" * 1025}])
def test_a_tenant_no_principal_can_have_is_400(client, admin, params):
    assert client.post(TOKENS, params=params, headers=admin).status_code == 400
    assert client.post(REVOKE, params=params, headers=admin).status_code == 400


def test_the_cli_and_the_api_change_the_same_tokens_and_record_the_same_events(
    client, admin, database_url, monkeypatch
):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    added = CliRunner().invoke(cli, ["tokens", "add", "--login", LOGIN])
    assert added.exit_code == 0, added.output
    cli_token = added.stdout.strip()
    assert saymon_login(client, cli_token) == 200
    api_token = make(client, admin)["token"]

    revoked = CliRunner().invoke(cli, ["tokens", "revoke", "--login", LOGIN])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked 2 auth tokens" in revoked.stdout
    assert (saymon_login(client, cli_token), saymon_login(client, api_token)) == (401, 401)
    replaced = CliRunner().invoke(cli, ["tokens", "add", "--login", LOGIN, "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert revoke(client, admin) == 1

    created = events(client, admin, "auth_token.created")
    assert [(e["actor"], e["principal_id"], e["detail"]) for e in created] == [
        ("cli", USER_ID, {"login": LOGIN, "replace": True}),
        ("admin-token:operator", USER_ID, {"login": LOGIN, "replace": False}),
        ("cli", USER_ID, {"login": LOGIN, "replace": False}),
    ]
    revokes = events(client, admin, "auth_token.revoked")
    assert [(e["actor"], e["detail"]["revoked"]) for e in revokes] == [("admin-token:operator", 1), ("cli", 2)]
    audit = client.get(AUDIT, headers=admin).text
    assert cli_token not in audit
    assert api_token not in audit
