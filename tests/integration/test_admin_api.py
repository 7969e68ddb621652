"""The admin API's sessions, in process on both databases: only an admin-scope API token gets in; sessions of every
dialect are listed (keyset pages that stay stable while rows come and go, filters), read and revoked, and a revoke is
refused by the dialect at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from sessiongate.gate.tokens import ApiTokens
from sessiongate.identity.passwords import Passwords
from tests.support.gate import DIALECTS, FORWARD_AUTH, PREFIX, USER_ID, api_token, open_session, provision, run

SESSIONS = f"{PREFIX}/admin/sessions"
REVOKE_PRINCIPAL = f"{PREFIX}/admin/revoke-principal-sessions"
TENANTS = {"amity": "acme", "issp": "default", "portos": "default", "saymon": "default", "zelf": "default"}


@pytest.fixture
def client(make_client):
    c = make_client()
    c.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, provision, c.app.state.services)
    return c


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {api_token(client)}"}


def session_id(client, headers):
    response = client.get(FORWARD_AUTH, headers=headers)
    assert response.status_code == 200
    return response.headers["x-session-id"]


def zelf_sessions(client, count, prefix="device"):
    ids = []
    for n in range(count):
        token = client.post("/api/sessions", json={"identifier": f"{prefix}-{n}"}).json()["data"]["token"]
        ids.append(session_id(client, {"Authorization": f"Bearer {token}"}))
    return ids


def all_pages(client, admin, **params):
    seen, cursor = [], None
    while True:
        query = params | ({"cursor": cursor} if cursor else {})
        response = client.get(SESSIONS, params=query, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


# --- who gets in ---


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer nope", "Basic c2d0Xzp4", "Bearer sgt_" + "A" * 43]
)
def test_without_an_admin_token_the_admin_api_is_401_with_a_challenge(client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for response in (
        client.get(SESSIONS, headers=headers),
        client.get(f"{SESSIONS}/x", headers=headers),
        client.post(f"{SESSIONS}/x/revoke", headers=headers),
        client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
        assert response.headers["content-type"].startswith("application/problem+json")


def test_an_introspect_token_gets_403_and_changes_nothing(client):
    headers, _ = open_session(client, "saymon")
    sid = session_id(client, headers)
    introspect = {"Authorization": f"Bearer {api_token(client, scope='introspect', name='resource-server')}"}
    assert client.get(SESSIONS, headers=introspect).status_code == 403
    assert client.post(f"{SESSIONS}/{sid}/revoke", headers=introspect).status_code == 403
    assert client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=introspect).status_code == 403
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 200


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_dialect_session_authenticates_to_the_admin_api(client, dialect):
    headers, _ = open_session(client, dialect)
    assert client.get(SESSIONS, headers=headers).status_code == 401


def test_a_revoked_admin_token_is_refused_on_the_next_request(client):
    services = client.app.state.services
    token = api_token(client, name="soon-gone")
    assert client.get(SESSIONS, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    run(client, ApiTokens(services.runner, services.digester, services.clock).revoke, "soon-gone")
    assert client.get(SESSIONS, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_the_guard_answers_before_any_parameter_is_read(client):
    assert client.get(SESSIONS, params={"limit": "many"}).status_code == 401


# --- listing ---


def test_sessions_of_every_dialect_are_listed_newest_first_without_secrets(client, admin):
    opened = {dialect: session_id(client, open_session(client, dialect)[0]) for dialect in DIALECTS}
    body = client.get(SESSIONS, headers=admin).json()
    assert [item["id"] for item in body["items"]] == list(reversed(opened.values()))
    assert body["next_cursor"] is None
    for item in body["items"]:
        assert opened[item["dialect"]] == item["id"]
        assert item["tenant"] == TENANTS[item["dialect"]]
        assert item["state"] == "live"
        assert set(item) == {
            "id",
            "tenant",
            "dialect",
            "principal_id",
            "subject",
            "client_address",
            "device",
            "created_at",
            "last_seen_at",
            "expires_at",
            "absolute_expires_at",
            "revoked_at",
            "state",
        }
    assert client.get(SESSIONS, headers=admin).headers["cache-control"] == "no-store"


def test_keyset_pages_stay_stable_while_sessions_are_added_and_revoked(client, admin):
    first = zelf_sessions(client, 7)
    page = client.get(SESSIONS, params={"limit": 3, "state": "live"}, headers=admin).json()
    assert [i["id"] for i in page["items"]] == first[::-1][:3]
    added = zelf_sessions(client, 2, prefix="later")  # newer than every page: never in this walk
    revoked = first[1]  # on a later page: gone from a listing of live sessions
    assert client.post(f"{SESSIONS}/{revoked}/revoke", headers=admin).status_code == 200
    assert client.post(f"{SESSIONS}/{first[5]}/revoke", headers=admin).status_code == 200  # on the page already read
    rest = all_pages(client, admin, limit=3, state="live", cursor=page["next_cursor"])
    assert rest == [sid for sid in first[::-1][3:] if sid != revoked]
    everything = all_pages(client, admin, limit=2)
    assert everything == (first + added)[::-1]
    assert len(set(everything)) == len(everything)


@pytest.mark.parametrize("cursor", ["nope", "", "AAAA", "é", "x" * 5000, "AQ"])
def test_a_cursor_the_api_did_not_give_is_400(client, admin, cursor):
    response = client.get(SESSIONS, params={"cursor": cursor}, headers=admin)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_filters_narrow_the_listing(client, admin, clock):
    carried = {dialect: open_session(client, dialect)[0] for dialect in DIALECTS}
    ids = {dialect: session_id(client, headers) for dialect, headers in carried.items()}

    def listed(**params):
        return {item["id"] for item in client.get(SESSIONS, params=params, headers=admin).json()["items"]}

    assert listed(dialect="portos") == {ids["portos"]}
    assert listed(tenant="acme") == {ids["amity"]}
    assert listed(principal_id=USER_ID) == {ids["issp"], ids["saymon"], ids["portos"]}
    assert listed(device_id="phone-0001") == {ids["amity"]}
    zelf_address = client.get(f"{SESSIONS}/{ids['zelf']}", headers=admin).json()["client_address"]
    assert zelf_address is not None
    assert ids["zelf"] in listed(client_address=zelf_address)
    assert listed(client_address="203.0.113.7") == set()
    now = clock.now.isoformat()
    assert listed(created_before=now) == set()
    assert listed(created_after=now) == set(ids.values())
    assert listed(created_after=clock.now.strftime("%Y-%m-%dt%H:%M:%S.%fz")) == set(ids.values())  # RFC 3339 5.6
    clock.advance(120)
    client.get(FORWARD_AUTH, headers=carried["saymon"])  # a use, recorded past the touch interval
    assert listed(last_seen_after=clock.now.isoformat()) == {ids["saymon"]}
    assert listed(last_seen_before=clock.now.isoformat()) == set(ids.values()) - {ids["saymon"]}
    client.post(f"{SESSIONS}/{ids['issp']}/revoke", headers=admin)
    assert listed(state="revoked") == {ids["issp"]}
    assert ids["issp"] not in listed(state="live")
    assert listed(state="expired") == set()
    assert listed(dialect="saymon", principal_id="nobody") == set()


def test_an_expired_session_is_listed_as_expired(client, admin, clock):
    headers, _ = open_session(client, "zelf")
    sid = session_id(client, headers)
    session = client.get(f"{SESSIONS}/{sid}", headers=admin).json()
    clock.advance(timedelta(days=400).total_seconds())
    assert client.get(f"{SESSIONS}/{sid}", headers=admin).json()["state"] == "expired"
    assert [i["id"] for i in client.get(SESSIONS, params={"state": "expired"}, headers=admin).json()["items"]] == [
        session["id"]
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "\u0661"},
        {"state": "dead"},
        {"created_after": "yesterday"},
        {"created_after": "2026-01-01T00:00:00"},
        {"created_after": "2026-01-01"},
        {"last_seen_before": "2026-13-01T00:00:00Z"},
        {"tenant": "a\x00b"},
        {"principal_id": "x" * 2000},
    ],
)
def test_bad_parameters_are_400_in_problem_details(client, admin, params):
    response = client.get(SESSIONS, params=params, headers=admin)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- one session ---


def test_one_session_is_read_and_an_unknown_one_is_404(client, admin):
    sid = session_id(client, open_session(client, "portos")[0])
    body = client.get(f"{SESSIONS}/{sid}", headers=admin).json()
    assert (body["id"], body["dialect"], body["principal_id"], body["state"]) == (sid, "portos", USER_ID, "live")
    for unknown in ("nope", "0198c2f4-6a0b-7e21-8c3d-2e4f6a8b0c1d", "%00"):
        response = client.get(f"{SESSIONS}/{unknown}", headers=admin)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert client.post(f"{SESSIONS}/{unknown}/revoke", headers=admin).status_code == 404


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_revoke_is_idempotent_and_refused_at_once_by_the_dialect(client, admin, dialect):
    headers, _ = open_session(client, dialect)
    sid = session_id(client, headers)
    first = client.post(f"{SESSIONS}/{sid}/revoke", headers=admin)
    assert first.status_code == 200
    assert first.json()["state"] == "revoked"
    again = client.post(f"{SESSIONS}/{sid}/revoke", headers=admin)
    assert again.status_code == 200
    assert again.json() == first.json()
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    assert dialect_refuses(client, dialect, headers, sid)


def dialect_refuses(client, dialect, headers, sid) -> bool:
    # Each dialect's own route that needs the session, as its clients call it.
    if dialect == "issp":
        return client.get("/api/session/validateSession", headers=headers).status_code == 400
    if dialect == "saymon":
        return client.get("/node/api/users/current", headers=headers).status_code == 401
    if dialect == "portos":
        return client.get("/api/auth", headers=headers).status_code == 401
    if dialect == "amity":
        return client.get("/api/v3/sessions", headers=headers).status_code == 401
    # zelf's one route hands the same device its live session again: a revoked one is never handed back.
    token = client.post("/api/sessions", json={"identifier": "device-0001"}).json()["data"]["token"]
    return session_id(client, {"Authorization": f"Bearer {token}"}) != sid


# --- a principal's sessions ---


def test_every_session_of_a_principal_is_revoked_in_every_dialect_but_the_one_kept(client, admin):
    opened = {d: open_session(client, d)[0] for d in ("issp", "saymon", "portos")}
    other = open_session(client, "zelf")[0]
    keep = session_id(client, opened["saymon"])
    body = {"principal_id": USER_ID, "except_session_id": keep}
    response = client.post(REVOKE_PRINCIPAL, json=body, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"revoked": 2}
    assert client.get(FORWARD_AUTH, headers=opened["saymon"]).status_code == 200
    assert client.get(FORWARD_AUTH, headers=opened["issp"]).status_code == 401
    assert client.get(FORWARD_AUTH, headers=opened["portos"]).status_code == 401
    assert client.get(FORWARD_AUTH, headers=other).status_code == 200
    assert client.post(REVOKE_PRINCIPAL, json=body, headers=admin).json() == {"revoked": 0}
    assert client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=admin).json() == {"revoked": 1}
    assert client.get(FORWARD_AUTH, headers=opened["saymon"]).status_code == 401
    assert client.post(REVOKE_PRINCIPAL, json={"principal_id": USER_ID}, headers=admin).json() == {"revoked": 0}


def test_the_session_kept_must_be_the_principals(client, admin):
    mine = open_session(client, "saymon")[0]
    someone_else = session_id(client, open_session(client, "zelf")[0])
    body = {"principal_id": USER_ID, "except_session_id": someone_else}
    response = client.post(REVOKE_PRINCIPAL, json=body, headers=admin)
    assert response.status_code == 404
    assert client.get(FORWARD_AUTH, headers=mine).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("", 400),
        ("{}", 400),
        ('{"principal_id": 1}', 400),
        ('{"principal_id": "a", "extra": 1}', 400),
        ('{"principal_id": "a\\u0000"}', 400),
        ("[" * 5000, 400),
        ("principal_id=a", 415),
    ],
)
def test_a_bad_revoke_body_is_refused_in_problem_details(client, admin, body, status):
    media = "application/x-www-form-urlencoded" if status == 415 else "application/json"
    response = client.post(REVOKE_PRINCIPAL, content=body, headers={**admin, "Content-Type": media})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", [SESSIONS, f"{SESSIONS}/x", f"{SESSIONS}/x/revoke", REVOKE_PRINCIPAL])
def test_options_lists_the_methods_without_a_token_and_reads_nothing(client, path):
    response = client.options(path)
    assert response.status_code == 204
    assert response.headers["allow"]
    assert response.content == b""
