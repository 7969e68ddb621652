from __future__ import annotations

import json
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateways import (
    API_KEY,
    DEVICE,
    LOGIN,
    PASSWORD,
    SERVER_KEY,
    USER_ID,
    Gateway,
    comparable,
    in_dialect_shape,
    provisioned_gateways,
)

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

LIMIT = 1024 * 1024  # max_body_bytes of these servers: large enough for a body nested 100 000 deep to be read
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Route:
    dialect: str
    method: str
    path: str
    body: Callable[[Mapping[str, str]], dict[str, Any]]
    headers: Callable[[Gateway], dict[str, str]] = lambda _: {}

    def __str__(self) -> str:
        return f"{self.dialect} {self.method} {self.path}"


def amity_key(_: Gateway) -> dict[str, str]:
    return {"x-api-key": API_KEY}


BODY_ROUTES = [
    Route("zelf", "POST", "/api/sessions", lambda _: {"identifier": "hostile-device"}),
    Route("issp", "POST", "/api/session/createSession", lambda _: {"userId": USER_ID}),
    Route("issp", "POST", "/api/session/createSession", lambda _: {"userID": USER_ID}),
    Route("portos", "POST", "/api/auth", lambda _: {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": DEVICE}),
    Route(
        "portos",
        "POST",
        "/api/auth/refresh",
        lambda c: {"tokenId": c["portos_token"], "refreshToken": c["portos_refresh"]},
    ),
    Route("saymon", "POST", "/node/api/users/session", lambda _: {"login": LOGIN, "password": PASSWORD}),
    Route("saymon", "POST", "/node/api/users/session", lambda c: {"auth-token": c["saymon_auth_token"]}),
    *(
        Route(
            "amity",
            "POST",
            f"/api/v{version}/sessions",
            lambda _: {
                "userId": "hostile",
                "deviceId": "hostile-device",
                "displayName": "Hostile",
                "deviceInfo": {"kind": "web", "model": "browser", "sdkVersion": "1.0"},
            },
            amity_key,
        )
        for version in (3, 4, 5)
    ),
    Route(
        "amity",
        "POST",
        "/api/v4/authentication/token",
        lambda _: {"userId": "hostile"},
        lambda _: {"x-server-key": SERVER_KEY},
    ),
]


def members(route: Route) -> list[str]:
    """The dotted path of every string member of the route's well-formed body."""

    def walk(value: Any, prefix: str) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, f"{prefix}{key}.")
        elif isinstance(value, str):
            yield prefix.rstrip(".")

    return list(walk(route.body(defaultdict(lambda: "credential")), ""))


POISONED = [(route, member) for route in BODY_ROUTES for member in members(route)]


def with_member(body: dict[str, Any], member: str, raw: str | bytes) -> bytes:
    """``body`` as JSON text with the member at ``member`` replaced by the raw JSON text ``raw``."""
    marker = "\u2063poison\u2063"
    target = body
    *parents, last = member.split(".")
    for key in parents:
        target = target[key]
    target[last] = marker
    text = raw if isinstance(raw, bytes) else raw.encode()
    return json.dumps(body).encode().replace(json.dumps(marker).encode(), text)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory) -> Iterator[list[Gateway]]:
    directory = tmp_path_factory.mktemp("hostile")
    with provisioned_gateways(directory, env={"SESSIONGATE_MAX_BODY_BYTES": str(LIMIT)}) as found:
        yield found


@pytest.fixture(scope="module")
def sessions_before(gateways) -> list[int]:
    return [g.session_count() for g in gateways]


def answers(gateways: list[Gateway], route: Route, body: Callable[[dict[str, Any]], bytes]) -> list[httpx.Response]:
    """The answer of every gateway to the route, with ``body`` made from that gateway's well-formed body."""
    return [
        g.request(route.method, route.path, content=body(route.body(g.credentials)), headers=JSON | route.headers(g))
        for g in gateways
    ]


def assert_refused_alike(dialect: str, responses: list[httpx.Response], status: int | None = None) -> None:
    for response in responses:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert status is None or response.status_code == status, (response.status_code, response.text)
        assert in_dialect_shape(dialect, response), response.text
    assert len({json.dumps(comparable(r)) for r in responses}) == 1, [comparable(r) for r in responses]


@pytest.mark.parametrize(("route", "member"), POISONED, ids=[f"{r}:{m}" for r, m in POISONED])
def test_nul_in_any_member_of_any_body_is_refused_alike_on_every_database(gateways, sessions_before, route, member):
    responses = answers(gateways, route, lambda body: with_member(body, member, '"a\\u0000b"'))
    assert_refused_alike(route.dialect, responses)


@pytest.mark.parametrize(("route", "member"), POISONED, ids=[f"{r}:{m}" for r, m in POISONED])
@pytest.mark.parametrize("surrogate", ['"\\ud800"', '"a\\udfffb"', '"\\ud800\\u0041"', b'"\xed\xa0\x80"'])
def test_unpaired_surrogates_in_any_member_are_refused_alike(gateways, sessions_before, route, member, surrogate):
    responses = answers(gateways, route, lambda body: with_member(body, member, surrogate))
    assert_refused_alike(route.dialect, responses)


def nested(body: dict[str, Any], route: Route, depth: int, where: str) -> bytes:
    deep = "[" * depth + "]" * depth
    if where == "whole body":
        return deep.encode()
    if where == "unknown member":
        return json.dumps(body).removesuffix("}").encode() + b', "deep": ' + deep.encode() + b"}"
    return with_member(body, members(route)[0], deep)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=str)
@pytest.mark.parametrize("depth", [1_000, 100_000])
@pytest.mark.parametrize("where", ["known member", "unknown member", "whole body"])
def test_json_nested_a_thousand_or_a_hundred_thousand_deep_is_refused_alike(
    gateways, sessions_before, route, depth, where
):
    assert len(nested(route.body(gateways[0].credentials), route, depth, where)) <= LIMIT
    assert_refused_alike(route.dialect, answers(gateways, route, lambda body: nested(body, route, depth, where)))


def filled_to(body: dict[str, Any], route: Route, size: int) -> bytes:
    """``body`` with its first member a string long enough for the whole to be ``size`` bytes."""
    member = members(route)[0]
    overhead = len(with_member(dict(body), member, '""'))
    return with_member(body, member, '"' + "x" * (size - overhead) + '"')


@pytest.mark.parametrize("route", BODY_ROUTES, ids=str)
def test_a_body_just_under_the_limit_is_read_and_one_just_over_it_is_413(gateways, sessions_before, route):
    assert len(filled_to(route.body(gateways[0].credentials), route, LIMIT)) == LIMIT
    read = answers(gateways, route, lambda body: filled_to(body, route, LIMIT))
    assert_refused_alike(route.dialect, read)
    assert read[0].status_code != 413
    assert_refused_alike(route.dialect, answers(gateways, route, lambda body: filled_to(body, route, LIMIT + 1)), 413)
    chunked = [
        g.request(
            route.method,
            route.path,
            content=iter([whole[: LIMIT // 2], whole[LIMIT // 2 :]]),
            headers=JSON | route.headers(g),
        )
        for g in gateways
        for whole in [filled_to(route.body(g.credentials), route, LIMIT + 1)]
    ]
    assert all("content-length" not in r.request.headers for r in chunked)
    assert_refused_alike(route.dialect, chunked, status=413)


def portos_bearer(g: Gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {g.credentials['portos_token']}"}


def amity_bearer(g: Gateway) -> dict[str, str]:
    return {"authorization": f"Bearer {g.credentials['amity_token']}"}


def saymon_cookie(g: Gateway) -> dict[str, str]:
    return {"cookie": f"sid={g.credentials['saymon_sid']}"}


PARAMETERS = [
    ("portos", "GET", "/sessions/a%00b", portos_bearer),
    ("portos", "DELETE", "/sessions/%00", portos_bearer),
    ("portos", "GET", "/api/sessions/a%00b", portos_bearer),
    ("portos", "GET", "/sessions?sessionId=eq:a%00b", portos_bearer),
    ("portos", "GET", "/sessions?identity.deviceName=eq:%00", portos_bearer),
    ("portos", "GET", "/sessions?$sort=%00", portos_bearer),
    ("portos", "GET", "/sessions?$take=%00", portos_bearer),
    ("portos", "GET", "/sessions/%ED%A0%80", portos_bearer),
    ("portos", "GET", "/api/auth", lambda _: {"authorization": "Bearer a%00b"}),
    ("saymon", "GET", "/node/api/users/session/verify/a%00b", lambda _: {"cookie": "sid=a%00b"}),
    ("saymon", "GET", "/node/api/users/current", lambda _: {"cookie": "sid=a%00b"}),
    ("saymon", "GET", "/node/api/users/current", lambda _: {"x-session-id": "a%00b"}),
    ("saymon", "DELETE", "/node/api/users/session", lambda _: {"cookie": "sid=%00"}),
    ("issp", "POST", "/api/session/validateSession", lambda _: {"cookie": "sessionCookie=%00"}),
    (
        "issp",
        "GET",
        "/api/session/validateSession",
        lambda _: {"cookie": "sessionCookie=j%3A%7B%22sessionId%22%3A%22a%00b%22%7D"},
    ),
    (
        "issp",
        "POST",
        "/api/session/deleteSession",
        lambda _: {"cookie": "sessionCookie=j%3A%7B%22sessionId%22%3A%22a%5Cu0000b%22%7D"},
    ),
    (
        "issp",
        "POST",
        "/api/session/validateSession",
        lambda _: {"cookie": "sessionCookie=j%3A%7B%22x%22%3A" + "%5B" * 1200 + "%5D" * 1200 + "%7D"},
    ),
    ("amity", "DELETE", "/api/v4/sessions/users/a%00b", amity_bearer),
    ("amity", "DELETE", "/api/v4/sessions?userId=a%00b", amity_bearer),
    ("amity", "GET", "/api/v3/authentication/token?userId=%00", lambda _: {"x-server-key": SERVER_KEY}),
    ("amity", "GET", "/api/v3/sessions", lambda g: amity_bearer(g) | {"x-api-key": "a%00b"}),
]


@pytest.mark.parametrize(
    ("dialect", "method", "path", "headers"), PARAMETERS, ids=[f"{d} {m} {p}" for d, m, p, _ in PARAMETERS]
)
def test_nul_or_nesting_in_a_path_query_header_or_cookie_is_refused_alike(
    gateways, sessions_before, dialect, method, path, headers
):
    responses = [g.request(method, path, headers=headers(g)) for g in gateways]
    assert_refused_alike(dialect, responses)


def logged_errors(gateway: Gateway) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in gateway.server.logs().splitlines() if line.startswith("{")]
    assert lines, "the gateway logs (its start-up line), so a check for errors means something"
    return [line for line in lines if line["level"] in {"error", "critical"}]


def request_statuses(gateway: Gateway, method: str, path: str) -> dict[str, float]:
    """``sessiongate_requests_total`` of one route, by status."""
    text = gateway.request("GET", "/metrics").text
    return {
        sample.labels["status_code"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "sessiongate_requests_total"
        and (sample.labels["method"], sample.labels["path"]) == (method, path)
    }


@pytest.mark.parametrize("route", [BODY_ROUTES[0], BODY_ROUTES[3], BODY_ROUTES[5], BODY_ROUTES[7]], ids=str)
def test_a_client_that_disconnects_mid_body_is_neither_logged_as_an_error_nor_counted_as_a_500(
    gateways, sessions_before, route
):
    for g in gateways:
        before, errors_before = request_statuses(g, route.method, route.path), logged_errors(g)
        host, port = g.base_url.removeprefix("http://").split(":")
        head = [f"{route.method} {route.path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in route.headers(g).items()] + ["Content-Length: 1000", "", ""]
        with socket.create_connection((host, int(port)), timeout=10) as client:
            client.sendall("\r\n".join(head).encode() + b'{"partial": "bo')
            time.sleep(0.2)  # the server has read the head and waits for the rest of the body
        deadline = time.monotonic() + 30
        while (after := request_statuses(g, route.method, route.path)) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        counted = {status: after[status] - before.get(status, 0) for status in after}
        assert {status for status, n in counted.items() if n} == {"499"}, counted
        assert logged_errors(g) == errors_before


def test_no_hostile_request_left_a_session_behind_or_an_error_in_the_log(gateways, sessions_before):
    assert [g.session_count() for g in gateways] == sessions_before
    for g in gateways:
        assert logged_errors(g) == []
        assert "Traceback" not in g.server.logs()
