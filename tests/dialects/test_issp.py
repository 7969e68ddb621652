from __future__ import annotations

import functools
import io
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote, unquote

import pytest

from sessiongate.core.models import NewSession
from sessiongate.dialects.cookies import encode_cookie_value
from tests.conftest import ROOT
from tests.support.clock import FakeClock

EXAMPLES = ROOT / "contracts" / "issp" / "examples"
CREATE, VALIDATE, DELETE = "/api/session/createSession", "/api/session/validateSession", "/api/session/deleteSession"
SEED_USER = "1234eigh89b02749e3a41c34"  # the seed's create sample
SAMPLE_USER = "63ded2f901770f255dff8d04"  # the seed's validate sample
# The seed's create sample expires at 21:15:48.297Z, two hours after it was created.
SEED_NOW = datetime(2023, 4, 26, 19, 15, 48, 297000, tzinfo=UTC)
SECRET = re.compile(r"^[A-Za-z0-9_-]{43}$")
HOURS_2 = 7200
HOUR = 3600
MAX_LIFETIME = 12 * HOUR  # the default cap (ASVS V3.3.2, level 2)

USER_ID_REQUIRED = "Invalid request: user ID is required in the request body."
REQUEST_ERROR = "There was an error with the request."
COOKIE_REQUIRED = "Invalid request: session cookie is required."
COOKIE_EXPIRED = "Invalid request: session cookie is expired. Please create a new session."
VALIDATE_ERROR = "There was an error validating the session."
SESSION_ID_REQUIRED = "Invalid request: session ID is required."


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def run(client, fn, /, **kwargs):
    return client.blocking_portal.call(functools.partial(fn, **kwargs))


def add_user(client, user_id=SEED_USER, email="user@example.com", roles=("user",), login=None):
    return run(
        client,
        client.app.state.services.identity.add_principal,
        tenant="default",
        login=login or f"{user_id}@example.com",
        principal_id=user_id,
        email=email,
        roles=roles,
    )


def cookie_header(value: dict | str) -> dict[str, str]:
    text = value if isinstance(value, str) else "j:" + json.dumps(value)
    return {"Cookie": "sessionCookie=" + quote(text, safe="")}


def set_cookie_of(response) -> str:
    return response.headers["set-cookie"]


def cookie_object(response) -> dict:
    value = set_cookie_of(response).split(";", 1)[0].removeprefix("sessionCookie=")
    text = unquote(value)
    assert text.startswith("j:")
    return json.loads(text[2:])


def attributes(response) -> dict[str, str]:
    parts = [p.strip() for p in set_cookie_of(response).split(";")[1:]]
    return dict(p.split("=", 1) if "=" in p else (p, "") for p in parts)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def create(client, user_id=SEED_USER, member="userID"):
    response = client.post(CREATE, json={member: user_id})
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(SEED_NOW)


@pytest.fixture
def client(make_client):
    c = make_client(dialects=("issp",))
    add_user(c)
    return c


def test_create_answers_the_seeds_sample_for_the_seeds_request(client):
    response = client.post(CREATE, json=example("create-session.request.json"))
    assert response.status_code == 200
    body, seed = response.json(), example("create-session.response.json")
    assert list(body) == list(seed) == ["text"]
    assert list(body["text"]) == list(seed["text"])
    assert body["text"]["userId"] == seed["text"]["userId"]
    assert body["text"]["sessionExpiry"] == seed["text"]["sessionExpiry"]
    assert body["text"]["__v"] == seed["text"]["__v"] == 0
    assert SECRET.fullmatch(body["text"]["sessionId"])
    assert re.fullmatch(r"[0-9a-f]{24}", body["text"]["_id"])
    assert body["text"]["_id"].startswith(f"{int(SEED_NOW.timestamp()):08x}")


def test_create_sets_the_express_json_cookie_with_the_session_id_and_expiry(client):
    response = create(client)
    text = response.json()["text"]
    value = encode_cookie_value(
        "j:"
        + json.dumps({"sessionId": text["sessionId"], "expires": text["sessionExpiry"], "domain": "testserver.local"})
        .replace(", ", ",")
        .replace(": ", ":")
    )
    assert set_cookie_of(response) == (
        f"sessionCookie={value}; Max-Age=7200; Path=/; Expires=Wed, 26 Apr 2023 21:15:48 GMT; HttpOnly; SameSite=Lax"
    )
    assert value.startswith("j%3A%7B%22sessionId%22%3A%22")
    assert cookie_object(response) == example("session-cookie.json") | {
        "sessionId": text["sessionId"],
        "domain": "testserver.local",
    }


def test_the_vendor_codes_member_name_is_accepted_and_wins_over_the_seeds(client):
    add_user(client, SAMPLE_USER)
    assert create(client, SAMPLE_USER, member="userId").json()["text"]["userId"] == SAMPLE_USER
    both = client.post(CREATE, json={"userId": SAMPLE_USER, "userID": SEED_USER})
    assert both.json()["text"]["userId"] == SAMPLE_USER


@pytest.mark.parametrize("empty", ["", None])
def test_an_empty_member_is_no_user_id_even_beside_a_good_one(client, empty):
    for body in ({"userId": empty, "userID": SEED_USER}, {"userId": SEED_USER, "userID": empty}):
        response = client.post(CREATE, json=body)
        assert (response.status_code, response.json()) == (400, {"message": USER_ID_REQUIRED})


def test_unknown_members_are_ignored(client):
    assert client.post(CREATE, json={"userID": SEED_USER, "remember": True}).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, USER_ID_REQUIRED),
        ({"userId": ""}, USER_ID_REQUIRED),
        ({"userId": None}, USER_ID_REQUIRED),
        ({"userID": None, "userId": ""}, USER_ID_REQUIRED),
        ({"email": "sample@email.com"}, USER_ID_REQUIRED),
        ({"userId": 5}, REQUEST_ERROR),
        ({"userID": ["1234eigh89b02749e3a41c34"]}, REQUEST_ERROR),
        ({"userId": SEED_USER, "userID": 5}, REQUEST_ERROR),
        ({"userId": "x" * 129}, REQUEST_ERROR),
        ([], REQUEST_ERROR),
        ("1234eigh89b02749e3a41c34", REQUEST_ERROR),
    ],
)
def test_create_rejects_a_body_without_a_usable_user_id_with_the_seeds_messages(client, body, message):
    response = client.post(CREATE, json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})


def test_create_without_a_body_says_the_user_id_is_required(client):
    response = client.post(CREATE)
    assert (response.status_code, response.json()) == (400, example("error-user-id-required.response.json"))


def test_create_with_malformed_json_gets_the_catch_all_400(client):
    response = client.post(CREATE, content=b'{"userID": ', headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (400, example("error-request.response.json"))


def test_create_with_another_media_type_gets_415(client):
    response = client.post(CREATE, content=b"userID=" + SEED_USER.encode(), headers={"content-type": "text/plain"})
    assert (response.status_code, response.json()) == (415, {"message": REQUEST_ERROR})


def test_create_for_an_unknown_user_gets_404_and_no_cookie(client):
    response = client.post(CREATE, json={"userID": "644978647264e8b5dfe190a9"})
    assert (response.status_code, response.json()) == (404, {"message": REQUEST_ERROR})
    assert "set-cookie" not in response.headers


def test_create_for_a_disabled_user_gets_403(client):
    run(client, client.app.state.services.identity.disable, login=f"{SEED_USER}@example.com")
    response = client.post(CREATE, json={"userID": SEED_USER})
    assert (response.status_code, response.json()) == (403, {"message": REQUEST_ERROR})


def test_a_huge_body_gets_413(client):
    body = json.dumps({"userID": SEED_USER, "pad": "x" * 20_000}).encode()
    response = client.post(CREATE, content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (413, {"message": REQUEST_ERROR})


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_validate_answers_the_seeds_sample_for_the_seeds_user(client, method):
    add_user(client, SAMPLE_USER, email="sample@email.com", roles=("admin",))
    create(client, SAMPLE_USER)
    response = client.request(method, VALIDATE)
    assert response.status_code == 200
    assert response.json() == example("validate-session.response.json")
    assert response.content == json.dumps(example("validate-session.response.json"), separators=(",", ":")).encode()


def test_validate_reports_role_user_and_falls_back_to_the_login_for_email(client):
    add_user(client, "u-2", email=None, roles=("operator",), login="someone@example.com")
    create(client, "u-2")
    data = client.post(VALIDATE).json()["data"]
    assert data == {"email": "someone@example.com", "userId": "u-2", "role": "User"}


def test_the_cookie_jar_round_trip_validates_and_the_cookie_comes_back_unchanged_in_form(client):
    created = create(client)
    assert client.cookies.get("sessionCookie") is not None
    validated = client.post(VALIDATE)
    assert validated.status_code == 200
    assert cookie_object(validated)["sessionId"] == created.json()["text"]["sessionId"]


def test_validate_slides_the_session_and_the_cookie_by_two_hours(client, clock):
    create(client)
    clock.advance(1800)
    validated = client.post(VALIDATE)
    assert validated.status_code == 200
    assert cookie_object(validated)["expires"] == iso(clock.now + timedelta(seconds=HOURS_2))
    assert attributes(validated)["Max-Age"] == str(HOURS_2)
    clock.advance(HOURS_2 - 1)
    assert client.post(VALIDATE).status_code == 200


def test_a_validate_within_the_touch_interval_does_not_slide_again(client, clock):
    created = create(client)
    clock.advance(30)
    validated = client.get(VALIDATE)
    assert cookie_object(validated)["expires"] == created.json()["text"]["sessionExpiry"]
    assert attributes(validated)["Max-Age"] == str(HOURS_2 - 30)


def test_the_touch_interval_and_the_lifetime_are_options(make_client, clock):
    client = make_client(dialects=("issp",), dialect_options={"issp": {"lifetime": 600, "touch_interval": 0}})
    add_user(client)
    created = create(client)
    assert created.json()["text"]["sessionExpiry"] == iso(SEED_NOW + timedelta(seconds=600))
    clock.advance(5)
    assert cookie_object(client.post(VALIDATE))["expires"] == iso(clock.now + timedelta(seconds=600))


def test_validating_every_hour_never_slides_a_session_past_twelve_hours_from_its_creation(client, clock):
    held = cookie_object(create(client))
    for _ in range(11):
        clock.advance(HOUR)
        validated = client.post(VALIDATE)
        assert validated.status_code == 200
    cap = SEED_NOW + timedelta(seconds=MAX_LIFETIME)
    assert cookie_object(validated)["expires"] == iso(cap)
    assert attributes(validated)["Max-Age"] == str(HOUR)
    assert attributes(validated)["Expires"] == format_datetime(cap, usegmt=True)
    clock.advance(HOUR)
    response = client.post(VALIDATE, headers=cookie_header(held | {"expires": iso(cap)}))
    assert (response.status_code, response.json()) == (403, {"message": "Session is expired"})


def test_a_short_session_validated_every_second_still_ends_at_its_maximum_lifetime(make_client, clock):
    options = {"lifetime": 4, "touch_interval": 0, "max_lifetime": 10}
    client = make_client(dialects=("issp",), dialect_options={"issp": options})
    add_user(client)
    create(client)
    for _ in range(9):
        clock.advance(1)
        assert client.post(VALIDATE).status_code == 200
    clock.advance(1)
    response = client.post(VALIDATE)
    assert (response.status_code, response.json()) == (403, {"message": "Session is expired"})


def test_a_maximum_lifetime_shorter_than_the_lifetime_caps_the_first_cookie(make_client):
    client = make_client(dialects=("issp",), dialect_options={"issp": {"max_lifetime": 900}})
    add_user(client)
    created = create(client)
    assert created.json()["text"]["sessionExpiry"] == iso(SEED_NOW + timedelta(seconds=900))
    assert attributes(created)["Max-Age"] == "900"


def test_a_session_not_validated_for_two_hours_is_expired(client, clock):
    created = create(client)
    held = cookie_object(created)
    clock.advance(HOURS_2)
    response = client.post(VALIDATE, headers=cookie_header(held))
    assert (response.status_code, response.json()) == (403, {"message": "Session is expired"})


def test_an_expired_cookie_is_refused_with_the_seeds_sentence(client, clock):
    held = cookie_object(create(client))
    clock.advance(HOURS_2 + 1)
    response = client.post(VALIDATE, headers=cookie_header(held))
    assert (response.status_code, response.json()) == (400, example("error-cookie-expired.response.json"))


def test_a_cookie_whose_expires_was_moved_forward_still_meets_the_stored_expiry(client, clock):
    held = cookie_object(create(client))
    clock.advance(HOURS_2 + 1)
    forged = held | {"expires": "2099-01-01T00:00:00.000Z"}
    response = client.post(VALIDATE, headers=cookie_header(forged))
    assert (response.status_code, response.json()) == (403, {"message": "Session is expired"})


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_validate_without_a_cookie_gets_400_with_the_seeds_sentence(client, method):
    response = client.request(method, VALIDATE)
    assert (response.status_code, response.json()) == (400, example("error-cookie-required.response.json"))


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "j:not json",
        {},
        {"expires": "2099-01-01T00:00:00.000Z"},
        {"sessionId": ""},
        {"sessionId": 5},
        {"sessionId": None},
        "j:[1,2]",
        'j:"abc"',
    ],
)
def test_a_cookie_without_a_readable_session_id_gets_400_with_the_seeds_sentence(client, value):
    response = client.post(VALIDATE, headers=cookie_header(value))
    assert (response.status_code, response.json()) == (400, example("error-session-id-required.response.json"))


def test_an_empty_cookie_counts_as_no_cookie(client):
    response = client.post(VALIDATE, headers={"Cookie": "sessionCookie="})
    assert (response.status_code, response.json()) == (400, {"message": COOKIE_REQUIRED})


def test_a_plain_json_cookie_and_an_unreadable_expiry_are_accepted(client):
    held = cookie_object(create(client))
    client.cookies.clear()
    plain = json.dumps({"sessionId": held["sessionId"], "expires": "whenever", "DOMAIN": "elsewhere"})
    assert client.post(VALIDATE, headers=cookie_header(plain)).status_code == 200


def test_an_unknown_session_id_gets_400_not_the_vendors_500(client):
    forged = {"sessionId": "2866326a-e164-48db-b994-74eae1181e81", "expires": "2099-01-01T00:00:00.000Z"}
    response = client.post(VALIDATE, headers=cookie_header(forged))
    assert (response.status_code, response.json()) == (400, example("error-validating.response.json"))


def test_a_session_of_another_dialect_is_not_accepted(client):
    services = client.app.state.services
    policy = client.app.state.dialects["issp"].expiry_policy()
    created = run(
        client,
        services.sessions.create,
        new=NewSession(dialect="saymon", principal_id=SEED_USER),
        policy=policy,
        with_secret=True,
    )
    response = client.post(VALIDATE, headers=cookie_header({"sessionId": created.secret}))
    assert (response.status_code, response.json()) == (400, {"message": VALIDATE_ERROR})


def test_disabling_the_user_ends_its_sessions(client):
    held = cookie_object(create(client))
    run(client, client.app.state.services.identity.disable, login=f"{SEED_USER}@example.com")
    response = client.post(VALIDATE, headers=cookie_header(held))
    assert (response.status_code, response.json()) == (400, {"message": VALIDATE_ERROR})


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_delete_ends_the_session_and_expires_the_cookie(client, method):
    held = cookie_object(create(client))
    response = client.request(method, DELETE)
    assert (response.status_code, response.json()) == (200, example("delete-session.response.json"))
    cleared = encode_cookie_value('j:{"sessionId":"","expires":"1970-01-01T00:00:00.000Z","domain":"testserver.local"}')
    assert set_cookie_of(response) == (
        f"sessionCookie={cleared}; Max-Age=0; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"
    )
    assert client.cookies.get("sessionCookie") is None
    again = client.post(VALIDATE, headers=cookie_header(held))
    assert (again.status_code, again.json()) == (400, {"message": VALIDATE_ERROR})
    twice = client.request(method, DELETE, headers=cookie_header(held))
    assert (twice.status_code, twice.json()) == (400, {"message": REQUEST_ERROR})


def test_the_expired_cookie_a_delete_leaves_behind_no_longer_validates(client):
    create(client)
    response = client.post(DELETE)
    leftover = unquote(set_cookie_of(response).split(";", 1)[0].removeprefix("sessionCookie="))
    again = client.post(VALIDATE, headers=cookie_header(leftover))
    assert (again.status_code, again.json()) == (400, {"message": SESSION_ID_REQUIRED})


def test_delete_ignores_the_cookies_own_expiry_and_ends_an_outlived_session_quietly(client, clock):
    held = cookie_object(create(client))
    clock.advance(HOURS_2 + 60)
    response = client.post(DELETE, headers=cookie_header(held))
    assert (response.status_code, response.json()) == (200, {"message": "Session deleted."})


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, COOKIE_REQUIRED), (cookie_header({"expires": "2099-01-01T00:00:00.000Z"}), SESSION_ID_REQUIRED)],
)
def test_delete_without_a_session_id_gets_400_with_the_seeds_sentence(client, headers, message):
    response = client.delete(DELETE, headers=headers)
    assert (response.status_code, response.json()) == (400, {"message": message})


def test_a_second_create_mints_a_new_id_and_ends_the_session_its_cookie_named(client):
    first = create(client).json()["text"]["sessionId"]
    second = create(client).json()["text"]["sessionId"]
    assert first != second
    response = client.post(VALIDATE, headers=cookie_header({"sessionId": first}))
    assert (response.status_code, response.json()) == (400, {"message": VALIDATE_ERROR})
    assert client.post(VALIDATE).status_code == 200


def test_create_ignores_an_unreadable_cookie(client):
    response = client.post(CREATE, json={"userID": SEED_USER}, headers={"Cookie": "sessionCookie=garbage"})
    assert response.status_code == 200


def test_cookies_are_secure_when_configured(make_client):
    client = make_client(dialects=("issp",), secure_cookies=True)
    add_user(client)
    assert "Secure" in attributes(create(client))


def test_cookies_are_secure_when_the_request_came_over_tls(client):
    response = client.post(f"https://testserver.local{CREATE}", json={"userID": SEED_USER})
    assert "Secure" in attributes(response)
    assert "Secure" not in attributes(create(client))


def test_cookies_are_secure_behind_a_trusted_tls_proxy_only(make_client):
    trusting = make_client(dialects=("issp",), trust_forwarded=True)
    add_user(trusting)
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "Secure" in attributes(trusting.post(CREATE, json={"userID": SEED_USER}, headers=forwarded))
    other = make_client(dialects=("issp",))  # the same database, so the user exists already
    assert "Secure" not in attributes(other.post(CREATE, json={"userID": SEED_USER}, headers=forwarded))


def test_a_cookie_domain_and_same_site_none_can_be_configured(make_client):
    options = {"issp": {"cookie_domain": "dashboard.example.org", "same_site": "None"}}
    client = make_client(dialects=("issp",), dialect_options=options)
    add_user(client)
    response = client.post(CREATE, json={"userID": SEED_USER}, headers={"Host": "dashboard.example.org"})
    assert attributes(response)["Domain"] == "dashboard.example.org"
    assert attributes(response)["SameSite"] == "None"
    assert "Secure" in attributes(response)
    assert cookie_object(response)["domain"] == "dashboard.example.org"
    cleared = client.post(DELETE, headers=cookie_header(cookie_object(response)))
    assert attributes(cleared)["Domain"] == "dashboard.example.org"


# --- cross-site requests (decision 16) -------------------------------------------------------------------------------

OWN = "http://testserver.local"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "https://testserver.local"},  # another scheme is another origin
        {"Origin": "http://testserver.local:8080"},  # and so is another port
        {"Origin": "http://sub.testserver.local"},  # and another host of the same site
        {"Origin": "null"},
        {"Origin": "http://[::1"},  # unreadable
        {"Origin": "http://testserver.local/path"},  # not an origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    ],
)
@pytest.mark.parametrize(("method", "path"), [("POST", CREATE), ("POST", DELETE), ("DELETE", DELETE)])
def test_a_create_or_delete_from_another_site_is_refused_with_403(client, headers, method, path):
    create(client)
    body = {"userID": SEED_USER} if path == CREATE else None
    response = client.request(method, path, json=body, headers=headers)
    assert (response.status_code, response.json()) == (403, {"message": REQUEST_ERROR})
    assert "set-cookie" not in response.headers
    assert client.post(VALIDATE).status_code == 200  # the session the browser holds is untouched


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": OWN},
        {"Origin": "HTTP://TestServer.Local:80"},
        {"Origin": OWN, "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_same_origin_requests_and_those_naming_no_origin_are_served(client, headers):
    assert client.post(CREATE, json={"userID": SEED_USER}, headers=headers).status_code == 200
    assert client.post(DELETE, headers=headers).status_code == 200


def test_validate_is_not_refused_for_coming_from_another_site(client):
    create(client)
    assert (
        client.post(VALIDATE, headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}).status_code
        == 200
    )


def test_a_configured_origin_may_create_and_delete_from_another_site(make_client):
    client = make_client(dialects=("issp",), allowed_origins=("https://dashboard.example",))
    add_user(client)
    allowed = {"Origin": "https://dashboard.example", "Sec-Fetch-Site": "cross-site"}
    assert client.post(CREATE, json={"userID": SEED_USER}, headers=allowed).status_code == 200
    assert client.delete(DELETE, headers=allowed).status_code == 200
    other = {"Origin": "https://dashboard.example:8443", "Sec-Fetch-Site": "cross-site"}
    assert client.post(CREATE, json={"userID": SEED_USER}, headers=other).status_code == 403


def test_the_origin_of_a_tls_proxy_is_the_requests_own_when_the_proxy_is_trusted(make_client):
    client = make_client(dialects=("issp",), trust_forwarded=True)
    add_user(client)
    behind_proxy = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "dashboard.example",
        "Origin": "https://dashboard.example",
    }
    assert client.post(CREATE, json={"userID": SEED_USER}, headers=behind_proxy).status_code == 200
    untrusted = make_client(dialects=("issp",))  # the same database, so the user exists already
    assert untrusted.post(CREATE, json={"userID": SEED_USER}, headers=behind_proxy).status_code == 403


@pytest.mark.parametrize(
    ("path", "method", "allow", "message"),
    [
        (CREATE, "GET", "OPTIONS, POST", REQUEST_ERROR),
        (VALIDATE, "PUT", "OPTIONS, GET, POST", VALIDATE_ERROR),
        (DELETE, "PATCH", "OPTIONS, DELETE, POST", REQUEST_ERROR),
        # The router collapses repeated slashes, so the route is issp's, and so is the answer's shape.
        ("/" + CREATE.replace("/", "//"), "GET", "OPTIONS, POST", REQUEST_ERROR),
    ],
)
def test_other_methods_get_405_with_allow_and_options_lists_them(client, path, method, allow, message):
    response = client.request(method, path)
    assert (response.status_code, response.json()) == (405, {"message": message})
    assert response.headers["allow"] == allow
    options = client.options(path)
    assert (options.status_code, options.headers["allow"]) == (204, allow)


def test_no_session_id_reaches_the_log(make_client, capfd, monkeypatch):
    # The gateway's handler writes to the sys.stderr of the moment the app is made: a buffer of the test's own,
    # read whole (capfd alone could miss the lifespan's line, written from the test client's portal thread).
    gateway_log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", gateway_log)
    client = make_client(dialects=("issp",), log_level="DEBUG")
    add_user(client)
    secret = create(client).json()["text"]["sessionId"]
    client.post(VALIDATE)
    client.post(VALIDATE, headers=cookie_header({"sessionId": secret + "x"}))
    client.delete(DELETE)
    digest = client.app.state.services.digester.digest(secret)
    captured = capfd.readouterr()
    assert "started" in gateway_log.getvalue()  # the gateway did log, so the checks below mean something
    logs = gateway_log.getvalue() + captured.out + captured.err
    assert secret not in logs
    assert digest not in logs


@pytest.mark.parametrize("user_id", ["a\u0000b", "\U0001f600", "x" * 128])
def test_any_user_id_string_nobody_was_provisioned_with_is_just_unknown(client, user_id):
    response = client.post(CREATE, json={"userId": user_id})
    assert (response.status_code, response.json()) == (404, {"message": REQUEST_ERROR})


def test_a_cookie_with_a_nul_character_names_no_session(client):
    response = client.post(VALIDATE, headers=cookie_header({"sessionId": "a\u0000b"}))
    assert (response.status_code, response.json()) == (400, {"message": VALIDATE_ERROR})


class CountingRunner:
    def __init__(self, inner, counts):
        self.inner, self.counts = inner, counts

    async def read(self, *args, **kwargs):
        self.counts["read"] += 1
        return await self.inner.read(*args, **kwargs)

    async def read_driver(self, *args, **kwargs):
        self.counts["read"] += 1
        return await self.inner.read_driver(*args, **kwargs)

    async def write(self, *args, **kwargs):
        self.counts["write"] += 1
        return await self.inner.write(*args, **kwargs)

    def data_version(self):
        return self.inner.data_version()

    def session_changes(self, after):
        return self.inner.session_changes(after)


def test_validate_reads_one_row_and_writes_at_most_once_per_touch_interval(client, clock, monkeypatch):
    create(client)
    services = client.app.state.services
    # On SQLite the row is kept between commits (data_version), so repeated validates read it once.
    kept = services.sessions.store.runner.data_version() is not None
    counts = {"read": 0, "write": 0}
    for holder in (services.sessions.store, services.identity):
        monkeypatch.setattr(holder, "runner", CountingRunner(holder.runner, counts))
    for _ in range(3):
        assert client.post(VALIDATE).status_code == 200
    assert counts == {"read": 1 if kept else 3, "write": 0}
    clock.advance(61)
    assert client.get(VALIDATE).status_code == 200
    assert counts == {"read": 1 if kept else 4, "write": 1}
    assert client.get(VALIDATE).status_code == 200  # the touch was a commit: the row is read again
    assert counts == {"read": 2 if kept else 5, "write": 1}
