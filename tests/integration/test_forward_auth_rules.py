"""Forward auth's rules, in process on both databases: a live session a matching rule does not hold for is 403 (never
401: it is authenticated); no rule, or no matching one, changes nothing; no spelling of a path, method or host, and
no header a client adds, makes a rule skip; a bad rule stops start-up naming the setting."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from sessiongate.gate.access import normalized_path
from sessiongate.identity.passwords import Passwords
from sessiongate.settings import ForwardAuthRule, GatewaySettings, Settings, SettingsError
from tests.support.gate import FORWARD_AUTH, open_session, provision, run

RULES = (
    ForwardAuthRule(path="/admin", roles=("admin",)),
    ForwardAuthRule(path="/staff", roles=("editor",)),
    ForwardAuthRule(path="/billing", dialects=("saymon",), methods=("POST",)),
    ForwardAuthRule(path="/", tenants=("default",), hosts=("intranet.example.com",)),
)


@pytest.fixture
def client(make_client):
    c = make_client(gateway=GatewaySettings(forward_auth_rules=RULES))
    c.app.state.services.identity.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024))
    run(c, provision, c.app.state.services)
    return c


def ask(client, session, uri=None, method="GET", **headers):
    named = {"X-Forwarded-Uri": uri} if uri is not None else {}
    return client.request(method, FORWARD_AUTH, headers={**session, **named, **headers})


def test_a_matching_rule_that_does_not_hold_is_403_in_problem_details(client):
    editor, _ = open_session(client, "saymon")  # roles editor and viewer
    refused = ask(client, editor, "/admin/users")
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "x-session-id" not in refused.headers
    assert ask(client, editor, "/staff").status_code == 200
    assert ask(client, editor, "/orders?page=2").status_code == 200


@pytest.mark.parametrize(
    "uri",
    [
        "/admin",
        "/admin/",
        "/Admin",
        "/ADMIN/x",
        "/%61dmin",
        "/%2561dmin",
        "/%252561dmin",
        "/a/../admin",
        "/./admin",
        "//admin",
        "/admin;x=1",
        "\\admin",
        "/admin?x=/orders",
        "https://intranet.example.com/admin",
        "/%25252525252561dmin",
        "/%00/admin",
        "no-path",
    ],
)
def test_no_spelling_of_a_guarded_path_escapes_its_rule(client, uri):
    editor, _ = open_session(client, "saymon")
    assert ask(client, editor, uri).status_code == 403, repr(uri)


@pytest.mark.parametrize("uri", ["/administration", "/orders/admin", "/staffing"])
def test_a_rule_covers_its_path_and_what_lies_under_it_not_a_longer_name(client, uri):
    device, _ = open_session(client, "zelf")  # no roles
    assert ask(client, device, uri).status_code == 200


def test_rules_hold_on_dialect_method_and_tenant(client):
    device, _ = open_session(client, "zelf")
    amity, _ = open_session(client, "amity")  # tenant acme
    assert ask(client, device, "/billing").status_code == 200  # the rule is for POST only
    assert ask(client, device, "/billing", method="POST").status_code == 403
    assert ask(client, device, "/billing", **{"X-Forwarded-Method": "POST"}).status_code == 403
    assert ask(client, device, "/staff").status_code == 403
    intranet = {"X-Forwarded-Host": "Intranet.Example.com:443"}
    assert ask(client, device, "/orders", **intranet).status_code == 200
    assert ask(client, amity, "/orders", **intranet).status_code == 403  # not of tenant default
    assert ask(client, amity, "/orders", **{"X-Forwarded-Host": "shop.example.com"}).status_code == 200


def test_a_header_a_client_adds_can_only_make_more_rules_apply(client):
    editor, _ = open_session(client, "saymon")
    # The proxy sets one of them to the real path; the client's other one never takes its place.
    assert ask(client, editor, "/admin", **{"X-Original-URI": "/orders"}).status_code == 403
    assert ask(client, editor, "/orders", **{"X-Original-URI": "/admin"}).status_code == 403
    # With no host named, a rule for a host applies.
    amity, _ = open_session(client, "amity")
    assert ask(client, amity, "/orders").status_code == 403


def test_with_no_path_named_every_rule_applies(client):
    editor, _ = open_session(client, "saymon")
    assert ask(client, editor).status_code == 403  # the /admin rule might be the one
    viewer_free = ask(client, editor, "/orders")
    assert viewer_free.status_code == 200


def test_without_a_session_it_is_401_before_any_rule(client):
    assert ask(client, {}, "/admin").status_code == 401


def test_no_rules_means_every_live_session_passes(make_client):
    c = make_client()
    run(c, provision, c.app.state.services)
    device, _ = open_session(c, "zelf")
    assert ask(c, device, "/admin").status_code == 200


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        ('[{"path": "admin", "roles": ["a"]}]', "must start with '/'"),
        ('[{"path": "/a%2Fb", "roles": ["a"]}]', "'%'"),
        ('[{"path": "/admin"}]', "requires nothing"),
        ('[{"path": "/a", "roles": ["a"], "methods": ["TRACE"]}]', "methods"),
        ('[{"path": "/a", "role": ["a"]}]', "role"),
        ('{"path": "/a"}', "forward_auth_rules"),
    ],
)
def test_a_bad_rule_stops_start_up_naming_it(rules, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({"SESSIONGATE_GATEWAY__FORWARD_AUTH_RULES": rules})


def test_rules_come_from_the_environment_as_json():
    settings = Settings.from_env(
        {"SESSIONGATE_GATEWAY__FORWARD_AUTH_RULES": '[{"path": "/admin", "roles": ["admin"], "methods": ["get"]}]'}
    )
    assert settings.gateway.forward_auth_rules == (ForwardAuthRule(path="/admin", roles=("admin",), methods=("get",)),)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/a/b/../c", "/a/c"),
        ("/../../etc", "/etc"),
        ("/A//B/", "/a/b/"),
        ("http://h/x?y", "/x"),
        ("/%2e%2e/admin", "/admin"),
        ("/%", "/%"),
        ("/admin;jsessionid=1/x", "/admin/x"),
        ("/ad\x00min", None),
        ("/%00", None),
    ],
)
def test_paths_are_read_as_an_upstream_resolves_them(uri, path):
    assert normalized_path(uri) == path


def test_rules_come_from_the_settings_file_as_tables(tmp_path):
    config = tmp_path / "sessiongate.toml"
    config.write_text('[[gateway.forward_auth_rules]]\npath = "/admin"\nroles = ["admin"]\n')
    settings = Settings.from_env({"SESSIONGATE_CONFIG": str(config)})
    assert settings.gateway.forward_auth_rules == (ForwardAuthRule(path="/admin", roles=("admin",)),)
