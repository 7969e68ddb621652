"""The admin API against a hostile caller holding a valid admin token, on real server processes over SQLite and
PostgreSQL: NUL, odd Unicode, deep nesting, bodies at and past the limit, the wrong media type, bytes that are no
UTF-8 and many requests at once are each a 4xx in problem details, the same on both databases; nothing is half made,
no forged address reaches an audit event, no foreign origin is let read an answer, and nothing is logged as an error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sessiongate.gate.tokens import ApiTokens
from sessiongate.runtime import open_services
from sessiongate.settings import Settings
from tests.support.gateways import Gateway, comparable, provisioned_gateways
from tests.support.parallel import at_once

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

LIMIT = 64 * 1024
ADMIN = "/_sessiongate/admin"
PROBLEM = {"type", "title", "status", "detail", "instance"}
BODIES = [
    ("/principals", {"login": "hostile@example.com", "id": "hostile", "roles": ["a"], "password": None}),
    ("/tenant-keys", {"tenant": "hostile-network"}),
    ("/network-admin-tokens", {"tenant": "edge"}),
    ("/api-tokens", {"name": "hostile", "scope": "introspect"}),
    ("/revoke-principal-sessions", {"principal_id": "hostile", "tenant": "default"}),
]
"""The admin API's bodies, each well formed: what is made of them is undone by nothing, so each is poisoned, never
sent whole, but for the parallel test's principal."""


@pytest.fixture(scope="module")
def gateways(tmp_path_factory) -> Iterator[list[Gateway]]:
    directory = tmp_path_factory.mktemp("admin-hostile")
    with provisioned_gateways(directory, env={"SESSIONGATE_MAX_BODY_BYTES": str(LIMIT)}) as found:
        for gateway in found:
            gateway.credentials["admin"] = _admin_token(gateway.database_url)
        yield found


def _admin_token(database_url: str) -> str:
    async def go() -> str:
        async with open_services(Settings(database_url=database_url, sweep_interval=0), migrate=False) as services:
            tokens = ApiTokens(services.runner, services.digester, services.clock)
            return (await tokens.add("hostile-test", "admin")).value

    return asyncio.run(go())


def call(gateway: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {gateway.credentials['admin']}", **kwargs.pop("headers", {})}
    return gateway.request(method, f"{ADMIN}{path}", headers=headers, **kwargs)


def refused_alike(responses: list[httpx.Response], status: int | None = None) -> None:
    for response in responses:
        assert 400 <= response.status_code < 500, (response.status_code, response.text)
        assert status is None or response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        assert set(response.json()) >= PROBLEM, response.text
        assert response.headers["cache-control"] == "no-store"
    assert len({json.dumps(comparable(r)) for r in responses}) == 1, [comparable(r) for r in responses]


def poisoned(body: dict[str, Any], raw: str) -> bytes:
    """``body`` as JSON with its first string member replaced by the raw JSON text ``raw``."""
    member = next(k for k, v in body.items() if isinstance(v, str))
    marker = "\u2063poison\u2063"
    return json.dumps({**body, member: marker}).encode().replace(json.dumps(marker).encode(), raw.encode())


@pytest.mark.parametrize(("path", "body"), BODIES, ids=[p for p, _ in BODIES])
@pytest.mark.parametrize(
    "raw",
    ['"a\\u0000b"', '"\\ud800"', '"\\udc00x"', "[" * 1000 + "]" * 1000, "{" + '"a":{' * 2000 + "}" * 2001, "1e999"],
    ids=["nul", "lone-high-surrogate", "lone-low-surrogate", "deep-array", "deep-object", "huge-number"],
)
def test_a_poisoned_member_of_any_admin_body_is_refused_alike_and_makes_nothing(gateways, path, body, raw):
    refused_alike(
        [
            call(g, "POST", path, content=poisoned(body, raw), headers={"content-type": "application/json"})
            for g in gateways
        ]
    )


@pytest.mark.parametrize(("path", "body"), BODIES, ids=[p for p, _ in BODIES])
def test_a_body_over_the_limit_is_413_chunked_or_not_and_the_wrong_media_type_415(gateways, path, body):
    big = poisoned(body, json.dumps("x" * LIMIT))
    refused_alike(
        [call(g, "POST", path, content=big, headers={"content-type": "application/json"}) for g in gateways], 413
    )
    chunks = [big[: LIMIT // 2], big[LIMIT // 2 :]]
    refused_alike(
        [call(g, "POST", path, content=iter(chunks), headers={"content-type": "application/json"}) for g in gateways],
        413,
    )
    refused_alike(
        [call(g, "POST", path, content=json.dumps(body), headers={"content-type": "text/plain"}) for g in gateways], 415
    )
    refused_alike(
        [
            call(g, "POST", path, content=b'{"login": "\xff\xfe"}', headers={"content-type": "application/json"})
            for g in gateways
        ],
        400,
    )


@pytest.mark.parametrize(
    "path",
    [
        "/sessions?tenant=a%00b",
        "/sessions?created_after=2026-13-45T00:00:00Z",
        # Read fine, but past a datetime's range once in UTC, where they are stored and compared.
        "/sessions?created_after=9999-12-31T23:59:59-14:00",
        "/sessions?last_seen_before=0001-01-01T00:00:00%2B00:01",
        "/audit-events?after=0001-01-01T00:00:00%2B14:00",
        "/sessions?limit=1e3",
        "/sessions?cursor=%ED%A0%80",
        "/audit-events?kind=" + "k" * 2000,
        "/principals?realm=%00",
        "/tenant-keys?kind=%00",
        "/api-tokens?scope=%F0%9F%92%A5",
        "/principals/x?tenant=%00",
    ],
)
def test_a_hostile_query_is_refused_alike(gateways, path):
    refused_alike([call(g, "GET", path) for g in gateways], 400)


@pytest.mark.parametrize(
    "path",
    ["/sessions/a%00b", "/principals/a%00b", "/tenant-keys/%00", "/api-tokens/%00", "/sessions/%ED%A0%80/revoke"],
)
def test_a_hostile_path_segment_is_a_clean_4xx_alike(gateways, path):
    method = "POST" if path.endswith("/revoke") else "GET"
    refused_alike([call(g, method, path) for g in gateways])


def test_twenty_parallel_creates_of_one_principal_make_exactly_one(gateways):
    body = {"login": "racer@example.com", "id": "racer"}
    for g in gateways:
        statuses = at_once(lambda _, g=g: call(g, "POST", "/principals", json=body).status_code, 20)
        assert sorted(statuses) == [201] + [409] * 19, statuses
        listed = call(g, "GET", "/principals", params={"limit": "200"}).json()["items"]
        assert [p["id"] for p in listed].count("racer") == 1
        deleted = call(g, "DELETE", "/principals/racer")
        assert deleted.status_code == 204


def test_a_forged_forwarded_address_never_reaches_an_audit_event(gateways):
    for g in gateways:
        forged = {"x-forwarded-for": "6.6.6.6", "forwarded": "for=6.6.6.6", "x-real-ip": "6.6.6.6"}
        revoked = call(g, "POST", "/revoke-principal-sessions", json={"principal_id": "nobody"}, headers=forged)
        assert revoked.status_code == 200
        events = call(g, "GET", "/audit-events", params={"principal_id": "nobody"}).json()["items"]
        assert events
        assert all(e["client_address"] == "127.0.0.1" for e in events), events


def test_no_foreign_origin_is_let_read_an_admin_answer(gateways):
    for g in gateways:
        for method in ("GET", "OPTIONS"):
            headers = {"origin": "https://evil.example", "access-control-request-method": "GET"}
            response = call(g, method, "/sessions", headers=headers)
            assert "access-control-allow-origin" not in response.headers
            assert "access-control-allow-credentials" not in response.headers


def test_nothing_hostile_was_logged_as_an_error(gateways):
    for g in gateways:
        lines = [json.loads(line) for line in g.server.logs().splitlines() if line.startswith("{")]
        assert lines
        assert [line for line in lines if line["level"] in {"error", "critical"}] == []
        assert "Traceback" not in g.server.logs()
