from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from click.testing import CliRunner
from sqlalchemy import select

from sessiongate.cli import cli
from sessiongate.core.errors import Conflict
from sessiongate.core.models import ExpiryPolicy, NewSession, SessionFilter, SessionQuery
from sessiongate.identity.tenants import TenantService
from sessiongate.storage.database import alchemy_config, upgrade
from sessiongate.storage.tenant_tables import KEYS
from tests.conftest import ROOT
from tests.support.gate import run

EXAMPLES = ROOT / "contracts" / "amity" / "examples"
V3, V4, V5 = "/api/v3/sessions", "/api/v4/sessions", "/api/v5/sessions"
CHAT = "/api/v3/network-settings/chat"
TOKEN_V4, TOKEN_V3 = "/api/v4/authentication/token", "/api/v3/authentication/token"
DAY = 86400
GRACE = 60
FIXED = ExpiryPolicy(ttl=3600)


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def tenants(client) -> TenantService:
    services = client.app.state.services
    return TenantService(services.engine, services.digester, services.clock, services.runner)


def add_keys(client, tenant="acme", *, secure=False):
    return run(client, tenants(client).add_keys, tenant, secure=secure)


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(client, key, user="ada", device="phone-1", path=V5, headers=None, **body):
    payload = {"userId": user, "deviceId": device, **body}
    return client.post(path, json=payload, headers={"x-api-key": key, **(headers or {})})


def token_for(client, key, user="ada", device="phone-1", **body) -> str:
    response = register(client, key, user, device, **body)
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


def verify(client, token, **headers):
    return client.get(V3, headers={**bearer(token), **headers})


def add_admin(client, tenant, login="boss"):
    identity = client.app.state.services.identity
    return run(client, identity.add_principal, tenant=tenant, login=login, principal_id=login, roles=["admin"])


def admin_token(client, tenant="acme") -> str:
    return run(client, tenants(client).add_admin_token, tenant).value


def revoke_with_body(client, body, **headers):
    return client.request("DELETE", V4, json=body, headers=headers)


@pytest.fixture
def client(make_client):
    return make_client(dialects=("amity",))


@pytest.fixture
def key(client) -> str:
    return add_keys(client).api_key


# -- registration ---------------------------------------------------------------------------------------------


def test_register_answers_the_seed_shape_with_a_thirty_day_jwt(client, key, clock):
    response = register(client, key, displayName="Ada", deviceInfo={"kind": "web", "model": "20", "sdkVersion": "v6"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(example("register-session.response.json"))
    assert body["issuedAt"] == clock.now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert body["expiresAt"] == (clock.now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    claims = claims_of(body["accessToken"])
    assert (claims["sub"], claims["did"]) == ("ada", "phone-1")
    assert claims["exp"] - claims["iat"] == 30 * DAY
    assert body["refreshToken"]
    assert body["refreshToken"] != body["accessToken"]
    assert (body["roles"], body["files"], body["lastCachePurge"]) == ([], [], "1970-01-01T00:00:00.000Z")


def test_the_user_object_carries_the_seed_fields_and_the_flags_the_sdk_reads(client, key):
    user = register(client, key, displayName="Ada").json()["users"][0]
    seed = example("register-session.response.json")["users"][0]
    assert set(user) <= set(seed) | {"isGlobalBanned"}
    assert {"isGlobalBan", "isGlobalBanned", "isDeleted"} <= set(user)
    assert (user["userId"], user["userPublicId"], user["displayName"]) == ("ada", "ada", "Ada")
    assert user["isGlobalBan"] is user["isGlobalBanned"] is user["isDeleted"] is False
    assert user["_id"] == user["userInternalId"]
    assert len(user["_id"]) == 24
    assert user["path"].endswith(f"/user/{user['_id']}")


def test_the_seed_sample_request_registers(client, key):
    response = client.post(V3, json=example("register-session.request.json"), headers={"x-api-key": key})
    assert response.status_code == 200
    assert response.json()["users"][0]["userId"] == "<string>"


@pytest.mark.parametrize("path", [V3, V4, V5])
def test_every_version_has_the_same_contract(client, key, path):
    body = register(client, key, path=path).json()
    assert set(body) == set(example("register-session.response.json"))
    assert verify(client, body["accessToken"]).status_code == 200


@pytest.mark.parametrize("header", ["x-api-key", "X-API-Key", "X-Api-Key", "X-API-KEY"])
def test_the_api_key_header_is_read_in_any_casing(client, key, header):
    response = client.post(V5, json={"userId": "ada", "deviceId": "d"}, headers={header: key})
    assert response.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "nope"}, {"x-api-key": ""}])
def test_a_missing_or_unknown_api_key_is_401_in_amitys_shape(client, key, headers):
    response = client.post(V5, json={"userId": "ada", "deviceId": "d"}, headers=headers)
    assert (response.status_code, response.json()) == (401, example("error-unauthorized.response.json"))


def test_a_server_key_is_not_an_api_key(client):
    keys = add_keys(client, "vault", secure=True)
    assert register(client, keys.server_key).status_code == 401


def test_an_unknown_user_is_created_and_a_display_name_updates_it(client, key, clock):
    first = register(client, key, displayName="Ada").json()["users"][0]
    clock.advance(10)
    kept = register(client, key).json()["users"][0]
    renamed = register(client, key, displayName="Ada L.").json()["users"][0]
    assert kept["displayName"] == "Ada"
    assert renamed["displayName"] == "Ada L."
    assert renamed["createdAt"] == first["createdAt"] != renamed["updatedAt"]
    principal = run(client, client.app.state.services.identity.get, tenant="acme", principal_id="ada")
    assert principal.display_name == "Ada L."


def test_a_user_without_a_display_name_has_none_in_the_answer(client, key):
    assert "displayName" not in register(client, key).json()["users"][0]


def test_a_disabled_user_is_globally_banned(client, key):
    token_for(client, key)
    run(client, client.app.state.services.identity.disable, tenant="acme", login="ada")
    response = register(client, key)
    assert (response.status_code, response.json()) == (403, example("error-global-banned.response.json"))


def test_a_registration_never_reaches_a_principal_an_operator_provisioned(client, key):
    identity = client.app.state.services.identity
    root = run(
        client,
        identity.add_principal,
        tenant="acme",
        login="root",
        principal_id="p-root",
        display_name="Root",
        roles=["admin"],
        permissions=["admin"],
        password="root-password-1",
    )
    for user_id in ("p-root", "root"):  # its id, and its login
        response = register(client, key, user=user_id, displayName="Mallory")
        assert (response.status_code, response.json()) == (
            409,
            {"status": "error", "code": 400900, "message": f"userId {user_id!r} belongs to another principal"},
        )
    assert run(client, identity.get, tenant="acme", principal_id="p-root") == root
    sessions = client.app.state.services.sessions
    assert run(client, sessions.list, SessionQuery(tenant="acme", principal_id="p-root")).items == []


def test_the_realm_guard_holds_in_the_upsert_itself_for_a_principal_made_meanwhile(client):
    # A registration that read no principal, racing an operator's `users add` of the same id: the one statement that
    # would create or rename it leaves the operator's principal as it is.
    identity = client.app.state.services.identity
    made = run(client, identity.add_principal, tenant="acme", login="root", principal_id="p-root", display_name="Root")
    with pytest.raises(Conflict, match="id 'p-root' belongs to a principal of another realm"):
        run(client, identity.upsert_principal, tenant="acme", principal_id="p-root", display_name="X", realm="amity")
    assert run(client, identity.get, tenant="acme", principal_id="p-root") == made


def test_users_a_registration_makes_are_amitys_own_and_carry_no_roles_or_permissions(client, key):
    user = register(client, key, displayName="Ada").json()["users"][0]
    assert (user["roles"], user["permissions"]) == ([], [])
    principal = run(client, client.app.state.services.identity.get, tenant="acme", principal_id="ada")
    assert (principal.realm, principal.roles, principal.permissions) == ("amity", (), ())


def test_the_admin_token_reaches_no_principal_an_operator_provisioned(client, key):
    identity, sessions = client.app.state.services.identity, client.app.state.services.sessions
    run(client, identity.add_principal, tenant="acme", login="ops", principal_id="ops", password="ops-password-1")
    other = run(client, sessions.create, NewSession(tenant="acme", dialect="saymon", principal_id="ops"), FIXED)
    response = client.delete(V4, params={"userId": "ops"}, headers={"x-admin-token": admin_token(client)})
    assert (response.status_code, response.json()) == (404, example("error-user-id-not-found.response.json"))
    assert run(client, sessions.get, other.session.id, tenant="acme").revoked_at is None


def test_a_network_is_refused_a_key_where_operators_provisioned_principals_unless_shared_knowingly(client):
    identity = client.app.state.services.identity
    run(client, identity.add_principal, tenant="shop", login="999", password="portos-999-secret", roles=["admin"])
    with pytest.raises(Conflict, match="tenant 'shop' holds 1 principal provisioned with `users add`"):
        add_keys(client, "shop")
    assert run(client, tenants(client).list_keys) == []
    shared = run(client, tenants(client).add_keys, "shop", share_tenant=True)
    assert shared.shared == 1
    assert register(client, shared.api_key, user="999").status_code == 409
    assert register(client, shared.api_key, user="carol").status_code == 200
    assert run(client, tenants(client).add_keys, "shop").shared == 1  # a tenant already shared stays so


def test_a_tenant_holding_only_amity_users_takes_more_keys_without_a_word(client, key):
    token_for(client, key)
    assert add_keys(client).shared == 0


def sweep(client) -> int:
    services = client.app.state.services
    return sum(run(client, step) for step in client.app.state.dialects["amity"].sweeps(services, 500))


def principal_of(client, user_id, tenant="acme"):
    return run(client, client.app.state.services.identity.get, tenant=tenant, principal_id=user_id)


def test_amity_users_no_registration_used_for_longer_than_a_token_lives_are_swept(client, key, clock):
    identity = client.app.state.services.identity
    first = register(client, key, user="ada", displayName="Ada").json()["users"][0]
    token_for(client, key, user="bob", device="b")
    token_for(client, key, user="banned", device="x")
    run(client, identity.disable, tenant="acme", login="banned")
    run(client, identity.add_principal, tenant="acme", login="ops", principal_id="ops")
    clock.advance(20 * DAY)
    token_for(client, key, user="bob", device="b")  # bob registers again: a use
    assert sweep(client) == 0
    clock.advance(11 * DAY + 1)  # ada: 31 days and a second unused; her token ran out after 30
    assert sweep(client) == 1
    assert principal_of(client, "ada") is None
    assert [principal_of(client, u) is not None for u in ("bob", "banned", "ops")] == [True, True, True]
    again = register(client, key, user="ada").json()["users"][0]  # a later registration makes her again
    assert (again["_id"], again["createdAt"]) == (first["_id"], mapping_iso(clock.now))
    assert "displayName" not in again
    assert register(client, key, user="banned", device="y").status_code == 403  # a ban is not swept away


def test_an_amity_user_with_a_live_session_is_never_swept(make_client, clock):
    client = make_client(dialects=("amity",), dialect_options={"amity": {"lifetime": 60 * DAY}})
    key = add_keys(client).api_key
    token = token_for(client, key)
    clock.advance(40 * DAY)
    assert sweep(client) == 0
    assert principal_of(client, "ada") is not None
    assert verify(client, token).status_code == 200


def mapping_iso(when) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- limits and validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "fits", "limit"),
    [
        ("userId", "u" * 50, 50),
        ("deviceId", "d" * 150, 150),
        ("displayName", "n" * 100, 100),
        ("authToken", "t" * 100, 100),
    ],
)
def test_limits_hold_at_their_edges(client, key, member, fits, limit):
    body = {"userId": "ada", "deviceId": "d", member: fits}
    assert client.post(V5, json=body, headers={"x-api-key": key}).status_code == 200
    response = client.post(V5, json=body | {member: fits + "x"}, headers={"x-api-key": key})
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "code": 400000,
        "message": f"{member} must be at most {limit} characters",
        "data": {"detail": [f"{member} must be at most {limit} characters"]},
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deviceId": "d"}, "userId"),
        ({"userId": "ada"}, "deviceId"),
        ({"userId": "", "deviceId": "d"}, "userId"),
        ({"userId": "ada", "deviceId": ""}, "deviceId"),
        ({"userId": "ada", "deviceId": "d", "authToken": ""}, "authToken"),
        ({"userId": 7, "deviceId": "d"}, "userId"),
        ({"userId": "ada", "deviceId": "d", "displayName": None}, "displayName"),
        ({"userId": "ada", "deviceId": "d", "deviceInfo": {"kind": "toaster"}}, "deviceInfo.kind"),
        ({"userId": "ada", "deviceId": "d", "deviceInfo": {"sdkVersion": "v" * 31}}, "deviceInfo.sdkVersion"),
        ({"userId": "a\u0000b", "deviceId": "d"}, "userId"),
    ],
)
def test_validation_failures_name_the_member(client, key, body, field):
    response = client.post(V5, json=body, headers={"x-api-key": key})
    assert response.status_code == 400
    assert response.json()["code"] == 400000
    assert field in response.json()["message"]
    assert response.json()["data"]["detail"] == [response.json()["message"]]


def test_unknown_members_and_every_device_kind_are_accepted(client, key):
    for kind in ("ios", "android", "web", "node"):
        response = register(client, key, deviceInfo={"kind": kind, "extra": 1}, somethingElse=True)
        assert response.status_code == 200


def test_a_long_browser_model_is_accepted_and_kept_shortened(client, key):
    model = "mozilla#" + "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " * 3
    token = token_for(client, key, deviceInfo={"kind": "web", "model": model[:256]})
    sid = claims_of(token)["sid"]
    session = run(client, client.app.state.services.sessions.get, sid, tenant="acme")
    assert session.device.model == model[:128]


def test_bodies_must_be_json_and_small(client, key):
    text = client.post(V5, content=b"userId=ada", headers={"x-api-key": key, "content-type": "text/plain"})
    assert (text.status_code, text.json()["code"]) == (415, 400000)
    big = client.post(V5, json={"userId": "ada", "deviceId": "d", "pad": "x" * 20000}, headers={"x-api-key": key})
    assert (big.status_code, big.json()["code"]) == (413, 500000)


# -- verify, chat settings, revoke -----------------------------------------------------------------------------


def test_verify_answers_the_cache_purge_date_until_the_token_expires(client, key, clock):
    token = token_for(client, key)
    assert verify(client, token).json() == {"lastCachePurge": "1970-01-01T00:00:00.000Z"}
    clock.advance(30 * DAY)
    response = verify(client, token)
    assert (response.status_code, response.json()["code"]) == (401, 400100)


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer not-a-jwt", "Basic YTpi"])
def test_verify_without_a_good_token_is_401(client, key, header):
    response = client.get(V3, headers={"Authorization": header} if header else {})
    assert (response.status_code, response.json()) == (401, example("error-unauthorized.response.json"))


def test_the_chat_settings_have_what_the_sdk_login_reads(client, key):
    token = token_for(client, key)
    body = client.get(CHAT, headers=bearer(token)).json()
    assert set(body["messagePreview"]) == {"enabled", "isIncludeDeleted"}
    assert set(body) == {"enabled", "mention", "messagePreview", "marker"}
    assert client.get(CHAT).status_code == 401


def test_revoke_answers_exactly_success_true_and_ends_the_token(client, key):
    token = token_for(client, key)
    other = token_for(client, key, device="tablet")
    response = client.delete(V4, headers=bearer(token))
    assert (response.status_code, response.json()) == (200, example("revoke-session.response.json"))
    assert verify(client, token).status_code == 401
    assert client.delete(V4, headers=bearer(token)).status_code == 401
    assert verify(client, other).status_code == 200


def test_the_networks_admin_token_revokes_every_token_of_a_user(client, key):
    admin = admin_token(client)
    bystander = token_for(client, key, user="bob", device="desk")
    tokens = [token_for(client, key, device=d) for d in ("phone", "tablet")]
    response = client.delete(V4, params={"userId": "ada"}, headers=bearer(admin))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert [verify(client, t).status_code for t in tokens] == [401, 401]
    assert verify(client, bystander).status_code == 200


def test_the_documented_x_admin_token_form_with_a_json_body_revokes_every_token_of_a_user(client, key):
    admin = admin_token(client)
    tokens = [token_for(client, key, device=d) for d in ("phone", "tablet")]
    response = revoke_with_body(client, {"userId": "ada"}, **{"x-admin-token": admin})
    assert (response.status_code, response.json()) == (200, example("revoke-session.response.json"))
    assert [verify(client, t).status_code for t in tokens] == [401, 401]
    response = client.delete(V4, params={"userId": "ada"}, headers={"x-admin-token": admin})
    assert (response.status_code, response.json()) == (200, {"success": True})


def test_an_admin_revokes_a_user_by_path_or_by_internal_id(client, key):
    admin = admin_token(client)
    first = register(client, key, device="phone").json()
    assert client.delete(f"{V4}/users/ada", headers=bearer(admin)).json() == {"success": True}
    assert verify(client, first["accessToken"]).status_code == 401
    second = token_for(client, key, device="phone")
    internal = first["users"][0]["_id"]
    response = client.delete(f"{V4}/users/{internal}", params={"isPublic": "false"}, headers={"x-admin-token": admin})
    assert response.json() == {"success": True}
    assert verify(client, second).status_code == 401


def test_no_user_session_may_revoke_another_users_tokens(client, key):
    victim = token_for(client, key, user="victim", device="v")
    token = token_for(client, key)
    for response in (
        client.delete(V4, params={"userId": "victim"}, headers=bearer(token)),
        revoke_with_body(client, {"userId": "victim"}, **bearer(token)),
        client.delete(f"{V4}/users/victim", headers=bearer(token)),
    ):
        assert (response.status_code, response.json()) == (403, {"status": "error", "code": 400300,
                                                                 "message": "Forbidden error."})  # fmt: skip
    assert verify(client, victim).status_code == 200
    assert verify(client, token).status_code == 200


def test_the_holder_of_an_admin_role_cannot_even_register_through_amity(client, key):
    add_admin(client, "acme")
    victim = token_for(client, key, user="victim", device="v")
    response = register(client, key, user="boss", device="desk")
    assert (response.status_code, response.json()["code"]) == (409, 400900)
    assert verify(client, victim).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"x-admin-token": "not-an-admin-token-0123456789"},
        {"x-admin-token": ""},
        {"Authorization": "Bearer not-an-admin-token-0123456789"},
    ],
)
def test_an_unknown_admin_token_is_401(client, key, headers):
    victim = token_for(client, key)
    for response in (
        client.delete(V4, params={"userId": "ada"}, headers=headers),
        client.delete(f"{V4}/users/ada", headers=headers),
    ):
        assert (response.status_code, response.json()) == (401, example("error-unauthorized.response.json"))
    assert verify(client, victim).status_code == 200


def test_an_api_key_or_a_user_key_is_not_an_admin_token(client, key):
    victim = token_for(client, key)
    for value in (key, add_keys(client, "vault", secure=True).server_key):
        response = client.delete(V4, params={"userId": "ada"}, headers={"x-admin-token": value})
        assert response.status_code == 401
    assert verify(client, victim).status_code == 200


def test_an_admin_token_names_no_token_of_its_own_so_user_id_is_required(client, key):
    response = client.delete(V4, headers={"x-admin-token": admin_token(client)})
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "code": 400000,
        "message": "userId is required",
        "data": {"detail": ["userId is required"]},
    }


def test_a_user_id_in_the_query_wins_over_one_in_the_body(client, key):
    ada, bob = token_for(client, key), token_for(client, key, user="bob", device="desk")
    response = client.request(
        "DELETE", V4, params={"userId": "ada"}, json={"userId": "bob"}, headers={"x-admin-token": admin_token(client)}
    )
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert (verify(client, ada).status_code, verify(client, bob).status_code) == (401, 200)


def test_an_admin_token_with_the_api_key_of_another_network_is_401(client, key):
    other = add_keys(client, "globex").api_key
    victim = token_for(client, key)
    headers = {"x-admin-token": admin_token(client), "x-api-key": other}
    response = client.delete(V4, params={"userId": "ada"}, headers=headers)
    assert response.status_code == 401
    assert verify(client, victim).status_code == 200


def test_a_revoke_body_must_be_json(client, key):
    token = token_for(client, key)
    headers = {**bearer(token), "content-type": "text/plain"}
    response = client.request("DELETE", V4, content=b"userId=ada", headers=headers)
    assert (response.status_code, response.json()["code"]) == (415, 400000)
    assert verify(client, token).status_code == 200


def test_an_empty_json_revoke_body_revokes_the_callers_own_token(client, key):
    token = token_for(client, key)
    response = revoke_with_body(client, {}, **bearer(token))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert verify(client, token).status_code == 401


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "tRuE", "false", "False", "FALSE"])
def test_is_public_is_read_in_any_letter_case_as_net_clients_send_it(client, key, value):
    token = token_for(client, key)
    response = client.delete(V4, params={"isPublic": value}, headers=bearer(token))
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert verify(client, token).status_code == 401


def test_is_public_false_in_any_letter_case_names_the_user_by_internal_id(client, key):
    admin = admin_token(client)
    for value in ("False", "FALSE"):
        first = register(client, key, device="phone").json()
        internal = first["users"][0]["_id"]
        response = client.delete(f"{V4}/users/{internal}", params={"isPublic": value}, headers=bearer(admin))
        assert (response.status_code, response.json()) == (200, {"success": True})
        assert verify(client, first["accessToken"]).status_code == 401
    victim = token_for(client, key)
    response = client.delete(V4, params={"userId": "ada", "isPublic": "True"}, headers=bearer(admin))
    assert (response.status_code, verify(client, victim).status_code) == (200, 401)


@pytest.mark.parametrize("value", ["yes", "1", "", "t", "truee", "true "])
def test_is_public_other_than_true_or_false_is_400_naming_it(client, key, value):
    token = token_for(client, key)
    response = client.delete(V4, params={"isPublic": value}, headers=bearer(token))
    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "code": 400000,
        "message": "isPublic must be true or false",
        "data": {"detail": ["isPublic must be true or false"]},
    }
    assert verify(client, token).status_code == 200


def test_revoking_an_unknown_user_is_404_userid_not_found(client, key):
    admin = admin_token(client)
    expected = (404, example("error-user-id-not-found.response.json"))
    response = client.delete(V4, params={"userId": "nobody"}, headers=bearer(admin))
    assert (response.status_code, response.json()) == expected
    response = client.delete(f"{V4}/users/{'0' * 24}", params={"isPublic": "false"}, headers=bearer(admin))
    assert (response.status_code, response.json()) == expected
    response = revoke_with_body(client, {"userId": "nobody"}, **{"x-admin-token": admin})
    assert (response.status_code, response.json()) == expected


@pytest.mark.parametrize(("query", "status"), [({"userId": "u" * 50}, 404), ({"userId": "u" * 51}, 400)])
def test_the_revoke_userid_limit_holds_at_its_edge(client, key, query, status):
    admin = admin_token(client)
    assert client.delete(V4, params=query, headers=bearer(admin)).status_code == status
    assert client.delete(f"{V4}/users/{query['userId']}", headers=bearer(admin)).status_code == status
    assert revoke_with_body(client, query, **{"x-admin-token": admin}).status_code == status


# -- one user per device, renewal ------------------------------------------------------------------------------


def test_a_new_user_on_the_same_device_revokes_the_previous_token(client, key):
    ada = token_for(client, key, user="ada", device="shared")
    bob = token_for(client, key, user="bob", device="shared")
    assert verify(client, ada).status_code == 401
    assert verify(client, bob).status_code == 200


def test_a_new_user_on_a_device_ends_every_earlier_token_of_it_at_once(client, key):
    # Spec decision 8: alice's renewed token (still in its grace period) must not outlive mallory's takeover.
    a1 = token_for(client, key, user="alice", device="shared")
    a2 = token_for(client, key, user="alice", device="shared")
    elsewhere = token_for(client, key, user="alice", device="own-phone")
    assert verify(client, a1).status_code == 200
    mallory = token_for(client, key, user="mallory", device="shared")
    unauthorized = (401, example("error-unauthorized.response.json"))
    for token in (a1, a2):
        for response in (
            verify(client, token),
            client.get(CHAT, headers=bearer(token)),
            client.delete(V4, headers=bearer(token)),
            register(client, key, user="alice", device="shared", headers=bearer(token)),
        ):
            assert (response.status_code, response.json()) == unauthorized
    assert verify(client, mallory).status_code == 200
    assert verify(client, elsewhere).status_code == 200
    sessions = client.app.state.services.sessions
    live = run(client, sessions.list, SessionQuery(tenant="acme", principal_id="alice")).items
    assert [s.device.id for s in live] == ["own-phone"]


def test_logging_out_ends_the_devices_earlier_tokens_still_in_their_grace_period(client, key):
    a1 = token_for(client, key, user="alice", device="shared")
    a2 = token_for(client, key, user="alice", device="shared")
    elsewhere = token_for(client, key, user="alice", device="own-phone")
    assert client.delete(V4, headers=bearer(a2)).json() == {"success": True}
    assert (verify(client, a1).status_code, verify(client, a2).status_code) == (401, 401)
    assert verify(client, elsewhere).status_code == 200
    mallory = token_for(client, key, user="mallory", device="shared")
    assert (verify(client, a1).status_code, verify(client, mallory).status_code) == (401, 200)


def test_the_same_user_again_on_a_device_keeps_the_previous_token_for_the_grace_period(client, key, clock):
    first = token_for(client, key)
    second = token_for(client, key)
    assert claims_of(first)["sid"] != claims_of(second)["sid"]
    assert verify(client, first).status_code == 200
    clock.advance(GRACE)
    assert verify(client, first).status_code == 401
    assert verify(client, second).status_code == 200


def test_a_renewal_issues_a_new_token_and_the_renewed_one_ends_after_the_grace_period(client, key, clock):
    old = token_for(client, key, device="node-1")
    clock.advance(3600)
    response = register(client, key, device="node-2", headers=bearer(old))
    assert response.status_code == 200
    new = response.json()["accessToken"]
    assert claims_of(new)["exp"] == claims_of(old)["exp"] + 3600
    assert verify(client, old).status_code == 200
    clock.advance(GRACE)
    assert verify(client, old).status_code == 401
    assert verify(client, new).status_code == 200


@pytest.mark.parametrize("case", ["another user", "revoked", "garbage"])
def test_a_renewal_with_a_token_that_is_not_the_users_live_one_is_401(client, key, case):
    token = token_for(client, key, user="bob" if case == "another user" else "ada", device="other")
    if case == "revoked":
        client.delete(V4, headers=bearer(token))
    if case == "garbage":
        token = "garbage"
    response = register(client, key, headers=bearer(token))
    assert (response.status_code, response.json()["code"]) == (401, 400100)


# -- secure mode -----------------------------------------------------------------------------------------------


@pytest.fixture
def vault(client):
    return add_keys(client, "vault", secure=True)


def mint(client, server_key, user="ada") -> str:
    response = client.post(TOKEN_V4, json={"userId": user}, headers={"x-server-key": server_key})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_a_secure_network_needs_an_auth_token(client, vault):
    response = register(client, vault.api_key)
    assert (response.status_code, response.json()["code"]) == (401, 400100)
    assert register(client, vault.api_key, authToken=mint(client, vault.server_key)).status_code == 200


def test_an_auth_token_is_single_use(client, vault):
    auth = mint(client, vault.server_key)
    assert register(client, vault.api_key, authToken=auth).status_code == 200
    assert register(client, vault.api_key, authToken=auth).status_code == 401


def test_an_auth_token_is_consumed_exactly_once_under_concurrency(client, vault):
    auth = mint(client, vault.server_key)
    service = tenants(client)

    async def race() -> list[bool]:
        attempts = [service.consume_auth_token(auth, tenant="vault", principal_id="ada") for _ in range(8)]
        return list(await asyncio.gather(*attempts))

    assert sorted(run(client, race)) == [False] * 7 + [True]


def test_an_auth_token_lasts_ten_minutes_and_only_for_its_user(client, vault, clock):
    late = mint(client, vault.server_key)
    for_bob = mint(client, vault.server_key, user="bob")
    assert register(client, vault.api_key, authToken=for_bob).status_code == 401
    clock.advance(600)
    assert register(client, vault.api_key, authToken=late).status_code == 401


def test_the_v3_route_mints_an_auth_token_as_a_json_string(client, vault):
    response = client.get(TOKEN_V3, params={"userId": "ada"}, headers={"x-server-key": vault.server_key})
    assert response.headers["content-type"].startswith("application/json")
    assert register(client, vault.api_key, authToken=response.json()).status_code == 200


@pytest.mark.parametrize("server_key", [None, "nope", "api"])
def test_a_bad_server_key_is_401_in_plain_text(client, vault, server_key):
    headers = {"x-server-key": vault.api_key if server_key == "api" else server_key} if server_key else {}
    for response in (
        client.post(TOKEN_V4, json={"userId": "ada"}, headers=headers),
        client.get(TOKEN_V3, params={"userId": "ada"}, headers=headers),
    ):
        assert (response.status_code, response.text) == (401, "Unauthorized")
        assert response.headers["content-type"].startswith("text/plain")


def test_auth_token_validation_failures_are_422(client, vault):
    headers = {"x-server-key": vault.server_key}
    for response in (
        client.post(TOKEN_V4, json={}, headers=headers),
        client.post(TOKEN_V4, json={"userId": "u" * 101}, headers=headers),
        client.get(TOKEN_V3, headers=headers),
    ):
        assert (response.status_code, response.json()["code"]) == (422, 500000)
        assert "userId" in response.json()["message"]


def test_a_network_that_is_not_secure_ignores_an_auth_token(client, key):
    assert register(client, key, authToken="anything").status_code == 200


# -- tenants ---------------------------------------------------------------------------------------------------


def test_a_token_of_one_network_is_worthless_in_another(client, key):
    other = add_keys(client, "globex").api_key
    token = token_for(client, key)
    assert verify(client, token, **{"x-api-key": other}).status_code == 401
    assert client.delete(V4, headers={**bearer(token), "x-api-key": other}).status_code == 401
    assert client.get(CHAT, headers={**bearer(token), "x-api-key": other}).status_code == 401
    assert register(client, other, headers=bearer(token)).status_code == 401
    assert verify(client, token, **{"x-api-key": key}).status_code == 200


def test_the_same_user_id_in_two_networks_is_two_users(client, key):
    other = add_keys(client, "globex").api_key
    ada_acme = register(client, key, displayName="Acme Ada").json()["users"][0]
    ada_globex = register(client, other, displayName="Globex Ada").json()["users"][0]
    assert ada_acme["_id"] != ada_globex["_id"]
    assert register(client, key).json()["users"][0]["displayName"] == "Acme Ada"


def test_an_admin_of_one_network_cannot_revoke_users_of_another(client, key):
    add_keys(client, "globex")
    admin = admin_token(client, "globex")
    victim = token_for(client, key)
    response = client.delete(f"{V4}/users/ada", headers=bearer(admin))
    assert (response.status_code, response.json()["code"]) == (404, 400400)
    assert verify(client, victim).status_code == 200


def test_listings_of_a_tenant_see_only_its_sessions(client, key):
    other = add_keys(client, "globex").api_key
    token_for(client, key)
    token_for(client, other, user="bob")
    sessions = client.app.state.services.sessions
    acme = run(client, sessions.list, SessionQuery(tenant="acme"))
    globex = run(client, sessions.list, SessionQuery(tenant="globex"))
    assert [s.principal_id for s in acme.items] == ["ada"]
    assert [s.principal_id for s in globex.items] == ["bob"]
    query = SessionQuery(tenant="globex", filters=(SessionFilter(field="principal_id", op="eq", values=("ada",)),))
    assert run(client, sessions.list, query).items == []


def test_a_dialect_configured_for_another_tenant_sees_none_of_a_networks_sessions(make_client):
    client = make_client(dialects=("amity", "zelf"), dialect_options={"zelf": {"tenant": "acme"}})
    key = add_keys(client, "globex").api_key
    amity_token = token_for(client, key)
    zelf_token = client.post("/api/sessions", json={"identifier": "ada"}).json()["data"]["token"]
    sessions = client.app.state.services.sessions
    assert [s.dialect for s in run(client, sessions.list, SessionQuery(tenant="acme")).items] == ["zelf"]
    assert [s.dialect for s in run(client, sessions.list, SessionQuery(tenant="globex")).items] == ["amity"]
    assert verify(client, zelf_token).status_code == 401
    assert run(client, sessions.revoke_all_for_principal, "ada", tenant="acme") == 0
    assert verify(client, amity_token).status_code == 200


# -- keys ------------------------------------------------------------------------------------------------------


def test_keys_are_shown_once_and_stored_only_as_digests(client, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    added = CliRunner().invoke(cli, ["keys", "add", "--tenant", "initech", "--secure"])
    assert added.exit_code == 0, added.output
    lines = dict(line.split(":", 1) for line in added.stdout.splitlines())
    api_key, server_key = lines["api key"].strip(), lines["server key"].strip()
    listed = CliRunner().invoke(cli, ["keys", "list"])
    assert "initech (secure)" in listed.stdout
    assert api_key not in listed.stdout
    assert server_key not in listed.stdout
    stored = run(client, _all_key_columns, client)
    assert not any(api_key in value or server_key in value for value in stored)
    assert register(client, api_key, authToken=mint(client, server_key)).status_code == 200


def cli_environment(monkeypatch, database_url):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)


async def _all_key_columns(client) -> list[str]:
    async with client.app.state.services.engine.connect() as conn:
        rows = (await conn.execute(select(KEYS))).all()
    return [str(value) for row in rows for value in row]


def test_admin_tokens_are_shown_once_and_stored_only_as_digests(client, key, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    added = CliRunner().invoke(cli, ["keys", "add-admin", "--tenant", "acme"])
    assert added.exit_code == 0, added.output
    lines = dict(line.split(":", 1) for line in added.stdout.splitlines())
    token = lines["admin token"].strip()
    assert lines["tenant"].strip() == "acme"
    listed = CliRunner().invoke(cli, ["keys", "list"]).stdout
    assert any(line.split()[:2] == ["acme", "admin"] for line in listed.splitlines())
    assert token not in listed
    assert not any(token in value for value in run(client, _all_key_columns, client))
    victim = token_for(client, key)
    assert client.delete(V4, params={"userId": "ada"}, headers={"x-admin-token": token}).status_code == 200
    assert verify(client, victim).status_code == 401


def test_an_admin_token_is_only_for_an_existing_network(client, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    refused = CliRunner().invoke(cli, ["keys", "add-admin", "--tenant", "nowhere"])
    assert refused.exit_code != 0
    assert "no network 'nowhere'" in refused.output


def test_an_existing_admin_token_can_be_imported(client, key, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    vendor_token = "vendor-admin-token-0123456789abcdef"
    result = CliRunner().invoke(cli, ["keys", "add-admin", "--tenant", "acme", "--from-stdin"], input=vendor_token)
    assert result.exit_code == 0, result.output
    assert vendor_token not in result.stdout
    victim = token_for(client, key)
    assert client.delete(V4, params={"userId": "ada"}, headers=bearer(vendor_token)).status_code == 200
    assert verify(client, victim).status_code == 401


def test_importing_a_value_some_key_already_has_is_refused_in_one_line(client, key, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    for command in (["add", "--tenant", "globex"], ["add-admin", "--tenant", "acme"]):
        refused = CliRunner().invoke(cli, ["keys", *command, "--from-stdin"], input=key)
        assert refused.exit_code == 1, refused.output
        assert "already exists" in refused.stderr
        assert "Traceback" not in refused.output
    assert [k.tenant for k in run(client, tenants(client).list_keys)] == ["acme"]


def test_keys_add_refuses_a_tenant_with_provisioned_principals_and_shares_it_only_when_told(
    client, database_url, monkeypatch
):
    cli_environment(monkeypatch, database_url)
    run(client, client.app.state.services.identity.add_principal, tenant="shop", login="ops", password="ops-pass-1")
    refused = CliRunner().invoke(cli, ["keys", "add", "--tenant", "shop"])
    assert refused.exit_code == 1
    assert "tenant 'shop' holds 1 principal provisioned with `users add`" in refused.stderr
    assert "--share-tenant" in refused.stderr
    assert refused.stdout == ""
    shared = CliRunner().invoke(cli, ["keys", "add", "--tenant", "shop", "--share-tenant"])
    assert shared.exit_code == 0, shared.output
    assert "api key:" in shared.stdout
    assert "warning: tenant 'shop' is shared with 1 principal provisioned with `users add`" in shared.stderr


def test_users_add_into_a_network_warns_that_amity_cannot_reach_the_principal(client, key, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    added = CliRunner().invoke(cli, ["users", "add", "--tenant", "acme", "--login", "ops", "--id", "ops"])
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "ops"
    assert "warning: tenant 'acme' is an amity network" in added.stderr
    assert register(client, key, user="ops").status_code == 409
    quiet = CliRunner().invoke(cli, ["users", "add", "--tenant", "elsewhere", "--login", "ops"])
    assert quiet.exit_code == 0, quiet.output
    assert [line for line in quiet.stderr.splitlines() if not line.startswith("database: ")] == []  # no warning


def test_existing_keys_can_be_imported(client, database_url, monkeypatch):
    cli_environment(monkeypatch, database_url)
    vendor_key = "b3bee90c39d9a5644831d84e5a0d1688d100ddebef3c6e78"
    result = CliRunner().invoke(cli, ["keys", "add", "--tenant", "legacy", "--from-stdin"], input=f"{vendor_key}\n")
    assert result.exit_code == 0, result.output
    assert register(client, vendor_key).status_code == 200


# -- migration -------------------------------------------------------------------------------------------------

# (tenant, public id, login, what else the row holds) of principals made before realms existed, and the realm each
# must land in: only what a registration gives (its id as login, perhaps a display name, nothing else) in a tenant
# that has an API key is amity's; anything an operator could have given is the gateway's.
LEGACY = [
    ("acme", "ada", "ada", {}, "amity"),
    ("acme", "bea", "bea", {"display_name": "Bea"}, "amity"),
    ("acme", "banned", "banned", {"disabled": True}, "amity"),
    ("acme", "boss", "boss", {"roles": ["admin"]}, "gateway"),
    ("acme", "perm", "perm", {"permissions": ["MUTE_CHANNEL"]}, "gateway"),
    ("acme", "p-carol", "carol", {}, "gateway"),
    ("acme", "dan", "dan", {"password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}, "gateway"),
    ("acme", "eve", "eve", {"email": "eve@example.com"}, "gateway"),
    ("acme", "tok", "tok", {"token": True}, "gateway"),
    ("shop", "ada", "ada", {}, "gateway"),
]


def test_the_migration_gives_amity_the_principals_its_registrations_made_and_the_gateway_every_other(
    empty_database_url,
):
    realms, stamped = asyncio.run(_migrate_legacy(empty_database_url))
    assert realms == {(tenant, public_id): realm for tenant, public_id, _, _, realm in LEGACY}
    assert stamped == {key for key, realm in realms.items() if realm == "amity"}


async def _migrate_legacy(url: str) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
    engine = alchemy_config(url).get_engine()

    def at():
        return sa.column("created_at", DateTimeUTC(timezone=True)), sa.column("updated_at", DateTimeUTC(timezone=True))

    tenant_table = sa.table("sg_tenant", sa.column("id", GUID()), sa.column("name"), sa.column("secure"), *at())
    principal_table = sa.table(
        "sg_principal",
        *(sa.column(name) for name in ("tenant", "public_id", "login", "email", "display_name", "password_hash")),
        *(sa.column(name, JsonB) for name in ("roles", "permissions")),
        sa.column("id", GUID()),
        sa.column("disabled"),
        *at(),
    )
    token_table = sa.table(
        "sg_auth_token", sa.column("id", GUID()), sa.column("principal_id", GUID()), sa.column("digest"), *at()
    )
    now = datetime.now(UTC)
    try:
        await upgrade(engine, "0006")
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(tenant_table).values(
                    id=uuid.uuid4(), name="acme", secure=False, created_at=now, updated_at=now
                )
            )
            for tenant, public_id, login, extra, _ in LEGACY:
                row_id = uuid.uuid4()
                values = {"email": None, "display_name": None, "password_hash": None, "disabled": False}
                values |= {"roles": [], "permissions": []} | {k: v for k, v in extra.items() if k != "token"}
                await conn.execute(
                    sa.insert(principal_table).values(
                        id=row_id,
                        tenant=tenant,
                        public_id=public_id,
                        login=login,
                        created_at=now,
                        updated_at=now,
                        **values,
                    )
                )
                if extra.get("token"):
                    await conn.execute(
                        sa.insert(token_table).values(
                            id=uuid.uuid4(), principal_id=row_id, digest=public_id, created_at=now, updated_at=now
                        )
                    )
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT tenant, public_id, realm, last_used_at FROM sg_principal"))
            ).all()
    finally:
        await engine.dispose()
    return {(r.tenant, r.public_id): r.realm for r in rows}, {(r.tenant, r.public_id) for r in rows if r.last_used_at}


# -- methods ---------------------------------------------------------------------------------------------------


def test_a_user_id_holding_an_encoded_slash_is_answered_in_amitys_shape(client, key):
    # Decoded, the path has one segment too many and matches no route: the 404 is still amity's, not RFC 9457.
    response = client.delete(f"{V4}/users/a%2Fb", headers=bearer(token_for(client, key)))
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"status", "code", "message"}


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        (V3, "OPTIONS, GET, POST"),
        (V4, "OPTIONS, DELETE, POST"),
        (V5, "OPTIONS, POST"),
        (f"{V4}/users/ada", "OPTIONS, DELETE"),
        (CHAT, "OPTIONS, GET"),
        (TOKEN_V4, "OPTIONS, POST"),
        (TOKEN_V3, "OPTIONS, GET"),
    ],
)
def test_options_and_405_list_every_method(client, path, allow):
    assert (client.options(path).status_code, client.options(path).headers["allow"]) == (204, allow)
    response = client.patch(path)
    assert (response.status_code, response.headers["allow"], response.json()["code"]) == (405, allow, 400000)


def test_examples_folder_holds_the_seed_samples():
    names = {p.name for p in Path(EXAMPLES).iterdir()}
    assert {"register-session.request.json", "register-session.response.json"} <= names
