from __future__ import annotations

import base64
import concurrent.futures
import functools
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import jwt
import msgspec
import pytest
import yaml
from argon2 import PasswordHasher

from sessiongate.core import models as core
from sessiongate.identity.passwords import Passwords
from sessiongate.identity.tenants import TenantService
from sessiongate_portos import mapping, ndata, wire
from tests.conftest import ROOT

EXAMPLES = ROOT / "contracts" / "portos" / "examples"
AUTH, REFRESH, SESSIONS = "/api/auth", "/api/auth/refresh", "/sessions"
ADMIN, ADMIN_PASSWORD = "999", "portos-999-secret"
CLERK, CLERK_PASSWORD = "clerk", "clerk-secret-1"
HOUR = 3600
PROBLEM = "application/problem+json"
TRACE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")
REFRESH_TOKEN = re.compile(r"^[A-Za-z0-9+/]{43}=$")
SESSION_ID = re.compile(r"^[0-9a-f]{32}$")


def run(client, fn, /, **kwargs):
    return client.blocking_portal.call(functools.partial(fn, **kwargs))


def portos_client(make_client, *dialects, **options):
    client = make_client(dialects=("portos", *dialects), **options)
    # Cheap argon2 parameters: these tests log in hundreds of times; hashing itself is tested with identity.
    client.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    return client


def add_user(client, login, password, *, roles=(), permissions=()):
    return run(
        client,
        client.app.state.services.identity.add_principal,
        tenant="default",
        login=login,
        roles=roles,
        permissions=permissions,
        password=password,
    )


def add_device(client, name, env, **kw):
    devices = client.app.state.dialects["portos"].context.devices  # portos's own, in its own table
    return run(client, devices.add, tenant="default", name=name, env=env, now=client.app.state.services.clock(), **kw)


def log_in(client, user=ADMIN, password=ADMIN_PASSWORD, device="BackOffice"):
    response = client.post(AUTH, json={"UserName": user, "Password": password, "DeviceName": device})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(login) -> dict[str, str]:
    return {"Authorization": f"Bearer {login['tokenId']}"}


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def sid_of(login) -> str:
    return claims_of(login["tokenId"])["sid"]


def problem(response, status, error_code=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert TRACE.fullmatch(body["traceId"])
    assert body["instance"] == response.request.url.path
    assert body.get("errorCode") == error_code
    return body


def members(response) -> list[str]:
    body = problem(response, 400, 3)
    return [e["memberName"] for e in body["errors"]]


@pytest.fixture
def client(make_client):
    c = portos_client(make_client)
    add_user(c, ADMIN, ADMIN_PASSWORD, roles=("admin",), permissions=("admin",))
    add_user(c, CLERK, CLERK_PASSWORD, permissions=("sell",))
    add_device(c, "BackOffice", "BackOffice")
    add_device(c, "P01", "CashRegister", settings={"MaxQuantity": "200"}, description="Till 1")
    add_device(c, "H1", "PDA")
    return c


@pytest.fixture
def admin(client):
    return bearer(log_in(client))


def listed(client, headers, query="", status=200):
    response = client.get(f"{SESSIONS}{query}", headers=headers)
    assert response.status_code == status, response.text
    return response.json()


def listed_ids(client, headers, query=""):
    return [s["sessionId"] for s in listed(client, headers, query)["items"]]


# --- login, profile, refresh, logout (S2) -----------------------------------------------------------------------


def test_login_answers_a_jwt_a_refresh_token_the_user_and_the_device(client, clock):
    login = log_in(client, device="P01")
    assert set(login) == {"tokenId", "refreshToken", "user", "device"}
    assert REFRESH_TOKEN.fullmatch(login["refreshToken"])
    assert login["device"] == {
        "name": "P01",
        "envName": "CashRegister",
        "description": "Till 1",
        "preferences": {},
        "settings": {"MaxQuantity": "200"},
    }
    user = login["user"]
    assert user["userName"] == ADMIN
    assert user["rights"] == ["admin"]
    assert re.fullmatch(r"[0-9a-f]{24}", user["id"])
    assert (user["isVirtual"], user["featureName"]) == (False, None)
    claims = claims_of(login["tokenId"])
    assert SESSION_ID.fullmatch(claims["sid"])
    assert claims["exp"] == int((clock.now + timedelta(hours=12)).timestamp())
    assert jwt.get_unverified_header(login["tokenId"])["alg"] == "HS256"
    session = client.get(f"{SESSIONS}/{claims['sid']}", headers=bearer(login)).json()
    assert session["expiresAt"] == mapping.timestamp(clock.now + timedelta(hours=12))


def test_login_member_names_bind_case_insensitively_and_the_exact_spelling_wins(client):
    body = {"username": ADMIN, "PASSWORD": ADMIN_PASSWORD, "deviceName": "BackOffice", "DeviceName": "P01"}
    response = client.post(AUTH, json=body)
    assert response.status_code == 200, response.text
    assert response.json()["device"]["name"] == "P01"


def test_login_without_members_names_every_missing_one(client):
    body = problem(client.post(AUTH, json={"Password": "x"}), 400, 3)
    assert body["errors"] == [
        {"memberName": "UserName", "message": "The UserName field is required.", "code": "Required"},
        {"memberName": "DeviceName", "message": "The DeviceName field is required.", "code": "Required"},
    ]


@pytest.mark.parametrize(
    ("body", "member"),
    [
        ({"UserName": 999, "DeviceName": "P01"}, "UserName"),
        ({"UserName": "", "DeviceName": "P01"}, "UserName"),
        ({"UserName": "999", "DeviceName": "P01", "Password": 5}, "Password"),
        ({"UserName": "999", "DeviceName": "x" * 129}, "DeviceName"),
        ([], "$"),
        ("999", "$"),
    ],
)
def test_login_with_a_malformed_member_gets_400_naming_it(client, body, member):
    assert members(client.post(AUTH, json=body)) == [member]


def test_login_with_malformed_json_gets_400_for_the_body(client):
    response = client.post(AUTH, content=b'{"UserName": ', headers={"content-type": "application/json"})
    assert members(response) == ["$"]


def test_login_body_that_is_not_json_gets_415(client):
    response = client.post(AUTH, content=b"UserName=999", headers={"content-type": "application/x-www-form-urlencoded"})
    problem(response, 415)


def test_huge_login_body_gets_413(client):
    response = client.post(AUTH, json={"UserName": "999", "DeviceName": "P01", "pad": "x" * 20_000})
    problem(response, 413)


def test_wrong_password_gets_401_with_error_code_1(client):
    body = problem(client.post(AUTH, json={"UserName": ADMIN, "Password": "nope", "DeviceName": "P01"}), 401, 1)
    assert body["title"] == "Unauthorized"


def test_login_to_an_unknown_device_gets_400_for_device_name(client):
    response = client.post(AUTH, json={"UserName": ADMIN, "Password": ADMIN_PASSWORD, "DeviceName": "P99"})
    assert members(response) == ["DeviceName"]
    assert response.json()["errors"][0]["code"] == "NotFound"


def test_unknown_device_is_not_revealed_before_the_password_is_right(client):
    problem(client.post(AUTH, json={"UserName": ADMIN, "Password": "nope", "DeviceName": "P99"}), 401, 1)


def test_repeated_failures_lock_the_account_with_423(client):
    for _ in range(5):
        client.post(AUTH, json={"UserName": CLERK, "Password": "wrong", "DeviceName": "P01"})
    response = client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"})
    body = problem(response, 423, 5)
    assert body["title"] == "Locked"
    assert int(response.headers["retry-after"]) > 0


def test_a_disabled_user_gets_403_and_their_tokens_stop_working(client):
    login = log_in(client, CLERK, CLERK_PASSWORD)
    run(client, client.app.state.services.identity.disable, tenant="default", login=CLERK)
    problem(client.get(AUTH, headers=bearer(login)), 401, 1)
    response = client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"})
    problem(response, 403, 2)


def test_profile_is_the_user_and_device_of_the_login(client):
    login = log_in(client, device="P01")
    response = client.get(AUTH, headers=bearer(login))
    assert response.status_code == 200
    assert response.json() == {"user": login["user"], "device": login["device"]}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Basic OTk5Ong="}],
)
def test_missing_or_malformed_tokens_get_401(client, headers):
    problem(client.get(AUTH, headers=headers), 401, 1)
    problem(client.get(SESSIONS, headers=headers), 401, 1)


def test_a_token_signed_for_another_dialect_is_refused(make_client):
    client = portos_client(make_client, "zelf")
    token = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]["token"]
    problem(client.get(AUTH, headers={"Authorization": f"Bearer {token}"}), 401, 1)


def test_logout_ends_the_session_and_its_token(client):
    login = log_in(client)
    response = client.delete(AUTH, headers=bearer(login))
    assert response.status_code == 204
    assert response.content == b""
    problem(client.get(AUTH, headers=bearer(login)), 401, 1)
    problem(client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}), 401, 1)


def test_an_expired_token_gets_401(client, clock):
    login = log_in(client)
    clock.advance(12 * HOUR)
    problem(client.get(SESSIONS, headers=bearer(login)), 401, 1)


def test_refresh_extends_the_session_and_rotates_both_tokens(client, clock, admin):
    login = log_in(client)
    clock.advance(5 * HOUR)
    response = client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]})
    assert response.status_code == 200, response.text
    renewed = response.json()
    assert set(renewed) == {"tokenId", "refreshToken", "expiresAt"}
    assert renewed["expiresAt"] == mapping.timestamp(clock.now + timedelta(hours=12))
    assert REFRESH_TOKEN.fullmatch(renewed["refreshToken"])
    assert renewed["refreshToken"] != login["refreshToken"]
    assert claims_of(renewed["tokenId"])["sid"] == sid_of(login)
    session = client.get(f"{SESSIONS}/{sid_of(login)}", headers=admin).json()
    assert session["expiresAt"] == renewed["expiresAt"]
    assert session["lastAccessAt"] == mapping.timestamp(clock.now)
    clock.advance(10 * HOUR)  # past the first expiry, within the extended one
    assert client.get(AUTH, headers=bearer(renewed)).status_code == 200
    problem(client.get(AUTH, headers=bearer(login)), 401, 1)  # the old token kept its own exp


def test_refresh_member_names_bind_case_insensitively(client):
    login = log_in(client)
    response = client.post(REFRESH, json={"TokenId": login["tokenId"], "REFRESHTOKEN": login["refreshToken"]})
    assert response.status_code == 200, response.text


def test_a_second_refresh_with_the_same_token_loses_the_race_with_409(client):
    login = log_in(client)
    body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
    winner = client.post(REFRESH, json=body).json()
    loser = problem(client.post(REFRESH, json=body), 409, 6)
    assert loser["resource"] == {"name": "Session", "id": sid_of(login)}
    assert client.get(AUTH, headers=bearer(winner)).status_code == 200


def test_concurrent_refreshes_with_one_token_have_one_winner(client):
    login = log_in(client)
    body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(lambda _: client.post(REFRESH, json=body).status_code, range(6)))
    assert statuses == [200, 409, 409, 409, 409, 409]


def test_reusing_a_rotated_refresh_token_after_the_grace_window_revokes_the_session(client, clock, admin):
    login = log_in(client)
    renewed = client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}).json()
    clock.advance(11)
    reused = client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]})
    problem(reused, 401, 1)
    problem(client.get(AUTH, headers=bearer(renewed)), 401, 1)
    problem(client.post(REFRESH, json={"tokenId": renewed["tokenId"], "refreshToken": renewed["refreshToken"]}), 401, 1)
    assert client.get(f"{SESSIONS}/{sid_of(login)}", headers=admin).status_code == 404


def test_the_grace_window_is_configurable(make_client, clock):
    client = portos_client(make_client, dialect_options={"portos": {"refresh_grace": 0}})
    add_user(client, ADMIN, ADMIN_PASSWORD)
    add_device(client, "BackOffice", "BackOffice")
    login = log_in(client)
    body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
    client.post(REFRESH, json=body)
    clock.advance(0.001)
    problem(client.post(REFRESH, json=body), 401, 1)


def test_refresh_needs_the_refresh_token_of_the_same_login(client):
    first, second = log_in(client), log_in(client)
    response = client.post(REFRESH, json={"tokenId": first["tokenId"], "refreshToken": second["refreshToken"]})
    problem(response, 401, 1)
    assert client.post(REFRESH, json={"tokenId": second["tokenId"], "refreshToken": second["refreshToken"]}).is_success


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"tokenId": "x.y.z", "refreshToken": "abc="}, 401),
        ({"tokenId": "", "refreshToken": "abc="}, 400),
        ({"refreshToken": "abc="}, 400),
        ({"tokenId": 1, "refreshToken": "abc="}, 400),
    ],
)
def test_refresh_with_bad_tokens_or_members_is_refused(client, body, status):
    response = client.post(REFRESH, json=body)
    problem(response, status, 1 if status == 401 else 3)


def test_refresh_of_an_expired_session_gets_401(client, clock):
    login = log_in(client)
    clock.advance(12 * HOUR)
    problem(client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}), 401, 1)


def test_refresh_cannot_pass_the_configured_cap(make_client, clock):
    client = portos_client(make_client, dialect_options={"portos": {"max_lifetime": 14 * HOUR}})
    add_user(client, ADMIN, ADMIN_PASSWORD)
    add_device(client, "BackOffice", "BackOffice")
    login = log_in(client)
    started = clock.now
    clock.advance(6 * HOUR)
    renewed = client.post(REFRESH, json={"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}).json()
    assert renewed["expiresAt"] == mapping.timestamp(started + timedelta(hours=14))


def test_refreshing_every_eleven_hours_never_passes_seven_days_from_login(client, clock):
    login = log_in(client)
    started, tokens = clock.now, {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
    for _ in range(15):
        clock.advance(11 * HOUR)
        renewed = client.post(REFRESH, json=tokens)
        assert renewed.status_code == 200, renewed.text
        tokens = {"tokenId": renewed.json()["tokenId"], "refreshToken": renewed.json()["refreshToken"]}
    cap = started + timedelta(days=7)
    assert renewed.json()["expiresAt"] == mapping.timestamp(cap)
    assert claims_of(tokens["tokenId"])["exp"] == int(cap.timestamp())
    clock.advance(7 * 24 * HOUR - 15 * 11 * HOUR)
    problem(client.get(AUTH, headers={"Authorization": f"Bearer {tokens['tokenId']}"}), 401, 1)
    problem(client.post(REFRESH, json=tokens), 401, 1)


# --- devices (S7) -------------------------------------------------------------------------------------------------


def test_a_new_login_on_a_sale_device_ends_the_previous_session(client, admin):
    first = log_in(client, CLERK, CLERK_PASSWORD, device="P01")
    second = log_in(client, device="P01")
    problem(client.get(AUTH, headers=bearer(first)), 401, 1)
    problem(client.post(REFRESH, json={"tokenId": first["tokenId"], "refreshToken": first["refreshToken"]}), 401, 1)
    assert client.get(AUTH, headers=bearer(second)).status_code == 200
    assert listed_ids(client, admin, "?identity.deviceName=eq:P01") == [sid_of(second)]


def test_pda_devices_hold_one_session_too(client, admin):
    log_in(client, device="H1")
    last = log_in(client, device="H1")
    assert listed_ids(client, admin, "?identity.envName=eq:PDA") == [sid_of(last)]


def test_back_office_devices_hold_many_sessions(client, admin):
    logins = [log_in(client) for _ in range(3)]
    assert all(client.get(AUTH, headers=bearer(login)).status_code == 200 for login in logins)
    assert len(listed_ids(client, admin, "?identity.deviceName=eq:BackOffice")) == 4


def test_concurrent_logins_on_a_sale_device_leave_one_live_session(client, admin):
    body = {"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"}
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        logins = [r.json() for r in pool.map(lambda _: client.post(AUTH, json=body), range(4))]
    live = [login for login in logins if client.get(AUTH, headers=bearer(login)).status_code == 200]
    assert len(live) == 1
    assert listed_ids(client, admin, "?identity.deviceName=eq:P01") == [sid_of(live[0])]


# --- the session resource (S1) ------------------------------------------------------------------------------------


def test_get_and_delete_a_session(client, admin):
    login = log_in(client, CLERK, CLERK_PASSWORD, device="P01")
    sid = sid_of(login)
    got = client.get(f"{SESSIONS}/{sid}", headers=admin)
    assert got.status_code == 200
    session = got.json()
    assert session["identity"] == {
        "userName": CLERK,
        "deviceName": "P01",
        "envName": "CashRegister",
        "authenticationType": "Bearer",
    }
    deleted = client.delete(f"{SESSIONS}/{sid}", headers=admin)
    assert deleted.status_code == 200
    assert deleted.json() == session | {"_v": session["_v"] + 1}
    problem(client.get(AUTH, headers=bearer(login)), 401, 1)
    problem(client.get(f"{SESSIONS}/{sid}", headers=admin), 404)
    problem(client.delete(f"{SESSIONS}/{sid}", headers=admin), 404)


def test_the_api_aliases_serve_the_same_session(client, admin):
    sid = sid_of(log_in(client))
    assert (
        client.get(f"/api/sessions/{sid}", headers=admin).json()
        == client.get(f"{SESSIONS}/{sid}", headers=admin).json()
    )
    assert client.delete(f"/api/sessions/{sid}", headers=admin).status_code == 200
    problem(client.get(f"{SESSIONS}/{sid}", headers=admin), 404)


def test_a_hyphenated_session_id_is_accepted_too(client, admin):
    sid = sid_of(log_in(client))
    hyphenated = f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}"
    assert client.get(f"{SESSIONS}/{hyphenated}", headers=admin).json()["sessionId"] == sid


@pytest.mark.parametrize("sid", ["nope", "0" * 32, "soZIt6uj62fzs8ep4UvnNSxRXFryUiq3", "%00"])
def test_unknown_session_ids_get_404(client, admin, sid):
    problem(client.get(f"{SESSIONS}/{sid}", headers=admin), 404)


def test_users_see_only_their_own_sessions_and_others_are_404(client, admin):
    mine = log_in(client, CLERK, CLERK_PASSWORD)
    theirs = sid_of(log_in(client))
    clerk = bearer(mine)
    assert listed_ids(client, clerk) == [sid_of(mine)]
    assert listed(client, clerk, "?$count=true") == {"count": 1, "totalCount": 1}
    problem(client.get(f"{SESSIONS}/{theirs}", headers=clerk), 404)
    problem(client.delete(f"{SESSIONS}/{theirs}", headers=clerk), 404)
    assert client.get(AUTH, headers=admin).status_code == 200
    assert client.delete(f"{SESSIONS}/{sid_of(mine)}", headers=clerk).status_code == 200
    problem(client.get(AUTH, headers=clerk), 401, 1)


def test_admins_see_every_session(client, admin):
    clerk = sid_of(log_in(client, CLERK, CLERK_PASSWORD))
    assert clerk in listed_ids(client, admin)
    assert client.get(f"{SESSIONS}/{clerk}", headers=admin).status_code == 200


def test_last_access_is_written_at_most_once_per_interval(client, clock, admin):
    login = log_in(client)
    sid, headers = sid_of(login), bearer(login)
    before = client.get(f"{SESSIONS}/{sid}", headers=admin).json()
    clock.advance(30)
    client.get(AUTH, headers=headers)
    assert client.get(f"{SESSIONS}/{sid}", headers=admin).json() == before
    clock.advance(31)
    client.get(AUTH, headers=headers)
    after = client.get(f"{SESSIONS}/{sid}", headers=admin).json()
    assert after["lastAccessAt"] == mapping.timestamp(clock.now)
    assert after["_v"] == before["_v"] + 1
    assert after["expiresAt"] == before["expiresAt"]


def test_the_touch_interval_is_configurable(make_client, clock):
    client = portos_client(make_client, dialect_options={"portos": {"touch_interval": 0}})
    add_user(client, ADMIN, ADMIN_PASSWORD, roles=("admin",))
    add_device(client, "BackOffice", "BackOffice")
    headers = bearer(log_in(client))
    versions = [listed(client, headers)["items"][0]["_v"] for _ in range(3)]
    assert versions == [2, 3, 4]


# --- NData (S3) ---------------------------------------------------------------------------------------------------


@pytest.fixture
def many(client, clock):
    """Eight sessions a second apart: clerk and admin in turn, on BackOffice, P01, H1, then BackOffice; admin last."""
    logins = []
    for i in range(8):
        clock.advance(1)
        user = (CLERK, CLERK_PASSWORD) if i % 2 == 0 and i < 7 else (ADMIN, ADMIN_PASSWORD)
        logins.append(log_in(client, *user, device={1: "P01", 2: "H1"}.get(i, "BackOffice")))
    return [sid_of(login) for login in logins], bearer(logins[-1])


def test_default_order_is_oldest_first_and_the_page_size_is_50(client, many):
    sids, admin = many
    result = listed(client, admin)
    assert [s["sessionId"] for s in result["items"]] == sids
    assert result["count"] == result["totalCount"] == 8
    for i in range(50):
        add_user(client, f"user-{i}", "password-1")
        log_in(client, f"user-{i}", "password-1")
    page = listed(client, admin)
    assert (page["count"], len(page["items"]), page["totalCount"]) == (50, 50, 58)


def test_skip_and_take_page_through_everything_once(client, many):
    _, admin = many
    everything = listed_ids(client, admin)
    pages = [listed_ids(client, admin, f"?$skip={skip}&$take=2") for skip in range(0, len(everything), 2)]
    assert [sid for page in pages for sid in page] == everything
    assert listed(client, admin, "?$take=2&$skip=1") == listed(client, admin, "?$skip=1&$take=2")


def test_take_zero_counts_without_items(client, many):
    _, admin = many
    result = listed(client, admin, "?$take=0")
    assert result["items"] == []
    assert result["count"] == 0
    assert result["totalCount"] > 0


def test_count_true_omits_items_and_counts_the_page_it_would_be(client, many):
    _, admin = many
    total = listed(client, admin)["totalCount"]
    assert listed(client, admin, "?$count=true") == {"count": total, "totalCount": total}
    assert listed(client, admin, "?$count=true&$skip=3&$take=2") == {"count": 2, "totalCount": total}
    assert listed(client, admin, f"?$count=true&$skip={total - 1}&$take=5") == {"count": 1, "totalCount": total}
    assert "items" in listed(client, admin, "?$count=false")


@pytest.mark.parametrize(("value", "counts_only"), [("True", True), ("TRUE", True), ("tRUe", True), ("False", False)])
def test_count_takes_a_dotnet_bool_in_any_letter_case(client, many, value, counts_only):
    # PORTOS is ASP.NET: its binder reads a bool case-insensitively, and .NET clients send "True"/"False".
    _, admin = many
    expected = listed(client, admin, f"?$count={value.lower()}")
    assert listed(client, admin, f"?$count={value}") == expected
    assert ("items" not in expected) == counts_only


@pytest.mark.parametrize(
    "query",
    [
        "?$sort=startedAt:desc",
        "?$sort=-startedAt",
        "?$sort=STARTEDAT:DESC",
        "?$sort=-startedat",
        "?$sort=startedAt:desc,sessionId",
        "?$sort=-startedAt,startedAt",
    ],
)
def test_descending_sort_forms_are_equivalent(client, many, query):
    _, admin = many
    assert listed_ids(client, admin, query) == listed_ids(client, admin)[::-1]


def test_a_leading_dash_is_the_desc_suffix(client, many):
    _, admin = many
    dashed = listed_ids(client, admin, "?$sort=identity.userName,-startedAt")
    assert dashed == listed_ids(client, admin, "?$sort=identity.userName:asc,startedAt:desc")
    assert dashed != listed_ids(client, admin, "?$sort=identity.userName,startedAt")


def test_sort_keys_may_come_in_repeated_parameters(client, many):
    _, admin = many
    joined = listed_ids(client, admin, "?$sort=identity.userName,-identity.deviceName")
    assert listed_ids(client, admin, "?$sort=identity.userName&$sort=-identity.deviceName") == joined


@pytest.mark.parametrize("member", ndata.MEMBERS, ids=lambda m: m.name)
def test_every_member_sorts_both_ways_with_ties_by_session_id(client, many, member):
    _, admin = many
    for direction in ("asc", "desc"):
        items = listed(client, admin, f"?$sort={member.name}:{direction}")["items"]
        keys = [(_value(s, member.name), s["sessionId"]) for s in items]
        assert keys == sorted(keys, reverse=direction == "desc"), member.name


def _value(session, name):
    if name == "identity.authenticationType":
        return "portos" if session["identity"]["authenticationType"] == "Bearer" else session["identity"][name[9:]]
    if name.startswith("identity."):
        return session["identity"][name[9:]]
    return session[name]


def test_sorting_is_stable_across_pages_when_every_key_ties(client, clock):
    clock_frozen = [log_in(client) for _ in range(9)]
    admin = bearer(clock_frozen[-1])
    everything = listed_ids(client, admin, "?$sort=startedAt")
    assert everything == sorted(sid_of(login) for login in clock_frozen)
    pages = [listed_ids(client, admin, f"?$sort=identity.deviceName&$skip={s}&$take=4") for s in (0, 4, 8)]
    assert [sid for page in pages for sid in page] == everything


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?identity.userName=eq:clerk", lambda s: s["identity"]["userName"] == "clerk"),
        ("?identity.userName=neq:clerk", lambda s: s["identity"]["userName"] != "clerk"),
        ("?identity.userName=in:clerk:nobody", lambda s: s["identity"]["userName"] == "clerk"),
        ("?identity.deviceName=like:p*", lambda s: s["identity"]["deviceName"] == "P01"),
        ("?identity.deviceName=like:*O*", lambda s: s["identity"]["deviceName"] == "BackOffice"),
        ("?identity.deviceName=gt:H1", lambda s: s["identity"]["deviceName"] > "H1"),
        ("?identity.deviceName=ge:H1;le:H1", lambda s: s["identity"]["deviceName"] == "H1"),
        ("?identity.envName=in:CashRegister:PDA", lambda s: s["identity"]["envName"] in {"CashRegister", "PDA"}),
        ("?identity.envName=lt:C", lambda s: s["identity"]["envName"] < "C"),
        ("?identity.authenticationType=eq:Bearer", lambda s: True),
        ("?identity.authenticationType=neq:Bearer", lambda s: False),
        ("?_v=eq:1", lambda s: s["_v"] == 1),
        ("?_v=gt:0&_v=lt:2", lambda s: s["_v"] == 1),
        ("?_v=in:2:3", lambda s: s["_v"] in {2, 3}),
    ],
)
def test_filters_select_what_their_operator_says(client, many, query, expected):
    _, admin = many
    everything = listed(client, admin)["items"]
    result = listed(client, admin, query)
    assert [s["sessionId"] for s in result["items"]] == [s["sessionId"] for s in everything if expected(s)]
    assert result["totalCount"] == len(result["items"])


def test_session_id_filters(client, many):
    sids, admin = many
    assert listed_ids(client, admin, f"?sessionId=eq:{sids[4]}") == [sids[4]]
    assert listed_ids(client, admin, f"?sessionId=in:{sids[4]}:{sids[5]}:nope") == [sids[4], sids[5]]
    assert sids[4] not in listed_ids(client, admin, f"?sessionId=neq:{sids[4]}")
    assert listed_ids(client, admin, f"?sessionId=like:{sids[4][:-3]}*") == [sids[4]]
    assert listed_ids(client, admin, f"?sessionId=like:{sids[4][:-3].upper()}*") == [sids[4]]
    everything = listed_ids(client, admin)
    assert listed_ids(client, admin, f"?sessionId=ge:{sids[4]}") == [s for s in everything if s >= sids[4]]
    assert listed_ids(client, admin, f"?sessionId=lt:{sids[4][:10]}") == [s for s in everything if s < sids[4][:10]]
    assert listed_ids(client, admin, "?sessionId=eq:soZIt6uj62fzs8ep4UvnNSxRXFryUiq3") == []


def test_a_bare_session_id_is_that_session(client, many):
    # S1 types sessionId as a plain string "supporting NData syntax": a value without an operator means eq.
    sids, admin = many
    assert listed(client, admin, f"?sessionId={sids[4]}") == listed(client, admin, f"?sessionId=eq:{sids[4]}")
    assert listed_ids(client, admin, f"?sessionId={sids[4]}") == [sids[4]]
    hyphenated = f"{sids[4][:8]}-{sids[4][8:12]}-{sids[4][12:16]}-{sids[4][16:20]}-{sids[4][20:]}"
    assert listed_ids(client, admin, f"?sessionId={hyphenated}") == [sids[4]]
    assert listed_ids(client, admin, "?sessionId=soZIt6uj62fzs8ep4UvnNSxRXFryUiq3") == []
    assert listed_ids(client, admin, f"?sessionId={sids[4]};neq:{sids[5]}") == [sids[4]]
    assert listed_ids(client, admin, f"?sessionId={sids[4]}&sessionId={sids[5]}") == []


@pytest.mark.parametrize("member", ndata.MEMBERS, ids=lambda m: m.name)
def test_a_bare_filter_value_means_eq(client, many, member):
    _, admin = many
    chosen = listed(client, admin)["items"][3]
    value = quote(str(_shown(chosen, member.name)), safe="")
    bare = listed(client, admin, f"?{member.name}={value}")
    assert bare == listed(client, admin, f"?{member.name}=eq:{value}")
    assert chosen["sessionId"] in [s["sessionId"] for s in bare["items"]]


def _shown(session, name):
    return session["identity"][name[9:]] if name.startswith("identity.") else session[name]


def test_time_filters_take_offsets_and_round_trip_exactly(client, many):
    _, admin = many
    everything = listed(client, admin)["items"]
    middle = everything[3]
    assert listed_ids(client, admin, f"?startedAt=eq:{middle['startedAt']}") == [middle["sessionId"]]
    later = [s["sessionId"] for s in everything if s["startedAt"] > middle["startedAt"]]
    assert listed_ids(client, admin, f"?startedAt=gt:{middle['startedAt']}") == later
    started = datetime.fromisoformat(middle["startedAt"]).astimezone(UTC)
    shifted = started.astimezone(timezone_plus_two()).isoformat()
    assert listed_ids(client, admin, "?startedAt=ge:" + shifted.replace("+", "%2B")) == [
        s["sessionId"] for s in everything if s["startedAt"] >= middle["startedAt"]
    ]
    assert listed_ids(client, admin, "?expiresAt=lt:9999-12-31T23:59:59-10:00") == [s["sessionId"] for s in everything]
    assert listed_ids(client, admin, "?lastAccessAt=lt:0001-01-01T00:00:00%2B10:00") == []


def timezone_plus_two():
    from datetime import timezone

    return timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("query", "member"),
    [
        ("?$skip=-1", "$skip"),
        ("?$skip=05", "$skip"),
        ("?$skip=2147483648", "$skip"),
        ("?$skip=1.0", "$skip"),
        ("?$take=1001", "$take"),
        ("?$take=", "$take"),
        ("?$take=ten", "$take"),
        ("?$count=yes", "$count"),
        ("?$count=1", "$count"),
        ("?$count=", "$count"),
        ("?$count=%20true", "$count"),
        ("?$count=fal%C5%BFe", "$count"),  # a long s (U+017F): case folding takes it for "s"
        ("?$sort=nope", "$sort"),
        ("?$sort=startedAt:up", "$sort"),
        ("?$sort=-startedAt:desc", "$sort"),
        ("?$sort=startedAt,", "$sort"),
        ("?$sort=", "$sort"),
        ("?$sort=identity", "$sort"),
        ("?sessionId=", "sessionId"),
        ("?sessionId=a:b", "sessionId"),
        ("?sessionId=between:a:b", "sessionId"),
        ("?sessionId=eq:a;", "sessionId"),
        ("?sessionId=EQ:a", "sessionId"),
        ("?sessionId=eq:a%00b", "sessionId"),
        ("?identity.userName=a;;b", "identity.userName"),
        ("?identity.userName=;eq:a", "identity.userName"),
        ("?identity.deviceName=P:01", "identity.deviceName"),
        ("?identity.authenticationType=Bearer;", "identity.authenticationType"),
        ("?identity.authenticationType=like:B*", "identity.authenticationType"),
        ("?startedAt=eq:yesterday", "startedAt"),
        ("?startedAt=eq:2023-02-29T00:00:00Z", "startedAt"),
        ("?startedAt=eq:2023-08-04T11:19:38", "startedAt"),
        ("?startedAt=in:2023-08-04T11:19:38Z", "startedAt"),
        ("?startedAt=2023-08-04", "startedAt"),
        ("?startedAt=2023-08-04T11:19:38", "startedAt"),
        ("?expiresAt=like:2023*", "expiresAt"),
        ("?lastAccessAt=gt:2023-08-04T24:00:00Z", "lastAccessAt"),
        ("?_v=eq:1.5", "_v"),
        ("?_v=eq:9999999999", "_v"),
        ("?_v=like:1", "_v"),
        ("?_v=one", "_v"),
        ("?_v=1.5", "_v"),
        ("?_v=eq:1&_v=zz:2", "_v"),
    ],
)
def test_malformed_ndata_gets_400_naming_the_parameter(client, admin, query, member):
    assert members(client.get(f"{SESSIONS}{query}", headers=admin)) == [member]


def test_a_leap_day_is_a_valid_time(client, admin):
    assert listed(client, admin, "?startedAt=gt:2024-02-29T00:00:00.1234567Z")["totalCount"] == 1


def test_unknown_query_parameters_are_ignored(client, admin):
    assert listed(client, admin, "?$expand=identity&foo=bar")["totalCount"] == 1


def test_the_spec_states_exactly_the_grammar_the_parser_accepts(client):
    spec = yaml.safe_load((ROOT / "openapi" / "portos.yaml").read_text())
    declared = {p["name"]: p for p in spec["paths"][SESSIONS]["get"]["parameters"]}
    for member in ndata.MEMBERS:
        assert declared[member.name]["schema"]["items"]["pattern"] == f"^{ndata.filter_pattern(member.kind)}$"
    assert declared["$sort"]["schema"]["items"]["pattern"] == f"^{ndata.sort_pattern()}$"
    assert declared["$count"]["schema"]["pattern"] == f"^(?:{ndata.BOOLEAN})$"
    take = declared["$take"]["schema"]
    assert (take["maximum"], take["default"]) == (ndata.MAX_TAKE, ndata.DEFAULT_TAKE)
    assert declared["$skip"]["schema"]["maximum"] == ndata.MAX_SKIP


# --- other dialects' sessions -------------------------------------------------------------------------------------


@pytest.fixture
def gateway(make_client):
    c = portos_client(make_client, "zelf", "saymon", "amity")
    add_user(c, ADMIN, ADMIN_PASSWORD, roles=("admin",))
    add_user(c, CLERK, CLERK_PASSWORD)
    add_device(c, "BackOffice", "BackOffice")
    return c


def amity_key(client) -> str:
    """An amity API key for the portos tenant, as ``sessiongate keys add --tenant default --share-tenant`` makes one."""
    services = client.app.state.services
    tenants = TenantService(services.engine, services.digester, services.clock, services.runner)
    return run(client, tenants.add_keys, tenant="default", share_tenant=True).api_key


def register_on_amity(client, key, user_id, device_id):
    body = {"userId": user_id, "deviceId": device_id, "deviceInfo": {"kind": "ios"}}
    response = client.post("/api/v5/sessions", json=body, headers={"x-api-key": key})
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return response.json()


def test_admins_list_the_sessions_of_every_dialect_in_the_portos_shape(gateway):
    admin = bearer(log_in(gateway))
    gateway.post("/api/sessions", json={"identifier": "device_unique_id_here"})
    saymon_sid = gateway.post("/node/api/users/session", json={"login": CLERK, "password": CLERK_PASSWORD}).json()
    gateway.cookies.clear()
    register_on_amity(gateway, amity_key(gateway), "frank", "ios-7f3a")
    identities = {s["identity"]["authenticationType"]: s["identity"] for s in listed(gateway, admin)["items"]}
    assert identities == {
        "Bearer": {
            "userName": ADMIN,
            "deviceName": "BackOffice",
            "envName": "BackOffice",
            "authenticationType": "Bearer",
        },
        "zelf": {
            "userName": "device_unique_id_here",
            "deviceName": "device_unique_id_here",
            "envName": "zelf",
            "authenticationType": "zelf",
        },
        "saymon": {"userName": CLERK, "deviceName": "saymon", "envName": "saymon", "authenticationType": "saymon"},
        "amity": {"userName": "frank", "deviceName": "ios-7f3a", "envName": "amity", "authenticationType": "amity"},
    }
    assert saymon_sid


def test_amity_sessions_are_found_and_sorted_by_the_user_id_they_registered(gateway):
    admin = bearer(log_in(gateway))
    key = amity_key(gateway)
    register_on_amity(gateway, key, "grace", "web-1")
    frank = register_on_amity(gateway, key, "frank", "ios-7f3a")

    def names(query):
        return [s["identity"]["userName"] for s in listed(gateway, admin, query)["items"]]

    found = listed(gateway, admin, "?identity.userName=eq:frank")["items"]
    assert [s["sessionId"] for s in found] == [claims_of(frank["accessToken"])["sid"].replace("-", "")]
    assert names("?identity.userName=frank") == ["frank"]
    assert names("?identity.userName=like:FR*") == ["frank"]
    assert names("?identity.userName=in:grace:frank&$sort=identity.userName") == ["frank", "grace"]
    assert names("?$sort=-identity.userName") == ["grace", "frank", ADMIN]
    assert names("?identity.userName=neq:frank&identity.authenticationType=eq:amity") == ["grace"]


def test_a_session_without_a_subject_is_named_after_its_user(gateway):
    admin = bearer(log_in(gateway))
    clerk = run(gateway, gateway.app.state.services.identity.by_login, tenant="default", login=CLERK)
    new = core.NewSession(dialect="issp", principal_id=clerk.id)
    run(gateway, gateway.app.state.services.sessions.create, new=new, policy=core.ExpiryPolicy(ttl=HOUR))
    assert listed(gateway, admin, "?identity.authenticationType=eq:issp")["items"][0]["identity"]["userName"] == CLERK


def test_other_dialects_sessions_filter_and_sort_by_their_dialect(gateway):
    admin = bearer(log_in(gateway))
    gateway.post("/api/sessions", json={"identifier": "a"})
    assert [s["identity"]["envName"] for s in listed(gateway, admin, "?identity.envName=eq:zelf")["items"]] == ["zelf"]
    kinds = [
        s["identity"]["authenticationType"]
        for s in listed(gateway, admin, "?$sort=-identity.authenticationType")["items"]
    ]
    assert kinds == ["zelf", "Bearer"]
    assert listed(gateway, admin, "?identity.authenticationType=in:zelf:Bearer")["totalCount"] == 2


def test_deleting_another_dialects_session_ends_it_there(gateway):
    admin = bearer(log_in(gateway))
    sid = gateway.post("/node/api/users/session", json={"login": CLERK, "password": CLERK_PASSWORD}).json()
    gateway.cookies.clear()
    assert gateway.get("/node/api/users/current", headers={"X-Session-Id": sid}).status_code == 200
    saymon = listed(gateway, admin, "?identity.authenticationType=eq:saymon")["items"][0]
    deleted = gateway.delete(f"{SESSIONS}/{saymon['sessionId']}", headers=admin)
    assert deleted.status_code == 200
    assert gateway.get("/node/api/users/current", headers={"X-Session-Id": sid}).status_code == 401


def test_users_do_not_see_other_dialects_sessions_of_other_users(gateway):
    gateway.post("/api/sessions", json={"identifier": "a"})
    clerk = bearer(log_in(gateway, CLERK, CLERK_PASSWORD))
    assert listed(gateway, clerk)["totalCount"] == 1


def test_a_users_own_sessions_in_other_dialects_are_theirs(gateway):
    gateway.post("/node/api/users/session", json={"login": CLERK, "password": CLERK_PASSWORD})
    gateway.cookies.clear()
    clerk = bearer(log_in(gateway, CLERK, CLERK_PASSWORD))
    kinds = sorted(s["identity"]["authenticationType"] for s in listed(gateway, clerk)["items"])
    assert kinds == ["Bearer", "saymon"]


# --- errors, methods, golden samples ------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "allow"), [(AUTH, "OPTIONS, DELETE, GET, POST"), (SESSIONS, "OPTIONS, GET")])
def test_other_methods_get_405_problem_details_with_allow(client, path, allow):
    response = client.put(path)
    problem(response, 405)
    assert response.headers["allow"] == allow
    options = client.options(path)
    assert (options.status_code, options.headers["allow"]) == (204, allow)


def spec_response(name):
    """The body example of a response component of openapi/portos.yaml, and that component."""
    spec = yaml.safe_load((ROOT / "openapi" / "portos.yaml").read_text())
    response = spec["components"]["responses"][name]
    media = response["content"][PROBLEM]
    return media["example"] if "example" in media else next(iter(media["examples"].values()))["value"], response


def provoke_refresh_race(client):
    login = log_in(client)
    body = {"tokenId": login["tokenId"], "refreshToken": login["refreshToken"]}
    client.post(REFRESH, json=body)
    return client.post(REFRESH, json=body)


def provoke_lock(client):
    for _ in range(5):
        client.post(AUTH, json={"UserName": CLERK, "Password": "wrong", "DeviceName": "P01"})
    return client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"})


def provoke_address_limit(client):
    for i in range(20):
        client.post(AUTH, json={"UserName": f"nobody-{i}", "Password": "wrong", "DeviceName": "P01"})
    return client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"})


def provoke_disabled(client):
    run(client, client.app.state.services.identity.disable, tenant="default", login=CLERK)
    return client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"})


def provoke_revoked(client):
    login = log_in(client)
    client.delete(AUTH, headers=bearer(login))
    return client.get(SESSIONS, headers=bearer(login))


PROVOKED = {
    "ValidationFailed": lambda c: c.get(f"{SESSIONS}?$take=x", headers=bearer(log_in(c))),
    "Unauthorized": provoke_revoked,
    "LoginRefused": lambda c: c.post(AUTH, json={"UserName": ADMIN, "DeviceName": "BackOffice"}),
    "Forbidden": provoke_disabled,
    "NotFound": lambda c: c.get(f"{SESSIONS}/Hq6563mjODIOwNa87Cgi295uNPlKeOqA", headers=bearer(log_in(c))),
    "RefreshRaced": provoke_refresh_race,
    "PayloadTooLarge": lambda c: c.post(AUTH, json={"UserName": "999", "DeviceName": "P01", "pad": "x" * 20_000}),
    "UnsupportedMediaType": lambda c: c.post(
        AUTH, content=b"UserName=999", headers={"content-type": "application/x-www-form-urlencoded"}
    ),
    "Locked": provoke_lock,
    "TooManyRequests": provoke_address_limit,
    "MethodNotAllowed": lambda c: c.put(SESSIONS),
}


@pytest.mark.parametrize("name", PROVOKED)
def test_the_specs_error_examples_are_what_the_server_answers(client, name):
    example, documented = spec_response(name)
    response = PROVOKED[name](client)
    body = problem(response, example["status"], example.get("errorCode"))
    assert response.headers["content-type"] == PROBLEM
    assert set(response.headers) >= {h.lower() for h in documented.get("headers", {})}
    if "resource" in body:  # the session raced for is the one just made
        assert body["resource"] == example["resource"] | {"id": body["resource"]["id"]}
        body["resource"] = example["resource"]
    assert list(body) == list(example)  # the example shows the members in the order the server sends them
    assert body == example | {"traceId": body["traceId"]}


def test_a_login_without_a_password_counts_as_a_failed_login(client):
    for _ in range(5):
        problem(client.post(AUTH, json={"UserName": CLERK, "DeviceName": "P01"}), 401, 1)
    problem(client.post(AUTH, json={"UserName": CLERK, "Password": CLERK_PASSWORD, "DeviceName": "P01"}), 423, 5)


def test_validation_problem_details_follow_the_vendor_model(client, admin):
    body = client.get(f"{SESSIONS}?$take=x", headers=admin).json()
    assert body == {
        "type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        "title": "One or more validation errors occurred.",
        "status": 400,
        "detail": "$take must be a whole number from 0 to 1000",
        "instance": SESSIONS,
        "traceId": body["traceId"],
        "errorCode": 3,
        "errors": [
            {"memberName": "$take", "message": "$take must be a whole number from 0 to 1000", "code": "Invalid"}
        ],
    }


def example(name):
    return (EXAMPLES / name).read_bytes()


def seed_session(sid, device, env, started, last, version) -> core.Session:
    started_at = datetime.fromisoformat(started)
    return core.Session(
        id=sid,
        tenant="default",
        dialect="portos",
        principal_id="p-999",
        subject="999",
        client_address=None,
        device=core.Device(name=device, env=env),
        created_at=started_at,
        last_seen_at=datetime.fromisoformat(last),
        expires_at=started_at + timedelta(hours=12),
        absolute_expires_at=None,
        revoked_at=None,
        version=version,
        attributes={},
    )


SEED_SESSIONS = [
    seed_session(
        "soZIt6uj62fzs8ep4UvnNSxRXFryUiq3",
        "P01",
        "CashRegister",
        "2023-08-04T11:19:38.015Z",
        "2023-08-04T11:19:39.98Z",
        2,
    ),
    seed_session(
        "Hq6563mjODIOwNa87Cgi295uNPlKeOqA",
        "BackOffice",
        "BackOffice",
        "2023-08-04T21:21:07.66Z",
        "2023-08-04T21:21:11.578Z",
        4,
    ),
]


def test_the_seeds_list_sample_is_what_the_mapping_produces():
    page = core.Page(items=SEED_SESSIONS, total=2, skip=0, take=50)
    produced = msgspec.json.decode(msgspec.json.encode(mapping.page_out(page, {}, count_only=False)))
    assert produced == json.loads(example("list-sessions.response.json"))


@pytest.mark.parametrize("name", ["get-session.response.json", "delete-session.response.json"])
def test_the_seeds_session_samples_are_what_the_mapping_produces(name):
    session = msgspec.structs.replace(SEED_SESSIONS[1], version=7)
    assert msgspec.json.decode(msgspec.json.encode(mapping.session_out(session))) == json.loads(example(name))


@pytest.mark.parametrize("name", ["list-sessions.response.json", "get-session.response.json"])
def test_the_seeds_samples_decode_into_the_wire_model_and_back(name):
    model = wire.QueryResult if name.startswith("list") else wire.Session
    decoded = msgspec.json.decode(example(name), type=model, strict=True)
    assert json.loads(msgspec.json.encode(decoded)) == json.loads(example(name))


def test_timestamps_keep_only_significant_fraction_digits():
    assert mapping.timestamp(datetime(2023, 8, 4, 11, 19, 39, 980000, tzinfo=UTC)) == "2023-08-04T11:19:39.98Z"
    assert mapping.timestamp(datetime(2023, 8, 4, 11, 19, 38, tzinfo=UTC)) == "2023-08-04T11:19:38Z"
    assert mapping.timestamp(datetime(2023, 8, 4, 11, 19, 38, 1, tzinfo=UTC)) == "2023-08-04T11:19:38.000001Z"
