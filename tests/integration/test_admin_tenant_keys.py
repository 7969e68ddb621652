"""The admin API's tenant keys, in process on both databases: created or imported (values shown once, never again),
listed in keyset pages, read, revoked and expired with the CLI's checks; a revoked or expired key is refused on the
next amity request; each change is an audit event naming the key, never its value; the CLI and the API see and make
the same keys."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sessiongate.cli import cli
from tests.support.gate import PREFIX, run
from tests.support.gate import api_token as token
from tests.support.parallel import at_once

KEYS = f"{PREFIX}/admin/tenant-keys"
ADMIN_TOKENS = f"{PREFIX}/admin/network-admin-tokens"
AUDIT = f"{PREFIX}/admin/audit-events"
REGISTER = "/api/v5/sessions"
IMPORTED = "imported-api-key-0123456789abcdef"


@pytest.fixture
def client(make_client):
    return make_client(dialects=("amity",))


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {token(client, 'admin')}"}


def register(client, api_key, user="ada"):
    return client.post(REGISTER, json={"userId": user, "deviceId": f"{user}-phone"}, headers={"x-api-key": api_key})


def create(client, admin, **body):
    response = client.post(KEYS, json={"tenant": "acme", **body}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def events(client, admin, kind):
    response = client.get(AUDIT, params={"kind": kind}, headers=admin)
    assert response.status_code == 200
    return response.json()["items"]


def test_only_an_admin_token_reaches_tenant_keys(client):
    introspect = {"Authorization": f"Bearer {token(client, 'introspect')}"}
    for method, path in (("GET", KEYS), ("POST", KEYS), ("POST", ADMIN_TOKENS), ("POST", f"{KEYS}/x/revoke")):
        assert client.request(method, path, json={"tenant": "acme"}).status_code == 401
        assert client.request(method, path, json={"tenant": "acme"}, headers=introspect).status_code == 403
    assert client.get(KEYS, params={"kind": "api"}).headers["www-authenticate"] == 'Bearer realm="sessiongate"'


def test_a_created_key_is_shown_once_lets_amity_register_and_is_listed_without_its_value(client, admin):
    made = create(client, admin)
    assert made["tenant"] == "acme"
    assert made["secure"] is False
    assert made["server_key"] is None
    assert [k["kind"] for k in made["keys"]] == ["api"]
    api_key = made["api_key"]
    assert len(api_key) >= 32
    assert register(client, api_key).status_code == 200

    shown = client.get(f"{KEYS}/{made['keys'][0]['id']}", headers=admin)
    assert shown.status_code == 200
    assert shown.json()["hint"] == api_key[-4:]
    assert shown.json()["state"] == "live"
    listed = client.get(KEYS, headers=admin)
    assert listed.status_code == 200
    assert api_key not in listed.text
    assert api_key not in shown.text
    assert api_key not in client.get(AUDIT, headers=admin).text

    created = events(client, admin, "api_key.created")
    assert [(e["tenant"], e["actor"], e["detail"]["kind"]) for e in created] == [
        ("acme", "admin-token:operator", "api")
    ]
    assert created[0]["detail"]["key_id"] == made["keys"][0]["id"]
    assert created[0]["detail"]["imported"] is False


def test_a_secure_tenant_gets_a_server_key_and_a_server_key_is_refused_for_an_open_tenant(client, admin):
    made = create(client, admin, tenant="vault", secure=True)
    assert made["secure"] is True
    assert made["server_key"] is not None
    assert sorted(k["kind"] for k in made["keys"]) == ["api", "server"]
    assert all(k["secure"] for k in made["keys"])

    refused = client.post(KEYS, json={"tenant": "open", "server_key": "s" * 32}, headers=admin)
    assert refused.status_code == 400
    assert "secure" in refused.json()["detail"]
    assert client.get(KEYS, params={"tenant": "open"}, headers=admin).json()["items"] == []


def test_imported_values_work_and_are_never_answered_back(client, admin):
    made = create(client, admin, api_key=IMPORTED)
    assert made["api_key"] is None
    assert IMPORTED not in str(made)
    assert made["keys"][0]["hint"] == IMPORTED[-4:]
    assert register(client, IMPORTED).status_code == 200
    assert events(client, admin, "api_key.created")[0]["detail"]["imported"] is True


@pytest.mark.parametrize(
    "value",
    ["short", "x" * 151, "with a space in it 0123", "nul\x00-inside-0123456789", "non-ascii-é-0123456789", "tab\t" * 5],
)
def test_an_imported_value_that_no_vendor_key_can_be_is_refused_and_nothing_is_made(client, admin, value):
    for path, body in (
        (KEYS, {"tenant": "acme", "api_key": value}),
        (ADMIN_TOKENS, {"tenant": "acme", "admin_token": value}),
    ):
        refused = client.post(path, json=body, headers=admin)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get(KEYS, headers=admin).json()["items"] == []
    assert events(client, admin, "api_key.created") == []


@pytest.mark.parametrize("tenant", ["", " padded", "line\nbreak", "x" * 65, "nul\x00"])
def test_a_tenant_name_that_cannot_be_one_is_refused(client, admin, tenant):
    for path in (KEYS, ADMIN_TOKENS):
        refused = client.post(path, json={"tenant": tenant}, headers=admin)
        assert refused.status_code == 400, refused.text
    assert client.get(KEYS, headers=admin).json()["items"] == []


def test_a_tenant_of_provisioned_principals_gets_a_key_only_when_sharing_it_knowingly(client, admin):
    identity = client.app.state.services.identity
    run(client, identity.add_principal, tenant="shop", login="boss@example.com", principal_id="boss")
    refused = client.post(KEYS, json={"tenant": "shop"}, headers=admin)
    assert refused.status_code == 409
    assert "--share-tenant" in refused.json()["detail"]
    assert client.get(KEYS, params={"tenant": "shop"}, headers=admin).json()["items"] == []
    shared = create(client, admin, tenant="shop", share_tenant=True)
    assert shared["shared_principals"] == 1


def test_a_revoked_key_is_refused_on_the_next_request_and_revoking_again_changes_nothing(client, admin):
    made = create(client, admin)
    other = create(client, admin, tenant="globex")
    key_id = made["keys"][0]["id"]
    assert register(client, made["api_key"]).status_code == 200
    unknown = register(client, "no-such-api-key-0123456789abcdef")

    revoked = client.post(f"{KEYS}/{key_id}/revoke", headers=admin)
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    refused = register(client, made["api_key"], "bob")
    assert (refused.status_code, refused.json()) == (unknown.status_code, unknown.json())
    assert register(client, other["api_key"], "bob").status_code == 200

    again = client.post(f"{KEYS}/{key_id}/revoke", headers=admin)
    assert again.status_code == 200
    assert again.json() == revoked.json()
    assert [e["detail"]["changed"] for e in events(client, admin, "api_key.revoked")] == [False, True]


def test_parallel_revokes_of_one_key_all_answer_and_exactly_one_ends_it(client, admin):
    key_id = create(client, admin)["keys"][0]["id"]
    answers = at_once(lambda _: client.post(f"{KEYS}/{key_id}/revoke", headers=admin).status_code, 12)
    assert answers == [200] * 12
    changed = [e["detail"]["changed"] for e in events(client, admin, "api_key.revoked")]
    assert sorted(changed) == [False] * 11 + [True]


def test_expire_with_no_body_ends_the_key_now_and_a_later_time_is_a_deadline_that_can_move(client, admin, clock):
    made = create(client, admin)
    key_id, api_key = made["keys"][0]["id"], made["api_key"]

    later = client.post(f"{KEYS}/{key_id}/expire", json={"at": "2999-01-01T00:00:00Z"}, headers=admin)
    assert later.status_code == 200, later.text
    assert later.json()["state"] == "live"
    assert later.json()["expires_at"].startswith("2999-01-01")
    assert register(client, api_key).status_code == 200

    now = client.post(f"{KEYS}/{key_id}/expire", headers=admin)
    assert now.status_code == 200
    assert now.json()["state"] == "expired"
    assert register(client, api_key, "bob").status_code != 200
    expired = events(client, admin, "api_key.expired")
    assert [e["detail"]["expires_at"][:4] for e in expired] == [str(clock().year), "2999"]


@pytest.mark.parametrize(
    "body",
    [
        {"at": "tomorrow"},
        {"at": "2030-01-01T00:00:00"},
        {"at": "9999-12-31T23:59:59-14:00"},  # read fine, but past a datetime's range once in UTC, as it is stored
        {"at": 5},
        {"when": "now"},
        [1],
        "x",
    ],
)
def test_an_expiry_that_is_no_time_with_an_offset_is_refused_and_changes_nothing(client, admin, body):
    key_id = create(client, admin)["keys"][0]["id"]
    refused = client.post(f"{KEYS}/{key_id}/expire", json=body, headers=admin)
    assert refused.status_code == 400, refused.text
    assert client.get(f"{KEYS}/{key_id}", headers=admin).json()["expires_at"] is None


@pytest.mark.parametrize("key_id", ["nope", "00000000-0000-0000-0000-000000000000", "x" * 5000, "%00"])
def test_an_unknown_key_is_404_on_every_route(client, admin, key_id):
    assert client.get(f"{KEYS}/{key_id}", headers=admin).status_code == 404
    assert client.post(f"{KEYS}/{key_id}/revoke", headers=admin).status_code == 404
    assert client.post(f"{KEYS}/{key_id}/expire", headers=admin).status_code == 404


def test_keys_are_listed_newest_first_in_stable_keyset_pages_filtered_by_tenant_and_kind(client, admin):
    made = [create(client, admin, tenant=f"t-{n}")["keys"][0]["id"] for n in range(5)]
    secure = create(client, admin, tenant="vault", secure=True)
    seen, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get(KEYS, params=params, headers=admin).json()
        seen.extend(k["id"] for k in page["items"])
        if cursor is None:  # a key made between pages is newer than the walk: never seen twice, none skipped
            create(client, admin, tenant="late")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[-5:] == list(reversed(made))
    assert len(seen) == 7 == len(set(seen))
    servers = client.get(KEYS, params={"kind": "server"}, headers=admin).json()["items"]
    assert [k["id"] for k in servers] == [k["id"] for k in secure["keys"] if k["kind"] == "server"]
    assert [k["tenant"] for k in client.get(KEYS, params={"tenant": "t-2"}, headers=admin).json()["items"]] == ["t-2"]


@pytest.mark.parametrize(
    "params", [{"kind": "root"}, {"limit": "0"}, {"limit": "201"}, {"cursor": "not-a-cursor"}, {"tenant": "\x00"}]
)
def test_a_listing_parameter_out_of_bounds_is_400(client, admin, params):
    refused = client.get(KEYS, params=params, headers=admin)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_a_network_admin_token_is_made_only_for_an_existing_network_and_shown_once(client, admin):
    refused = client.post(ADMIN_TOKENS, json={"tenant": "nowhere"}, headers=admin)
    assert refused.status_code == 400
    assert "no network 'nowhere'" in refused.json()["detail"]
    create(client, admin)
    made = client.post(ADMIN_TOKENS, json={"tenant": "acme"}, headers=admin)
    assert made.status_code == 201, made.text
    value = made.json()["admin_token"]
    assert made.json()["key"]["kind"] == "admin"
    assert made.json()["key"]["hint"] == value[-4:]
    listed = client.get(KEYS, params={"kind": "admin"}, headers=admin)
    assert value not in listed.text
    assert [k["id"] for k in listed.json()["items"]] == [made.json()["key"]["id"]]
    imported = client.post(ADMIN_TOKENS, json={"tenant": "acme", "admin_token": IMPORTED}, headers=admin)
    assert imported.status_code == 201
    assert imported.json()["admin_token"] is None


def test_the_cli_and_the_api_see_and_change_the_same_keys_and_both_are_audited(
    client, admin, database_url, monkeypatch
):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    added = CliRunner().invoke(cli, ["keys", "add", "--tenant", "cli-made"])
    assert added.exit_code == 0, added.output
    listed = client.get(KEYS, params={"tenant": "cli-made"}, headers=admin).json()["items"]
    assert [k["kind"] for k in listed] == ["api"]
    assert [e["actor"] for e in events(client, admin, "api_key.created")] == ["cli"]

    api_made = create(client, admin, tenant="api-made")["keys"][0]["id"]
    revoked = CliRunner().invoke(cli, ["keys", "revoke", "--id", api_made])
    assert revoked.exit_code == 0, revoked.output
    assert client.get(f"{KEYS}/{api_made}", headers=admin).json()["state"] == "revoked"
    # at a time past on the app's fake clock too (the CLI's "now" is the real one)
    expired = CliRunner().invoke(cli, ["keys", "expire", "--id", listed[0]["id"], "--at", "2000-01-01T00:00:00Z"])
    assert expired.exit_code == 0, expired.output
    assert client.get(f"{KEYS}/{listed[0]['id']}", headers=admin).json()["state"] == "expired"
    assert [e["actor"] for e in events(client, admin, "api_key.revoked")] == ["cli"]
    assert [e["actor"] for e in events(client, admin, "api_key.expired")] == ["cli"]


def test_importing_a_value_some_key_already_has_is_409_and_leaves_nothing_half_made(client, admin):
    create(client, admin, api_key=IMPORTED)
    again = client.post(KEYS, json={"tenant": "other", "api_key": IMPORTED}, headers=admin)
    assert again.status_code == 409, again.text
    token = client.post(ADMIN_TOKENS, json={"tenant": "acme", "admin_token": IMPORTED}, headers=admin)
    assert token.status_code == 409, token.text
    assert client.get(KEYS, params={"tenant": "other"}, headers=admin).json()["items"] == []
    secure = client.post(KEYS, json={"tenant": "vault", "secure": True, "server_key": IMPORTED}, headers=admin)
    assert secure.status_code == 409
    assert client.get(KEYS, params={"tenant": "vault"}, headers=admin).json()["items"] == []
    same = {"tenant": "vault", "secure": True, "api_key": "b" * 20, "server_key": "b" * 20}
    assert client.post(KEYS, json=same, headers=admin).status_code == 400
    assert len(client.get(KEYS, headers=admin).json()["items"]) == 1
