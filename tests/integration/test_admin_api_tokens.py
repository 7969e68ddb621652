"""The admin API's own API tokens, in process on both databases: created or imported (a drawn value shown once, never
again), listed in keyset pages, read and revoked with the CLI's checks; a created token introspects at once, a revoked
one is refused on the very next request (the caller's own too); each change is an audit event naming the token, never
its value; the CLI and the API see and make the same tokens."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sessiongate.cli import cli
from sessiongate.gate.tokens import ApiTokens
from tests.support.gate import INTROSPECT, PREFIX, run
from tests.support.gate import api_token as token
from tests.support.parallel import at_once

TOKENS = f"{PREFIX}/admin/api-tokens"
AUDIT = f"{PREFIX}/admin/audit-events"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
IMPORTED = "sgt_imported-token-0123456789abcdef0123456789"


@pytest.fixture
def client(make_client):
    return make_client(dialects=("zelf",))


def bearer(value):
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def admin(client):
    return bearer(token(client, "admin"))


def create(client, admin, name="resource-server", scope="introspect", **body):
    response = client.post(TOKENS, json={"name": name, "scope": scope, **body}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def introspect(client, value):
    return client.post(INTROSPECT, data={"token": "not-a-session"}, headers={**bearer(value), **FORM})


def events(client, admin, kind):
    response = client.get(AUDIT, params={"kind": kind}, headers=admin)
    assert response.status_code == 200
    return response.json()["items"]


def names(client, admin, **params):
    response = client.get(TOKENS, params=params, headers=admin)
    assert response.status_code == 200, response.text
    return [t["name"] for t in response.json()["items"]]


def test_only_an_admin_token_reaches_api_tokens(client):
    introspect_scope = bearer(token(client, "introspect", "resource-server"))
    for method, path in (("GET", TOKENS), ("POST", TOKENS), ("GET", f"{TOKENS}/x"), ("POST", f"{TOKENS}/x/revoke")):
        body = {"name": "sneaky", "scope": "admin"}
        refused = client.request(method, path, json=body)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
        assert client.request(method, path, json=body, headers=introspect_scope).status_code == 403
    assert client.request("POST", TOKENS, json={"name": "x"}, headers=bearer("sgt_" + "n" * 43)).status_code == 401
    services = client.app.state.services
    listed = run(client, ApiTokens(services.runner, services.digester, services.clock).list)
    assert [t.name for t in listed] == ["resource-server"]


def test_a_created_token_introspects_at_once_is_shown_once_and_listed_without_its_value(client, admin):
    made = create(client, admin)
    value = made["token"]
    assert value.startswith("sgt_")
    assert made["api_token"]["name"] == "resource-server"
    assert made["api_token"]["scope"] == "introspect"
    assert made["api_token"]["state"] == "live"
    assert made["api_token"]["prefix"] == value[:12]
    assert set(made["api_token"]) == {"name", "scope", "prefix", "state", "created_at", "last_used_at", "revoked_at"}

    assert introspect(client, value).json() == {"active": False}
    shown = client.get(f"{TOKENS}/resource-server", headers=admin)
    assert shown.status_code == 200
    assert shown.json()["last_used_at"] is not None
    listed = client.get(TOKENS, headers=admin)
    for text in (shown.text, listed.text, client.get(AUDIT, headers=admin).text):
        assert value not in text
    assert [t["name"] for t in listed.json()["items"]] == ["resource-server", "operator"]

    created = events(client, admin, "admin_token.created")
    assert [(e["actor"], e["detail"]) for e in created] == [
        (
            "admin-token:operator",
            {"name": "resource-server", "scope": "introspect", "prefix": value[:12], "imported": False},
        )
    ]


def test_an_imported_token_works_and_is_never_answered_back(client, admin):
    made = create(client, admin, name="imported", token=IMPORTED)
    assert made["token"] is None
    assert IMPORTED not in str(made)
    assert made["api_token"]["prefix"] == IMPORTED[:12]
    assert introspect(client, IMPORTED).status_code == 200
    assert events(client, admin, "admin_token.created")[0]["detail"]["imported"] is True


def test_an_admin_scope_token_made_through_the_api_reaches_the_admin_api(client, admin):
    value = create(client, admin, name="second-operator", scope="admin")["token"]
    assert client.get(TOKENS, headers=bearer(value)).status_code == 200


def test_a_revoked_token_is_refused_on_the_next_request_and_revoking_again_changes_nothing(client, admin):
    value = create(client, admin)["token"]
    assert introspect(client, value).status_code == 200

    revoked = client.post(f"{TOKENS}/resource-server/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    refused = introspect(client, value)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="sessiongate"'

    again = client.post(f"{TOKENS}/resource-server/revoke", headers=admin)
    assert again.status_code == 200
    assert again.json() == revoked.json()
    assert introspect(client, value).status_code == 401
    assert [e["detail"]["changed"] for e in events(client, admin, "admin_token.revoked")] == [False, True]
    assert names(client, admin, state="revoked") == ["resource-server"]
    assert names(client, admin, state="live") == ["operator"]


def test_the_caller_may_revoke_its_own_token_and_is_refused_from_its_next_request_on(client, admin):
    revoked = client.post(f"{TOKENS}/operator/revoke", headers=admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    refused = client.get(TOKENS, headers=admin)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
    other = bearer(token(client, "admin", "rescue"))
    [event] = events(client, other, "admin_token.revoked")
    assert (event["actor"], event["detail"]["name"], event["detail"]["changed"]) == (
        "admin-token:operator",
        "operator",
        True,
    )


def test_parallel_revokes_of_one_token_all_answer_200_and_exactly_one_changes_it(client, admin):
    create(client, admin)
    answers = at_once(lambda _: client.post(f"{TOKENS}/resource-server/revoke", headers=admin).status_code, 12)
    assert answers == [200] * 12
    changed = [e["detail"]["changed"] for e in events(client, admin, "admin_token.revoked")]
    assert sorted(changed) == [False] * 11 + [True]


def test_a_taken_name_is_409_even_when_revoked_and_nothing_is_made(client, admin):
    create(client, admin)
    client.post(f"{TOKENS}/resource-server/revoke", headers=admin)
    taken = client.post(TOKENS, json={"name": "resource-server", "scope": "admin"}, headers=admin)
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"].startswith("application/problem+json")
    assert "exists already" in taken.json()["detail"]
    assert names(client, admin) == ["resource-server", "operator"]
    assert len(events(client, admin, "admin_token.created")) == 1


def test_importing_a_value_another_token_has_is_409_and_leaves_nothing_half_made(client, admin):
    create(client, admin, name="first", token=IMPORTED)
    again = client.post(TOKENS, json={"name": "second", "scope": "admin", "token": IMPORTED}, headers=admin)
    assert again.status_code == 409, again.text
    assert "value exists already" in again.json()["detail"]
    assert names(client, admin) == ["first", "operator"]
    assert len(events(client, admin, "admin_token.created")) == 1


def test_an_import_racing_past_the_check_is_still_409_from_the_unique_digest_not_a_500(client, admin, monkeypatch):
    create(client, admin, name="first", token=IMPORTED)
    original = ApiTokens._refuse_taken
    checks: list[str] = []

    async def first_check_misses(self, name, value):  # as if the other token were inserted just after the check
        checks.append(name)
        if len(checks) > 1:
            await original(self, name, value)

    monkeypatch.setattr(ApiTokens, "_refuse_taken", first_check_misses)
    raced = client.post(TOKENS, json={"name": "second", "scope": "admin", "token": IMPORTED}, headers=admin)
    assert raced.status_code == 409, raced.text
    assert raced.json()["detail"] == "a token with this value exists already"
    assert checks == ["second", "second"]
    assert names(client, admin) == ["first", "operator"]
    assert len(events(client, admin, "admin_token.created")) == 1


def test_parallel_imports_of_one_value_make_exactly_one_token(client, admin):
    def add(n: int) -> int:
        body = {"name": f"racer-{n}", "scope": "introspect", "token": IMPORTED}
        return client.post(TOKENS, json=body, headers=admin).status_code

    answers = at_once(add, 8)
    assert sorted(answers) == [201] + [409] * 7
    assert len(names(client, admin, scope="introspect")) == 1


@pytest.mark.parametrize(
    "name",
    ["", " padded", "padded ", "x" * 65, "nul\x00", "café", "a/b", ".", "..", "-leading", "line\nbreak", "tab\tin"],
)
def test_a_name_that_cannot_be_one_is_400_and_nothing_is_made(client, admin, name):
    refused = client.post(TOKENS, json={"name": name, "scope": "introspect"}, headers=admin)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "printable characters" in refused.json()["detail"]
    assert names(client, admin) == ["operator"]
    assert events(client, admin, "admin_token.created") == []


@pytest.mark.parametrize(
    "value",
    [
        "short",
        "sgt_" + "x" * 31,
        "sgt_" + "x" * 201,
        "not-a-gateway-token-0123456789abcdef0123",
        f" {IMPORTED}",
        f"{IMPORTED}\n",
        IMPORTED[:-1] + "\x00",
        IMPORTED[:-1] + "é",
        "sgt_" + "x" * 100_000,
        "",
    ],
)
def test_a_token_value_that_cannot_be_one_is_400_and_nothing_is_made(client, admin, value):
    refused = client.post(TOKENS, json={"name": "imported", "scope": "introspect", "token": value}, headers=admin)
    assert refused.status_code in (400, 413), refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert names(client, admin) == ["operator"]
    assert events(client, admin, "admin_token.created") == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scope": "root"},
        {"name": "x", "scope": "Admin"},
        {"name": "x"},
        {"scope": "admin"},
        {"name": "x", "scope": "admin", "value": IMPORTED},
        {"name": 5, "scope": "admin"},
        {"name": "x", "scope": None},
        [1],
        "x",
    ],
)
def test_a_body_that_is_no_new_token_is_400_and_nothing_is_made(client, admin, body):
    refused = client.post(TOKENS, json=body, headers=admin)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert names(client, admin) == ["operator"]


@pytest.mark.parametrize("name", ["nobody", "x" * 5000, "%00", "caf%C3%A9", "a%20b"])
def test_an_unknown_token_is_404_on_every_route(client, admin, name):
    assert client.get(f"{TOKENS}/{name}", headers=admin).status_code == 404
    assert client.post(f"{TOKENS}/{name}/revoke", headers=admin).status_code == 404
    assert events(client, admin, "admin_token.revoked") == []


def test_tokens_are_listed_newest_first_in_stable_keyset_pages_filtered_by_scope_and_state(client, admin):
    made = [create(client, admin, name=f"t-{n}", scope="introspect" if n % 2 else "admin") for n in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get(TOKENS, params=params, headers=admin).json()
        seen.extend(t["name"] for t in page["items"])
        if cursor is None:  # a token made between pages is newer than the walk: never seen twice, none skipped
            create(client, admin, name="late")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["api_token"]["name"] for m in reversed(made)] + ["operator"]
    assert names(client, admin, scope="introspect") == ["late", "t-3", "t-1"]
    assert names(client, admin, scope="admin") == ["t-4", "t-2", "t-0", "operator"]
    assert names(client, admin, state="revoked") == []


@pytest.mark.parametrize(
    "params",
    [
        {"scope": "root"},
        {"state": "expired"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "x"},
        {"cursor": "not-a-cursor"},
        {"scope": "\x00"},
    ],
)
def test_a_listing_parameter_out_of_bounds_is_400(client, admin, params):
    refused = client.get(TOKENS, params=params, headers=admin)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_the_collection_answers_options_with_every_method_it_serves(client):
    answered = client.options(TOKENS)
    assert answered.status_code == 204
    assert answered.headers["allow"] == "GET, OPTIONS, POST"


def test_the_cli_and_the_api_see_and_change_the_same_tokens_and_record_the_same_events(
    client, admin, database_url, monkeypatch
):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    added = CliRunner().invoke(cli, ["admin-tokens", "add", "--name", "cli-made"])
    assert added.exit_code == 0, added.output
    assert client.get(f"{TOKENS}/cli-made", headers=admin).json()["scope"] == "introspect"

    api_made = create(client, admin, name="api-made", scope="admin")
    listed = CliRunner().invoke(cli, ["admin-tokens", "list"])
    assert listed.exit_code == 0, listed.output
    assert "api-made" in listed.output
    assert api_made["token"] not in listed.output
    revoked = CliRunner().invoke(cli, ["admin-tokens", "revoke", "--name", "api-made"])
    assert revoked.exit_code == 0, revoked.output
    assert client.get(f"{TOKENS}/api-made", headers=admin).json()["state"] == "revoked"
    assert client.get(TOKENS, headers=bearer(api_made["token"])).status_code == 401

    assert client.post(f"{TOKENS}/cli-made/revoke", headers=admin).status_code == 200
    again = CliRunner().invoke(cli, ["admin-tokens", "revoke", "--name", "cli-made"])
    assert again.exit_code == 0, again.output
    assert "already revoked cli-made" in again.output
    refused = CliRunner().invoke(cli, ["admin-tokens", "add", "--name", "api-made"])
    assert refused.exit_code != 0
    assert "exists already" in refused.output

    created = events(client, admin, "admin_token.created")
    assert [(e["actor"], sorted(e["detail"])) for e in created] == [
        ("admin-token:operator", ["imported", "name", "prefix", "scope"]),
        ("cli", ["imported", "name", "prefix", "scope"]),
    ]
    revokes = events(client, admin, "admin_token.revoked")
    assert [(e["actor"], e["detail"]["name"], e["detail"]["changed"]) for e in revokes] == [
        ("cli", "cli-made", False),
        ("admin-token:operator", "cli-made", True),
        ("cli", "api-made", True),
    ]
