"""The gateway's own routes, in process on both databases: forward auth for every dialect, introspection, revocation,
their API credential, and the settings that mount them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

import pytest
from argon2 import PasswordHasher
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.app import create_app
from sessiongate.gate.tokens import ApiTokens
from sessiongate.identity.passwords import Passwords
from sessiongate.settings import GatewaySettings, Settings
from tests.support.gate import (
    AMITY_USER,
    DIALECTS,
    FORWARD_AUTH,
    INTROSPECT,
    NETWORK,
    REVOKE,
    USER_ID,
    open_session,
    portos_refresh_token,
    provision,
    run,
)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SUBJECTS = {"amity": AMITY_USER, "issp": USER_ID, "portos": USER_ID, "saymon": USER_ID, "zelf": "device-0001"}
TENANTS = {"amity": NETWORK, "issp": "default", "portos": "default", "saymon": "default", "zelf": "default"}
# issp keeps the role its validate answers ("User" for anyone not an admin); the others carry their user's roles.
ROLE_HEADERS = {"amity": None, "issp": "User", "portos": "editor,viewer", "saymon": "editor,viewer", "zelf": None}
SLIDING = {"issp", "saymon"}


@pytest.fixture
def client(make_client):
    c = make_client()
    # Cheap argon2 parameters: hashing itself is tested with identity.
    c.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, provision, c.app.state.services)
    return c


def api_token(client, scope="introspect", name="resource-server"):
    services = client.app.state.services
    return run(client, ApiTokens(services.runner, services.digester, services.clock).add, name, scope).value


def caller(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **FORM}


def session_row(client, session_id):
    return run(client, client.app.state.services.sessions.store.by_id, session_id)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_forward_auth_answers_200_with_the_session_headers_for_each_dialect_and_method(client, dialect, method):
    headers, _ = open_session(client, dialect)
    response = client.request(method, FORWARD_AUTH, headers=headers)
    assert response.status_code == 200, response.text
    assert response.content == b""
    assert response.headers["x-dialect"] == dialect
    assert response.headers["x-subject"] == SUBJECTS[dialect]
    assert response.headers["x-tenant"] == TENANTS[dialect]
    assert response.headers.get("x-roles") == ROLE_HEADERS[dialect]
    assert response.headers["cache-control"] == "no-store"
    session = session_row(client, response.headers["x-session-id"])
    assert session.dialect == dialect
    expires = datetime.strptime(response.headers["x-session-expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert expires == session.expires_at.replace(microsecond=0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic YWRhOnB3"},
        {"Cookie": "sid=nope"},
        {"Cookie": "sessionCookie=j%3A%7B%22sessionId%22%3A%22nope%22%7D"},
        {"Cookie": "sessionCookie=garbage"},
        {"X-Session-Id": "anything", "X-Subject": "admin"},
        {"Cookie": "sessionCookie=" + quote("j:" + '{"sessionId":' + "[" * 5000)},
        {"Cookie": "sid=" + "x" * 4000},
        {"Authorization": "Bearer " + "e" * 4000},
    ],
    ids=lambda headers: ",".join(f"{k}:{v[:24]}" for k, v in headers.items()) or "none",
)
def test_forward_auth_without_a_live_session_is_401(client, headers):
    response = client.get(FORWARD_AUTH, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "x-session-id" not in response.headers


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_revoked_session_is_refused_on_the_very_next_request(client, dialect):
    headers, _ = open_session(client, dialect)
    response = client.get(FORWARD_AUTH, headers=headers)
    assert response.status_code == 200
    run(client, client.app.state.services.sessions.revoke, response.headers["x-session-id"], tenant=TENANTS[dialect])
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_expired_session_is_refused(client, clock, dialect):
    headers, _ = open_session(client, dialect)
    session = session_row(client, client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"])
    clock.advance((session.expires_at - clock.now).total_seconds() + 1)
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401


@pytest.mark.parametrize("dialect", DIALECTS)
def test_forward_auth_slides_exactly_the_dialects_that_slide(client, clock, dialect):
    headers, _ = open_session(client, dialect)
    session_id = client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]
    before = session_row(client, session_id)
    clock.advance(120)  # past every dialect's touch interval, within zelf's lifetime
    after_headers = client.get(FORWARD_AUTH, headers=headers).headers
    after = session_row(client, session_id)
    assert after.last_seen_at == clock.now  # a use is recorded, as the dialect's own routes record it
    if dialect in SLIDING:
        assert after.expires_at == before.expires_at + timedelta(seconds=120)
    else:
        assert after.expires_at == before.expires_at
    assert after_headers["x-session-expires"] == after.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_forward_auth_slides_issp_as_its_validate_does(client, clock):
    headers, _ = open_session(client, "issp")
    session_id = client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]
    clock.advance(900)
    client.get(FORWARD_AUTH, headers=headers)
    through_gate = session_row(client, session_id)
    clock.advance(900)
    validated = client.get("/api/session/validateSession", headers=headers)
    assert validated.status_code == 200
    through_validate = session_row(client, session_id)
    assert through_gate.expires_at - through_gate.last_seen_at == through_validate.expires_at - clock.now


def test_spoofed_forwarded_headers_change_nothing(client):
    headers, _ = open_session(client, "saymon")
    plain = client.get(FORWARD_AUTH, headers=headers)
    spoofed = client.get(
        FORWARD_AUTH,
        headers={
            **headers,
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "admin.example",
            "X-Forwarded-Uri": "/admin",
            "X-Forwarded-Method": "DELETE",
            "Forwarded": "for=203.0.113.9;proto=https",
        },
    )
    assert spoofed.status_code == plain.status_code == 200
    names = ("x-session-id", "x-subject", "x-dialect", "x-tenant", "x-roles")
    assert {n: spoofed.headers[n] for n in names} == {n: plain.headers[n] for n in names}
    assert client.get(FORWARD_AUTH, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 401


def test_a_credential_that_does_not_hold_does_not_hide_one_that_does(client):
    cookie, _ = open_session(client, "saymon")
    response = client.get(FORWARD_AUTH, headers={**cookie, "Authorization": "Bearer a.b.c"})
    assert response.status_code == 200
    assert response.headers["x-dialect"] == "saymon"


def test_a_subject_is_percent_encoded_so_no_header_can_be_smuggled(client):
    response = client.post("/api/sessions", json={"identifier": "dev\r\nX-Roles: admin é"})
    token = response.json()["data"]["token"]
    answer = client.get(FORWARD_AUTH, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    assert answer.headers["x-subject"] == "dev%0D%0AX-Roles:%20admin%20%C3%A9"
    assert unquote(answer.headers["x-subject"]) == "dev\r\nX-Roles: admin é"
    assert "x-roles" not in answer.headers


def test_only_enabled_dialects_are_asked(make_client):
    client = make_client(dialects=("zelf",))
    zelf, _ = open_session(client, "zelf")
    assert client.get(FORWARD_AUTH, headers=zelf).status_code == 200
    assert client.get(FORWARD_AUTH, headers={"Cookie": "sid=anything"}).status_code == 401


# --- introspection (RFC 7662) ---


@pytest.mark.parametrize("dialect", DIALECTS)
def test_introspection_describes_each_dialects_credential(client, clock, dialect):
    headers, credential = open_session(client, dialect)
    session_id = client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]
    session = session_row(client, session_id)
    response = client.post(INTROSPECT, data={"token": credential}, headers=caller(api_token(client)))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body.pop("active") is True
    assert body.pop("sid") == session_id
    assert body.pop("sub") == SUBJECTS[dialect]
    assert body.pop("client_id") == dialect
    assert body.pop("tenant") == TENANTS[dialect]
    assert body.pop("exp") <= int(session.expires_at.timestamp())
    assert body.pop("iat") <= int(clock.now.timestamp())
    assert body.pop("scope", None) == ((ROLE_HEADERS[dialect] or "").replace(",", " ") or None)
    assert body == {}


def test_a_portos_refresh_token_is_introspected_until_it_is_used(client):
    token_id, refresh = portos_refresh_token(client)
    headers = caller(api_token(client))
    for hint in (None, "refresh_token", "access_token", "something_else"):
        form = {"token": refresh} | ({"token_type_hint": hint} if hint else {})
        body = client.post(INTROSPECT, data=form, headers=headers).json()
        assert body["active"] is True
        assert body["client_id"] == "portos"
    rotated = client.post("/api/auth/refresh", json={"tokenId": token_id, "refreshToken": refresh})
    assert rotated.status_code == 200
    assert client.post(INTROSPECT, data={"token": refresh}, headers=headers).content == b'{"active":false}'
    assert client.post(INTROSPECT, data={"token": rotated.json()["refreshToken"]}, headers=headers).json()["active"]


@pytest.mark.parametrize(
    "token",
    ["nope", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA", "x" * 5000, "sgt_" + "A" * 43, "é", "%00"],
)
def test_anything_else_is_exactly_inactive(client, token):
    response = client.post(INTROSPECT, data={"token": token}, headers=caller(api_token(client)))
    assert response.status_code == 200
    assert response.content == b'{"active":false}'


@pytest.mark.parametrize("dialect", DIALECTS)
def test_revoked_and_expired_credentials_are_inactive(client, clock, dialect):
    headers, credential = open_session(client, dialect)
    token = api_token(client)
    session_id = client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]
    run(client, client.app.state.services.sessions.revoke, session_id, tenant=TENANTS[dialect])
    assert client.post(INTROSPECT, data={"token": credential}, headers=caller(token)).json() == {"active": False}
    headers, credential = open_session(client, dialect)
    session = session_row(client, client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"])
    clock.advance((session.expires_at - clock.now).total_seconds() + 1)
    assert client.post(INTROSPECT, data={"token": credential}, headers=caller(token)).json() == {"active": False}


@pytest.mark.parametrize("dialect", DIALECTS)
def test_introspection_never_slides_nor_records_a_use(client, clock, dialect):
    headers, credential = open_session(client, dialect)
    session_id = client.get(FORWARD_AUTH, headers=headers).headers["x-session-id"]
    before = session_row(client, session_id)
    token = api_token(client)
    for _ in range(3):
        clock.advance(120)
        assert client.post(INTROSPECT, data={"token": credential}, headers=caller(token)).json()["active"]
    after = session_row(client, session_id)
    assert (after.expires_at, after.last_seen_at, after.version) == (
        before.expires_at,
        before.last_seen_at,
        before.version,
    )


def test_a_session_of_a_dialect_no_longer_enabled_is_inactive(make_client, client):
    _, credential = open_session(client, "saymon")
    token = api_token(client)
    zelf_only = make_client(dialects=("zelf",))
    body = zelf_only.post(INTROSPECT, data={"token": credential}, headers=caller(token)).json()
    assert body == {"active": False}


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer nope", "Basic c2d0Xzp4", "Bearer sgt_" + "A" * 43],
)
@pytest.mark.parametrize("path", [INTROSPECT, REVOKE])
def test_callers_without_an_api_token_get_401_with_a_challenge(client, authorization, path):
    _, credential = open_session(client, "saymon")
    headers = dict(FORM) | ({"Authorization": authorization} if authorization is not None else {})
    response = client.post(path, data={"token": credential}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "active" not in response.text


def test_a_revoked_api_token_is_refused_on_the_next_request(client):
    services = client.app.state.services
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    token = api_token(client, name="soon-revoked")
    _, credential = open_session(client, "saymon")
    assert client.post(INTROSPECT, data={"token": credential}, headers=caller(token)).status_code == 200
    run(client, tokens.revoke, "soon-revoked")
    assert client.post(INTROSPECT, data={"token": credential}, headers=caller(token)).status_code == 401


def test_an_api_token_records_when_it_was_last_used_at_most_once_a_minute(client, clock):
    services = client.app.state.services
    tokens = ApiTokens(services.runner, services.digester, services.clock)
    token = api_token(client)
    first = clock.now
    for _ in range(3):
        client.post(INTROSPECT, data={"token": "x"}, headers=caller(token))
        clock.advance(10)
    assert [t.last_used_at for t in run(client, tokens.list)] == [first]
    clock.advance(60)
    client.post(INTROSPECT, data={"token": "x"}, headers=caller(token))
    assert [t.last_used_at for t in run(client, tokens.list)] == [clock.now]


def test_both_scopes_may_introspect(client):
    admin = api_token(client, scope="admin", name="operator")
    assert client.post(INTROSPECT, data={"token": "x"}, headers=caller(admin)).json() == {"active": False}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("", FORM["Content-Type"], 400),
        ("token=", FORM["Content-Type"], 400),
        ("token_type_hint=access_token", FORM["Content-Type"], 400),
        ("token=a&token=b", FORM["Content-Type"], 400),
        ('{"token": "x"}', "application/json", 415),
        ("token=x", None, 415),
        (b"token=\xff", FORM["Content-Type"], 400),
    ],
)
@pytest.mark.parametrize("path", [INTROSPECT, REVOKE])
def test_malformed_requests_are_refused_in_problem_details(client, body, content_type, status, path):
    headers = {"Authorization": f"Bearer {api_token(client)}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# --- revocation (RFC 7009) ---


@pytest.mark.parametrize("dialect", DIALECTS)
def test_revoking_a_credential_ends_its_session_everywhere(client, dialect):
    headers, credential = open_session(client, dialect)
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 200
    token = api_token(client)
    response = client.post(REVOKE, data={"token": credential}, headers=caller(token))
    assert response.status_code == 200
    assert response.content == b""
    assert client.get(FORWARD_AUTH, headers=headers).status_code == 401
    assert client.post(REVOKE, data={"token": credential}, headers=caller(token)).status_code == 200


def test_revoking_a_portos_refresh_token_ends_its_login(client):
    token_id, refresh = portos_refresh_token(client)
    response = client.post(
        REVOKE, data={"token": refresh, "token_type_hint": "refresh_token"}, headers=caller(api_token(client))
    )
    assert response.status_code == 200
    assert client.get(FORWARD_AUTH, headers={"Authorization": f"Bearer {token_id}"}).status_code == 401
    assert client.post("/api/auth/refresh", json={"tokenId": token_id, "refreshToken": refresh}).status_code == 401


@pytest.mark.parametrize("token", ["nope", "a.b.c", "x" * 5000])
def test_revoking_an_unknown_token_is_200(client, token):
    assert client.post(REVOKE, data={"token": token}, headers=caller(api_token(client))).status_code == 200


# --- settings ---


def test_the_prefix_is_configurable(make_client):
    client = make_client(dialects=("zelf",), gateway=GatewaySettings(prefix="/gate/v1"))
    zelf, _ = open_session(client, "zelf")
    assert client.get("/gate/v1/forward-auth", headers=zelf).status_code == 200
    assert client.get(FORWARD_AUTH, headers=zelf).status_code == 404


def test_the_gateway_routes_can_be_turned_off(make_client):
    client = make_client(dialects=("zelf",), gateway=GatewaySettings(enabled=False))
    zelf, _ = open_session(client, "zelf")
    assert client.get(FORWARD_AUTH, headers=zelf).status_code == 404
    assert client.get("/docs/gateway/openapi.yaml").status_code == 404


def test_a_prefix_a_dialect_serves_under_is_refused(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/clash.db", gateway=GatewaySettings(prefix="/api"))
    with pytest.raises(ImproperlyConfiguredException, match="under the gateway's prefix"):
        create_app(settings)


def test_the_gateway_spec_is_served_in_docs(client):
    assert client.get("/docs/gateway/openapi.yaml").status_code == 200
    assert "gateway" in client.get("/docs/").text


@pytest.mark.parametrize("value", ["gate", "/gate/", "", "/a//b"])
def test_a_bad_prefix_is_a_settings_error(value):
    with pytest.raises(ValueError, match="gateway prefix"):
        GatewaySettings(prefix=value)
