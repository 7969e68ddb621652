from __future__ import annotations

import base64
import functools
import json
import logging
import re
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from sessiongate.core.models import NewSession
from tests.conftest import ROOT

EXAMPLES = ROOT / "contracts" / "saymon" / "examples"
SESSION = "/node/api/users/session"
CURRENT = "/node/api/users/current"
VERIFY = "/node/api/users/session/verify/"
LOGIN, PASSWORD = "user.name@example.com", "P665bPVi"  # the seed's sample credentials
OBJECT_ID = "5e21b752308c3c66d64e072c"  # S5's sample user id
SID = re.compile(r"^[A-Za-z0-9_-]{43}$")
DAY = 86400
FORM = "application/x-www-form-urlencoded"
MAX_LIFETIME = 7 * DAY  # the default cap


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def run(client, fn, /, **kwargs):
    return client.blocking_portal.call(functools.partial(fn, **kwargs))


def add_user(client, login=LOGIN, password=PASSWORD, principal_id=OBJECT_ID, permissions=("manage-objects",)):
    return run(
        client,
        client.app.state.services.identity.add_principal,
        tenant="default",
        login=login,
        principal_id=principal_id,
        email=None,
        display_name=None,
        roles=(),
        permissions=permissions,
        password=password,
    )


def basic(login=LOGIN, password=PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def log_in(client, login=LOGIN, password=PASSWORD) -> str:
    response = client.post(SESSION, json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def session_id_of(client, sid: str) -> str:
    services = client.app.state.services
    plugin = client.app.state.dialects["saymon"]
    session = run(client, services.sessions.resolve_secret, secret=sid, policy=plugin.expiry_policy())
    return session.id


@pytest.fixture
def client(make_client):
    c = make_client(dialects=("saymon",))
    add_user(c)
    c.cookies.clear()
    return c


def test_login_returns_the_session_id_as_a_quoted_json_string_and_a_sid_cookie(client):
    response = client.post(SESSION, json=example("create-session.request.json"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.content[:1] == response.content[-1:] == b'"'
    sid = response.json()
    assert SID.fullmatch(sid)
    assert response.headers["set-cookie"].startswith(f"sid={sid}; Max-Age={MAX_LIFETIME}; Path=/; Expires=")
    assert response.headers["set-cookie"].endswith("; HttpOnly; SameSite=Lax")


def test_login_response_is_shaped_like_the_seed_sample(client):
    sample = example("create-session.response.json")
    body = client.post(SESSION, json=example("create-session.request.json")).json()
    assert type(body) is type(sample) is str


def test_each_login_opens_a_new_session(client):
    assert log_in(client) != log_in(client)


def test_cookie_is_secure_when_configured(make_client):
    client = make_client(dialects=("saymon",), secure_cookies=True)
    add_user(client)
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD})
    assert response.headers["set-cookie"].endswith("; HttpOnly; Secure; SameSite=Lax")


def test_cookie_is_secure_when_the_request_came_over_tls(make_client):
    client = make_client(dialects=("saymon",))
    add_user(client)
    response = client.post("https://testserver" + SESSION, json={"login": LOGIN, "password": PASSWORD})
    assert response.headers["set-cookie"].endswith("; HttpOnly; Secure; SameSite=Lax")


def test_the_sid_cookie_authenticates_get_current_user(client):
    sid = log_in(client)
    response = client.get(CURRENT, headers={"Cookie": f"sid={sid}"})
    assert response.status_code == 200
    assert response.json() == {
        "id": OBJECT_ID,
        "login": LOGIN,
        "group": None,
        "authenticationToken": None,
        "status": 2,
        "eventFilter": [],
        "permissions": ["manage-objects"],
        "contacts": [],
    }


def test_current_user_has_the_members_of_the_vendor_sample_in_its_order(client):
    sid = log_in(client)
    body = client.get(CURRENT, headers={"X-Session-Id": sid}).json()
    assert list(body) == list(example("current-user.response.json"))


def test_the_cookie_set_at_login_is_used_by_a_cookie_jar(client):
    log_in(client)
    assert client.get(CURRENT).status_code == 200


def test_x_session_id_header_authenticates(client):
    sid = log_in(client)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).json()["login"] == LOGIN


def test_with_two_valid_ids_the_header_names_the_session(client):
    first, second = log_in(client), log_in(client)
    client.cookies.clear()
    response = client.delete(SESSION, headers={"X-Session-Id": second, "Cookie": f"sid={first}"})
    assert response.status_code == 200
    assert client.get(VERIFY + first, headers={"X-Session-Id": first}).json() is True
    assert client.get(VERIFY + second, headers={"X-Session-Id": first}).json() is None


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Session-Id": "nonsense", "Cookie": "sid={sid}"},
        {"X-Session-Id": "{sid}", "Cookie": "sid=nonsense"},
        {"X-Session-Id": "{sid}", "Authorization": "Basic " + base64.b64encode(b"user.name@example.com:x").decode()},
        {"Cookie": "sid={sid}", "Authorization": "Bearer abc"},
    ],
)
def test_every_credential_sent_must_hold(client, headers):
    sid = log_in(client)
    client.cookies.clear()
    response = client.get(CURRENT, headers={k: v.format(sid=sid) for k, v in headers.items()})
    assert response.status_code == 401
    assert response.json()["code"] in {"Unauthorized", "InvalidCredentials"}


def test_a_session_id_and_basic_credentials_that_both_hold_are_accepted(client):
    sid = log_in(client)
    client.cookies.clear()
    assert client.get(CURRENT, headers={"X-Session-Id": sid, **basic()}).status_code == 200


def test_an_id_still_in_its_quotes_is_accepted(client):
    quoted = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}).text
    assert client.get(CURRENT, headers={"Cookie": f"sid={quoted}"}).status_code == 200
    assert client.get(CURRENT, headers={"X-Session-Id": quoted}).status_code == 200
    assert client.get(VERIFY + quoted, headers=basic()).json() is True


def test_principal_ids_that_are_not_object_ids_are_shown_as_a_stable_24_hex_digest(make_client):
    client = make_client(dialects=("saymon",))
    add_user(client, login="other", principal_id="user-42")
    first = client.get(CURRENT, headers=basic("other")).json()["id"]
    assert re.fullmatch(r"[0-9a-f]{24}", first)
    assert first == client.get(CURRENT, headers=basic("other")).json()["id"]


def test_basic_auth_authenticates_get_current_user_without_opening_a_session(client):
    response = client.get(CURRENT, headers=basic())
    assert response.status_code == 200
    assert response.json()["login"] == LOGIN
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "headers",
    [
        basic(password="wrong"),
        basic(login="nobody"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"Authorization": b"Basic \xe9"},  # not ASCII, so not base64: the decoder raises ValueError itself
        {"Authorization": "Basic " + base64.b64encode(b"\xff:\xfe").decode()},  # not UTF-8 once decoded
    ],
)
def test_bad_basic_credentials_get_invalid_credentials(client, headers):
    response = client.get(CURRENT, headers=headers)
    assert (response.status_code, response.json()) == (401, example("error-invalid-credentials.response.json"))


def test_no_credentials_get_not_logged_in(client):
    response = client.get(CURRENT)
    assert (response.status_code, response.json()) == (401, example("error-not-logged-in.response.json"))
    assert response.headers["content-type"].startswith("application/json")


def test_other_authorization_schemes_are_credentials_that_do_not_hold(client):
    response = client.get(CURRENT, headers={"Authorization": "Bearer abc"})
    assert (response.status_code, response.json()) == (401, example("error-invalid-credentials.response.json"))


def test_an_unknown_session_id_gets_session_expired(client):
    response = client.get(CURRENT, headers={"Cookie": "sid=a5f946dc-4c21-4ccd-b78b-f0a5fce94f4d"})
    assert (response.status_code, response.json()) == (401, example("error-session-expired.response.json"))


def test_an_empty_sid_cookie_counts_as_none(client):
    response = client.get(CURRENT, headers={"Cookie": 'sid=""'})
    assert (response.status_code, response.json()) == (401, example("error-not-logged-in.response.json"))


def test_wrong_password_and_unknown_login_get_the_vendors_invalid_credentials_error(client):
    for body in ({"login": LOGIN, "password": "wrong"}, {"login": "nobody", "password": PASSWORD}):
        response = client.post(SESSION, json=body)
        assert (response.status_code, response.json()) == (401, example("error-invalid-credentials.response.json"))
        assert "set-cookie" not in response.headers


def test_a_login_holding_nul_is_refused_like_any_unknown_login(client):
    response = client.post(SESSION, json={"login": "a\x00b", "password": PASSWORD})
    assert (response.status_code, response.json()) == (401, example("error-invalid-credentials.response.json"))
    by_basic = client.get(CURRENT, headers=basic(login="a\x00b"))
    assert (by_basic.status_code, by_basic.json()) == (401, example("error-invalid-credentials.response.json"))


@pytest.mark.parametrize("host", ["a:xyz", "a:99999", "a:-1"])
def test_a_host_whose_port_is_no_number_still_logs_in_and_out_with_a_cookie(client, host):
    # Any client can send such a Host; the URL parser refuses its port, and the cookie's Secure test once asked it.
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}, headers={"Host": host})
    assert response.status_code == 200, response.text
    sid = response.json()
    assert response.headers["set-cookie"].startswith(f"sid={sid};")
    logged_out = client.delete(SESSION, headers={"Host": host, "Cookie": f"sid={sid}"})
    assert logged_out.status_code == 200, logged_out.text
    assert logged_out.headers["set-cookie"].startswith("sid=; Max-Age=0;")


def test_logout_ends_the_session_clears_the_cookie_and_returns_an_empty_body(client):
    sid = log_in(client)
    response = client.delete(SESSION, headers={"Cookie": f"sid={sid}"})
    assert response.status_code == 200
    assert response.content == b""
    assert "content-type" not in response.headers
    assert response.headers["content-length"] == "0"
    assert response.headers["set-cookie"] == (
        "sid=; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    )
    reuse = client.get(CURRENT, headers={"Cookie": f"sid={sid}"})
    assert (reuse.status_code, reuse.json()) == (401, example("error-session-expired.response.json"))
    again = client.delete(SESSION, headers={"Cookie": f"sid={sid}"})
    assert (again.status_code, again.json()) == (401, example("error-session-expired.response.json"))
    assert client.get(VERIFY + sid, headers=basic()).json() is None


def test_logout_through_the_header_and_through_the_cookie_jar(client):
    sid = log_in(client)
    assert client.delete(SESSION, headers={"X-Session-Id": sid}).status_code == 200
    log_in(client)
    assert client.delete(SESSION).status_code == 200
    assert client.get(CURRENT).status_code == 401


@pytest.mark.parametrize("headers", [{}, basic()])
def test_logout_without_a_session_id_gets_not_logged_in(client, headers):
    response = client.delete(SESSION, headers=headers)
    assert (response.status_code, response.json()) == (401, example("error-not-logged-in.response.json"))


def test_verify_answers_true_for_a_live_session_and_null_otherwise(client):
    sid = log_in(client)
    client.cookies.clear()
    valid = client.get(VERIFY + sid, headers=basic())
    assert (valid.status_code, valid.content) == (200, b"true")
    assert valid.json() == example("verify-session-valid.response.json")
    invalid = client.get(VERIFY + "a5f946dc-4c21-4ccd-b78b-f0a5fce94f4d", headers=basic())
    assert (invalid.status_code, invalid.content) == (200, b"null")
    assert invalid.json() == example("verify-session-invalid.response.json")


def test_a_session_can_verify_itself(client):
    sid = log_in(client)
    client.cookies.clear()
    assert client.get(VERIFY + sid, headers={"X-Session-Id": sid}).json() is True
    assert client.get(VERIFY + sid, headers={"Cookie": f"sid={sid}"}).json() is True


def test_verify_needs_a_logged_in_caller(client):
    sid = log_in(client)
    client.cookies.clear()
    response = client.get(VERIFY + sid)
    assert (response.status_code, response.json()) == (401, example("error-not-logged-in.response.json"))


def test_sessions_of_other_dialects_neither_verify_nor_authenticate_nor_slide(client, clock):
    sessions = client.app.state.services.sessions
    plugin = client.app.state.dialects["saymon"]
    other = run(
        client,
        sessions.create,
        new=NewSession(dialect="other", principal_id=OBJECT_ID),
        policy=plugin.expiry_policy(),
        with_secret=True,
    )
    clock.advance(3600)
    assert client.get(VERIFY + other.secret, headers=basic()).json() is None
    assert client.get(CURRENT, headers={"X-Session-Id": other.secret}).status_code == 401
    untouched = run(client, sessions.get, session_id=other.session.id)
    assert (untouched.last_seen_at, untouched.expires_at) == (other.session.last_seen_at, other.session.expires_at)


def test_a_session_ends_after_a_day_without_use(client, clock):
    sid = log_in(client)
    client.cookies.clear()
    clock.advance(DAY - 1)
    assert client.get(VERIFY + sid, headers=basic()).json() is True
    clock.advance(DAY)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 401
    assert client.get(VERIFY + sid, headers=basic()).json() is None


def test_each_use_starts_the_idle_timeout_again(client, clock):
    sid = log_in(client)
    client.cookies.clear()
    for _ in range(3):
        clock.advance(DAY - 600)
        assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 200
    clock.advance(DAY)
    response = client.get(CURRENT, headers={"X-Session-Id": sid})
    assert (response.status_code, response.json()) == (401, example("error-session-expired.response.json"))


def test_a_session_used_every_day_still_ends_seven_days_after_login(client, clock):
    sid = log_in(client)
    client.cookies.clear()
    for _ in range(7):
        clock.advance(DAY - 3600)
        assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 200
    clock.advance(7 * 3600)
    response = client.get(CURRENT, headers={"X-Session-Id": sid})
    assert (response.status_code, response.json()) == (401, example("error-session-expired.response.json"))
    assert client.get(VERIFY + sid, headers=basic()).json() is None


def test_the_sid_cookie_expires_with_the_sessions_maximum_lifetime(client, clock):
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD})
    sid, end = response.json(), clock.now + timedelta(seconds=MAX_LIFETIME)
    assert response.headers["set-cookie"] == (
        f"sid={sid}; Max-Age={MAX_LIFETIME}; Path=/; Expires={format_datetime(end, usegmt=True)}; "
        "HttpOnly; SameSite=Lax"
    )


def test_idle_timeout_and_absolute_cap_are_options(make_client, clock):
    client = make_client(dialects=("saymon",), dialect_options={"saymon": {"idle_timeout": 600, "max_lifetime": 1000}})
    add_user(client)
    sid = log_in(client)
    client.cookies.clear()
    clock.advance(601)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 401
    sid = log_in(client)
    client.cookies.clear()
    for _ in range(2):
        clock.advance(450)
        assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 200
    clock.advance(150)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 401


def test_an_auth_token_opens_a_session(client):
    token = run(client, client.app.state.services.identity.add_auth_token, tenant="default", login=LOGIN)
    response = client.post(SESSION, json={"auth-token": token})
    assert response.status_code == 200
    assert client.get(CURRENT, headers={"X-Session-Id": response.json()}).json()["login"] == LOGIN
    assert token not in response.text


def test_a_token_with_a_stray_login_uses_the_token(client):
    token = run(client, client.app.state.services.identity.add_auth_token, tenant="default", login=LOGIN)
    assert client.post(SESSION, json={"auth-token": token, "login": "ignored"}).status_code == 200


def test_an_unknown_auth_token_gets_invalid_api_token(client):
    response = client.post(SESSION, json=example("create-session-auth-token.request.json"))
    assert (response.status_code, response.json()) == (401, example("error-invalid-api-token.response.json"))


def test_a_form_encoded_login_is_accepted(client):
    response = client.post(SESSION, data={"login": LOGIN, "password": PASSWORD})
    assert response.status_code == 200
    assert SID.fullmatch(response.json())


def test_a_malformed_form_body_gets_400(client):
    response = client.post(SESSION, content=b"login", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (response.status_code, response.json()) == (
        400,
        {"code": "BadRequest", "message": "request body is not a valid form"},
    )
    response = client.post(SESSION, data={"login": LOGIN})
    assert response.json()["message"] == 'Mandatory "password" parameter is absent/empty.'


def test_a_disabled_account_cannot_log_in_and_loses_its_sessions(client):
    sid = log_in(client)
    client.cookies.clear()
    run(client, client.app.state.services.identity.disable, tenant="default", login=LOGIN)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 401
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD})
    assert (response.status_code, response.json()) == (403, {"code": "Forbidden", "message": "Account is disabled."})
    assert client.get(CURRENT, headers=basic()).status_code == 403


def test_the_tenant_option_scopes_logins(make_client):
    client = make_client(dialects=("saymon",), dialect_options={"saymon": {"tenant": "acme"}})
    add_user(client)
    assert client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}).status_code == 401


def test_a_chunked_body_without_content_length_is_read(client):
    def chunks():
        yield b'{"login": "user.name@'
        yield b'example.com", "password": "P665bPVi"}'

    response = client.post(SESSION, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert SID.fullmatch(response.json())


def test_unknown_members_are_ignored(client):
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD, "remember": True})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'Mandatory "login" parameter is absent/empty.'),
        ({"password": PASSWORD}, 'Mandatory "login" parameter is absent/empty.'),
        ({"login": LOGIN}, 'Mandatory "password" parameter is absent/empty.'),
        ({"login": "", "password": PASSWORD}, 'Mandatory "login" parameter is absent/empty.'),
        ({"login": LOGIN, "password": ""}, 'Mandatory "password" parameter is absent/empty.'),
        ({"auth-token": ""}, 'Mandatory "auth-token" parameter is absent/empty.'),
        ({"auth-token": "t", "login": ""}, 'Mandatory "login" parameter is absent/empty.'),
        (
            {"login": LOGIN, "password": PASSWORD, "auth-token": "t"},
            'Send either "login" and "password" or "auth-token", not both.',
        ),
        ({"login": 5, "password": PASSWORD}, "login must be a string"),
        ({"login": LOGIN, "password": None}, "password must be a string"),
        ({"auth-token": 1}, "auth-token must be a string"),
        ([], "request body must be an object"),
        ("login", "request body must be an object"),
    ],
)
def test_invalid_bodies_get_400_bad_request(client, body, message):
    response = client.post(SESSION, json=body)
    assert (response.status_code, response.json()) == (400, {"code": "BadRequest", "message": message})


def test_a_missing_body_is_missing_parameters(client):
    response = client.post(SESSION, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["message"]) == (400, 'Mandatory "login" parameter is absent/empty.')


# --- cross-site requests (decision 16) -------------------------------------------------------------------------------

CROSS_SITE = {"code": "Forbidden", "message": "Cross-site request refused."}


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "https://testserver.local"},
        {"Origin": "null"},
        {"Origin": "not an origin"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_login_or_logout_from_another_site_is_refused_with_403(client, headers):
    refused = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}, headers=headers)
    assert (refused.status_code, refused.json()) == (403, CROSS_SITE)
    assert "set-cookie" not in refused.headers
    form = client.post(SESSION, content=f"login={LOGIN}&password={PASSWORD}", headers={**headers, "Content-Type": FORM})
    assert (form.status_code, form.json()) == (403, CROSS_SITE)
    sid = log_in(client)
    client.cookies.clear()
    logout = client.delete(SESSION, headers={**headers, "Cookie": f"sid={sid}"})
    assert (logout.status_code, logout.json()) == (403, CROSS_SITE)
    assert client.get(CURRENT, headers={"X-Session-Id": sid}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://testserver.local"}, {"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}],
)
def test_same_origin_logins_and_logouts_and_those_naming_no_origin_are_served(client, headers):
    login = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}, headers=headers)
    assert login.status_code == 200
    assert client.delete(SESSION, headers=headers).status_code == 200


def test_a_configured_origin_may_log_in_and_out_from_another_site(make_client):
    client = make_client(dialects=("saymon",), allowed_origins=("https://console.example",))
    add_user(client)
    allowed = {"Origin": "https://console.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}, headers=allowed).status_code == 200
    assert client.delete(SESSION, headers=allowed).status_code == 200


def test_malformed_json_gets_400_invalid_content(client):
    response = client.post(SESSION, content=b'{"login": @', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == example("error-invalid-content.response.json")["code"]
    assert body["message"].startswith("Invalid JSON: ")


def test_another_media_type_gets_415(client):
    response = client.post(SESSION, content=b"login=a", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert response.json()["code"] == "UnsupportedMediaType"


def test_a_huge_body_gets_413_even_when_chunked(client):
    pad = "x" * 20_000
    response = client.post(SESSION, json={"login": LOGIN, "password": PASSWORD, "pad": pad})
    assert (response.status_code, response.json()["code"]) == (413, "PayloadTooLarge")

    def chunks():
        yield b'{"pad": "'
        for _ in range(20):
            yield b"x" * 1000
        yield b'"}'

    response = client.post(SESSION, content=chunks(), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (413, "PayloadTooLarge")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", SESSION, "OPTIONS, DELETE, POST"),
        ("GET", SESSION, "OPTIONS, DELETE, POST"),
        ("POST", CURRENT, "OPTIONS, GET"),
        ("DELETE", VERIFY + "abc", "OPTIONS, GET"),
    ],
)
def test_other_methods_get_405_with_allow_in_the_vendor_shape(client, method, path, allow):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.json() == {"code": "MethodNotAllowed", "message": "Method not allowed."}
    assert response.headers["allow"] == allow
    assert client.options(path).headers["allow"] == allow


def test_password_change_ends_every_other_session(client):
    keep, drop = log_in(client), log_in(client)
    client.cookies.clear()
    run(
        client,
        client.app.state.services.identity.set_password,
        tenant="default",
        login=LOGIN,
        password="a-new-passphrase",
        keep_session_id=session_id_of(client, keep),
    )
    assert client.get(CURRENT, headers={"X-Session-Id": keep}).status_code == 200
    dropped = client.get(CURRENT, headers={"X-Session-Id": drop})
    assert (dropped.status_code, dropped.json()) == (401, example("error-session-expired.response.json"))
    assert client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}).status_code == 401
    assert client.post(SESSION, json={"login": LOGIN, "password": "a-new-passphrase"}).status_code == 200


LOCKED = {"code": "Locked", "message": "Account locked after too many failed logins. Try again later."}


def test_repeated_wrong_passwords_lock_the_account_with_a_restify_shaped_423(client):
    wrong = example("error-invalid-credentials.response.json")
    for _ in range(5):  # LOGIN_MAX_FAILURES
        response = client.post(SESSION, json={"login": LOGIN, "password": "wrong"})
        assert (response.status_code, response.json()) == (401, wrong)
    for locked_out in (
        client.post(SESSION, json={"login": LOGIN, "password": "wrong"}),
        client.post(SESSION, json={"login": LOGIN, "password": PASSWORD}),
        client.get(CURRENT, headers=basic()),
    ):
        assert (locked_out.status_code, locked_out.json()) == (423, LOCKED)
        assert int(locked_out.headers["retry-after"]) > 0


def test_no_secret_reaches_a_response_or_a_log_line(client):
    records: list[str] = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = lambda record: records.append(  # type: ignore[method-assign]
        logging.Formatter("%(message)s %(args)s").format(record) + repr(vars(record))
    )
    logger = logging.getLogger("sessiongate")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        responses = []
        sid = log_in(client)
        client.cookies.clear()
        token = run(client, client.app.state.services.identity.add_auth_token, tenant="default", login=LOGIN)
        responses.append(client.post(SESSION, json={"auth-token": token}))
        responses.append(client.post(SESSION, json={"auth-token": token + "x"}))
        responses.append(client.post(SESSION, json={"login": LOGIN, "password": PASSWORD + "x"}))
        responses.append(client.get(CURRENT, headers={"X-Session-Id": sid}))
        responses.append(client.get(CURRENT, headers=basic()))
        responses.append(client.get(VERIFY + sid, headers=basic()))
        responses.append(client.get(VERIFY + sid + "x", headers=basic()))
        responses.append(client.delete(SESSION, headers={"Cookie": f"sid={sid}"}))
        responses.append(client.get(CURRENT, headers={"X-Session-Id": sid}))
        responses.append(client.get("/metrics"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    digester = client.app.state.services.digester
    secrets = [sid, token, PASSWORD, digester.digest(sid), digester.digest(token)]
    for response in responses:
        text = response.text + repr(response.headers)
        assert not any(secret in text for secret in secrets), response.request.url.path
    assert not any(secret in line for line in records for secret in secrets)


def test_examples_folder_holds_the_seed_and_vendor_samples():
    names = {p.name for p in Path(EXAMPLES).iterdir()}
    assert {
        "create-session.request.json",
        "create-session.response.json",
        "current-user.response.json",
        "error-not-logged-in.response.json",
        "error-session-expired.response.json",
        "error-invalid-credentials.response.json",
        "error-invalid-api-token.response.json",
    } <= names
