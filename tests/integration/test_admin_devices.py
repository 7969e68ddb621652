"""The admin API's devices, in process on both databases: provisioned with the CLI's checks (a taken name 409, a name
no URL can carry or text no database stores alike 400, nothing made), listed in keyset pages, read and removed; a
device made through the API takes portos logins, a removed one refuses them at once while its live sessions run on;
each change is an audit event; the CLI and the API see and make the same devices. The routes and the command group
are portos's (``PortosDialect.admin_controllers`` and ``commands``): without portos enabled, neither exists."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from sessiongate.cli import cli
from sessiongate.identity.passwords import Passwords
from tests.support.gate import LOGIN, PASSWORD, PREFIX, USER_ID, run
from tests.support.gate import api_token as token
from tests.support.server import run_command

DEVICES = f"{PREFIX}/admin/devices"
SESSIONS = f"{PREFIX}/admin/sessions"
AUDIT = f"{PREFIX}/admin/audit-events"
PORTOS_LOGIN = "/api/auth"


@pytest.fixture
def client(make_client):
    c = make_client(dialects=("portos",))
    services = c.app.state.services
    services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, services.identity.add_principal, tenant="default", login=LOGIN, principal_id=USER_ID, password=PASSWORD)
    return c


@pytest.fixture
def admin(client):
    return {"Authorization": f"Bearer {token(client, 'admin')}"}


def create(client, admin, **body):
    response = client.post(DEVICES, json={"name": "P01", "env": "CashRegister", **body}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def names(client, admin, tenant=None):
    params = {"tenant": tenant} if tenant is not None else {}
    response = client.get(DEVICES, params=params, headers=admin)
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["items"]]


def events(client, admin, kind):
    response = client.get(AUDIT, params={"kind": kind}, headers=admin)
    assert response.status_code == 200
    return response.json()["items"]


def portos_login(client, device):
    response = client.post(PORTOS_LOGIN, json={"UserName": LOGIN, "Password": PASSWORD, "DeviceName": device})
    client.cookies.clear()
    return response


def test_only_an_admin_token_reaches_devices(client):
    introspect = {"Authorization": f"Bearer {token(client, 'introspect', 'reader')}"}
    for method, path in (("GET", DEVICES), ("POST", DEVICES), ("GET", f"{DEVICES}/P01"), ("DELETE", f"{DEVICES}/P01")):
        no_token = client.request(method, path, json={"name": "P01", "env": "PDA"})
        assert no_token.status_code == 401
        assert no_token.headers["www-authenticate"] == 'Bearer realm="sessiongate"'
        assert client.request(method, path, json={"name": "P01", "env": "PDA"}, headers=introspect).status_code == 403
    admin = {"Authorization": f"Bearer {token(client, 'admin')}"}
    assert names(client, admin) == []


def test_a_device_made_through_the_api_takes_portos_logins_and_is_read_and_listed(client, admin):
    made = create(client, admin, description="Till 1", settings={"MaxQuantity": "200"})
    assert {k: made[k] for k in ("tenant", "name", "env", "description", "settings")} == {
        "tenant": "default",
        "name": "P01",
        "env": "CashRegister",
        "description": "Till 1",
        "settings": {"MaxQuantity": "200"},
    }
    login = portos_login(client, "P01")
    assert login.status_code == 200, login.text
    sessions = client.get(SESSIONS, params={"device_id": made["id"]}, headers=admin).json()["items"]
    assert [s["principal_id"] for s in sessions] == [USER_ID]

    shown = client.get(f"{DEVICES}/P01", headers=admin)
    assert shown.status_code == 200
    assert shown.json() == made
    assert names(client, admin) == ["P01"]

    created = events(client, admin, "device.created")
    assert [(e["actor"], e["tenant"], e["detail"]) for e in created] == [
        ("admin-token:operator", "default", {"device_id": made["id"], "name": "P01", "env": "CashRegister"})
    ]


def test_a_removed_device_refuses_the_next_login_while_its_live_session_runs_on(client, admin):
    made = create(client, admin)
    live = portos_login(client, "P01")
    assert live.status_code == 200, live.text
    bearer = {"Authorization": f"Bearer {live.json()['tokenId']}"}

    removed = client.delete(f"{DEVICES}/P01", headers=admin)
    assert removed.status_code == 204
    refused = portos_login(client, "P01")
    assert refused.status_code == 400, refused.text
    assert "does not exist" in refused.text
    assert client.get(f"{DEVICES}/P01", headers=admin).status_code == 404
    assert client.delete(f"{DEVICES}/P01", headers=admin).status_code == 404

    profile = client.get(PORTOS_LOGIN, headers=bearer)  # the session outlives its device (decision 25)
    assert profile.status_code == 200, profile.text
    sessions = client.get(SESSIONS, params={"device_id": made["id"], "state": "live"}, headers=admin).json()
    assert len(sessions["items"]) == 1

    again = create(client, admin)  # a new device under the old name: logins again, taking nothing over
    assert again["id"] != made["id"]
    assert portos_login(client, "P01").status_code == 200
    assert client.get(PORTOS_LOGIN, headers=bearer).status_code == 200
    removals = events(client, admin, "device.removed")
    assert [(e["actor"], e["detail"]["device_id"]) for e in removals] == [("admin-token:operator", made["id"])]


def test_a_taken_name_is_409_and_the_same_name_in_another_tenant_is_another_device(client, admin):
    create(client, admin)
    again = client.post(DEVICES, json={"name": "P01", "env": "PDA"}, headers=admin)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"].startswith("application/problem+json")
    assert client.get(f"{DEVICES}/P01", headers=admin).json()["env"] == "CashRegister"
    other = create(client, admin, tenant="shop")
    assert other["tenant"] == "shop"
    assert names(client, admin, "shop") == ["P01"]
    assert client.get(f"{DEVICES}/P01", params={"tenant": "shop"}, headers=admin).json()["id"] == other["id"]
    assert len(events(client, admin, "device.created")) == 2


HOSTILE = [
    {"name": "."},
    {"name": ".."},
    {"name": "a/b"},
    {"name": "/"},
    {"name": ""},
    {"name": "x" * 129},
    {"name": "nul\x00inside"},
    {"name": " padded"},
    {"name": "line\nbreak"},
    {"name": "zero\u200bwidth"},
    {"name": "right\u202eto-left"},
    {"name": "private\ue000use"},
    {"name": "unassigned\U000e0fff"},
    {"env": "Kiosk"},
    {"env": "BackOffice\x00"},
    {"tenant": "x" * 65},
    {"tenant": ""},
    {"tenant": "nul\x00"},
    {"description": "x" * 257},
    {"description": "nul\x00"},
    {"description": "bell\x07"},
    {"settings": {f"k{n}": "v" for n in range(101)}},
    {"settings": {"": "v"}},
    {"settings": {"k" * 129: "v"}},
    {"settings": {"nul\x00": "v"}},
    {"settings": {"k": "nul\x00"}},
    {"settings": {"k": "x" * 1025}},
    {"settings": {"k": "escape\x1b[2J"}},
    {"settings": {"k\u2028": "v"}},
    {"settings": {"k": 1}},
    {"settings": ["k=v"]},
    {"surplus": True},
]


@pytest.mark.parametrize("change", HOSTILE, ids=repr)
def test_a_device_no_url_can_name_or_no_database_stores_alike_is_400_and_nothing_is_made(client, admin, change):
    body = {"name": "P01", "env": "PDA"} | change
    refused = client.post(DEVICES, json=body, headers=admin)
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    tenant = change.get("tenant")
    assert names(client, admin) == []
    if isinstance(tenant, str) and tenant and "\x00" not in tenant:
        assert names(client, admin, tenant) == []
    assert events(client, admin, "device.created") == []


def test_the_widest_device_the_checks_allow_is_stored_alike_on_both_databases(client, admin):
    # every width at its most at once, within the gateway's body limit (16 KiB by default)
    settings = {f"{n:03d}" + "k" * 125: "v" for n in range(99)} | {"long": "é\t\n" + "v" * 1021}
    made = create(client, admin, name="n" * 128, tenant="t" * 64, description="d" * 256, settings=settings)
    assert made["settings"] == settings
    shown = client.get(f"{DEVICES}/{'n' * 128}", params={"tenant": "t" * 64}, headers=admin)
    assert shown.json() == made


@pytest.mark.parametrize("name", ["nope", "x" * 129, "é", "%2E%2E%2E"])
def test_an_unknown_device_is_404_to_read_and_remove(client, admin, name):
    assert client.get(f"{DEVICES}/{name}", headers=admin).status_code == 404
    assert client.delete(f"{DEVICES}/{name}", headers=admin).status_code == 404
    assert events(client, admin, "device.removed") == []


@pytest.mark.parametrize("name", ["%00", "x" * 1025])
def test_a_name_no_device_can_have_is_400_to_read_and_remove(client, admin, name):
    assert client.get(f"{DEVICES}/{name}", headers=admin).status_code == 400
    assert client.delete(f"{DEVICES}/{name}", headers=admin).status_code == 400


def test_devices_are_listed_newest_first_in_stable_keyset_pages_of_one_tenant(client, admin):
    made = [create(client, admin, name=f"D{n}")["id"] for n in range(5)]
    create(client, admin, name="elsewhere", tenant="shop")
    seen, cursor = [], None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = client.get(DEVICES, params=params, headers=admin).json()
        seen.extend(d["id"] for d in page["items"])
        if cursor is None:  # a device made between pages is newer than the walk: never seen twice, none skipped
            create(client, admin, name="late")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "201"}, {"cursor": "not-a-cursor"}, {"tenant": "\x00"}])
def test_a_listing_parameter_out_of_bounds_is_400(client, admin, params):
    refused = client.get(DEVICES, params=params, headers=admin)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_options_lists_the_methods_of_each_devices_path(client):
    assert client.options(DEVICES).headers["allow"] == "GET, OPTIONS, POST"
    assert client.options(f"{DEVICES}/P01").headers["allow"] == "DELETE, GET, OPTIONS"


def test_the_cli_and_the_api_see_and_change_the_same_devices_and_record_the_same_events(
    client, admin, database_url, monkeypatch
):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    added = CliRunner().invoke(
        cli, ["devices", "add", "--name", "H1", "--env", "PDA", "--description", "Hand 1", "--setting", "a=b"]
    )
    assert added.exit_code == 0, added.output
    cli_made = client.get(f"{DEVICES}/H1", headers=admin).json()
    assert (cli_made["env"], cli_made["description"], cli_made["settings"]) == ("PDA", "Hand 1", {"a": "b"})
    assert portos_login(client, "H1").status_code == 200

    api_made = create(client, admin)
    listed = CliRunner().invoke(cli, ["devices", "list"])
    assert listed.exit_code == 0, listed.output
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == ["H1", "P01"]
    removed = CliRunner().invoke(cli, ["devices", "remove", "--name", "P01"])
    assert removed.exit_code == 0, removed.output
    assert client.get(f"{DEVICES}/P01", headers=admin).status_code == 404
    assert client.delete(f"{DEVICES}/H1", headers=admin).status_code == 204
    assert names(client, admin) == []

    created = events(client, admin, "device.created")
    assert [(e["actor"], e["detail"]["name"]) for e in created] == [("admin-token:operator", "P01"), ("cli", "H1")]
    assert {k for e in created for k in e["detail"]} == {"device_id", "name", "env"}
    removals = events(client, admin, "device.removed")
    assert [(e["actor"], e["detail"]["device_id"]) for e in removals] == [
        ("admin-token:operator", cli_made["id"]),
        ("cli", api_made["id"]),
    ]


@pytest.mark.parametrize("name", [".", "..", "a/b", "tab\tin", "zero\u200bwidth"])
def test_the_cli_refuses_the_names_the_api_refuses(client, admin, database_url, monkeypatch, name):
    monkeypatch.setenv("SESSIONGATE_DATABASE_URL", database_url)
    refused = CliRunner().invoke(cli, ["devices", "add", "--name", name, "--env", "PDA"])
    assert refused.exit_code == 1, refused.output
    assert "device name" in refused.output
    assert client.post(DEVICES, json={"name": name, "env": "PDA"}, headers=admin).status_code == 400
    assert names(client, admin) == []
    assert events(client, admin, "device.created") == []


def test_without_portos_the_admin_api_has_no_devices_and_the_rest_of_it_is_there(make_client):
    client = make_client(dialects=("zelf",))
    admin = {"Authorization": f"Bearer {token(client, 'admin')}"}
    for method, path in (("GET", DEVICES), ("POST", DEVICES), ("GET", f"{DEVICES}/P01"), ("DELETE", f"{DEVICES}/P01")):
        absent = client.request(method, path, json={"name": "P01", "env": "PDA"}, headers=admin)
        assert absent.status_code == 404, absent.text
        assert absent.headers["content-type"].startswith("application/problem+json")
    assert client.get(SESSIONS, headers=admin).status_code == 200
    assert client.get(AUDIT, headers=admin).status_code == 200


def test_the_device_routes_are_the_gateways_behind_its_guard_failing_in_problem_details_not_portoss(client, admin):
    refused = client.post(DEVICES, json={"name": "P01", "env": "Kiosk"}, headers=admin)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.headers["cache-control"] == "no-store"
    body = refused.json()
    assert body["instance"] == DEVICES
    assert "traceId" not in body  # portos's own error body carries one; the admin API's problem details do not
    assert client.get(DEVICES).status_code == 401


CONFIGURATION = 2  # the README's exit status of a setting that cannot work


@pytest.mark.slow
def test_without_portos_sessiongate_devices_is_one_line_and_exit_status_2(database_url, tmp_path):
    for args in (("devices", "list"), ("devices", "add", "--name", "P01", "--env", "PDA"), ("devices", "--help")):
        done = run_command(database_url, tmp_path, *args, env={"SESSIONGATE_DIALECTS": "zelf,issp"})
        assert done.returncode == CONFIGURATION, done.stderr
        assert done.stdout == ""
        assert done.stderr.splitlines() == [
            "Error: `sessiongate devices` is a command of the portos dialect, which SESSIONGATE_DIALECTS does not "
            "enable: enable portos to use it"
        ]
    unknown = run_command(database_url, tmp_path, "nonsense", env={"SESSIONGATE_DIALECTS": "zelf"})
    assert unknown.returncode == CONFIGURATION
    assert "No such command 'nonsense'" in unknown.stderr


@pytest.mark.slow
def test_with_portos_enabled_sessiongate_devices_is_there_and_dialects_names_it(database_url, tmp_path):
    helped = run_command(database_url, tmp_path, "devices", "--help", env={"SESSIONGATE_DIALECTS": "portos"})
    assert helped.returncode == 0, helped.stderr
    assert all(command in helped.stdout for command in ("add", "list", "remove"))
    listed = run_command(database_url, tmp_path, "dialects", env={"SESSIONGATE_DIALECTS": "zelf"})
    assert listed.returncode == 0, listed.stderr
    [portos] = [line for line in listed.stdout.splitlines() if line.startswith("portos ")]
    assert "disabled" in portos
    assert portos.endswith("commands: devices")
    assert "commands:" not in "".join(line for line in listed.stdout.splitlines() if not line.startswith("portos "))
    root = run_command(database_url, tmp_path, "--help")
    assert "`sessiongate dialects` lists them" in " ".join(root.stdout.split())  # where the dialects' groups are


@pytest.mark.slow
def test_the_cli_refuses_what_the_database_lacks_before_portoss_branch_is_migrated(empty_database_url, tmp_path):
    manual = {"SESSIONGATE_AUTO_MIGRATE": "false", "SESSIONGATE_DIALECTS": "zelf"}
    assert run_command(empty_database_url, tmp_path, "db", "upgrade", env=manual).returncode == 0  # the core's only
    refused = run_command(empty_database_url, tmp_path, "devices", "list", env=manual | {"SESSIONGATE_DIALECTS": "*"})
    assert refused.returncode == 4, refused.stderr  # not migrated: the README's exit status 4
    assert "1 migration pending" in refused.stderr
    assert "sessiongate db upgrade" in refused.stderr
    migrating = {"SESSIONGATE_AUTO_MIGRATE": "true"}  # as every command does, it migrates when told to: portos's too
    assert run_command(empty_database_url, tmp_path, "devices", "list", env=migrating).returncode == 0
