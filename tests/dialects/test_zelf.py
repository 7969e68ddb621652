from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from pathlib import Path

import jwt
import pytest
from litestar.testing import TestClient

from sessiongate.app import create_app
from tests.conftest import ROOT
from tests.support.clock import FakeClock

EXAMPLES = ROOT / "contracts" / "zelf" / "examples"


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


@pytest.fixture
def client(make_client):
    return make_client(dialects=("zelf",))


def test_create_returns_hs256_jwt_with_vendor_claims_and_unix_times(client, clock):
    response = client.post("/api/sessions", json={"identifier": "device_unique_id_here"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"token", "activatedAt", "expiresAt"}
    assert data["activatedAt"] == int(clock.now.timestamp())
    assert data["expiresAt"] == data["activatedAt"] + 600
    claims = claims_of(data["token"])
    assert claims["identifier"] == "device_unique_id_here"
    assert claims["exp"] == data["expiresAt"]
    assert isinstance(claims["session"], str)
    assert {"session", "identifier", "iat", "exp"} <= set(claims)
    assert header_of(data["token"])["alg"] == "HS256"
    assert header_of(data["token"])["kid"]


class TickingClock(FakeClock):
    """A clock that moves 0.6 s every time it is read: the second turns between any two readings of a request."""

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=0.6)
        return self.now


def test_a_new_sessions_token_was_issued_at_its_activated_at_even_when_the_second_turns_meanwhile(make_settings):
    # The seed's axios example reads activatedAt beside the token's iat; a create whose insert and signing fell on
    # either side of a second answered them one apart (seen in CI on PostgreSQL).
    with TestClient(create_app(make_settings(dialects=("zelf",)), clock=TickingClock())) as client:
        data = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    claims = claims_of(data["token"])
    assert (claims["iat"], claims["exp"]) == (data["activatedAt"], data["expiresAt"])


def test_token_is_signed_with_the_configured_key(make_client):
    key = "zelf-test-key-0123456789abcdef0123456789"
    client = make_client(dialects=("zelf",), jwt_keys={"k1": key})
    token = client.post("/api/sessions", json={"identifier": "a"}).json()["data"]["token"]
    assert jwt.decode(token, key, algorithms=["HS256"], options={"verify_exp": False})["identifier"] == "a"
    assert header_of(token)["kid"] == "k1"


def test_repeated_create_returns_the_live_session_with_its_original_times(client, clock):
    first = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    clock.advance(120)
    second = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    assert (second["activatedAt"], second["expiresAt"]) == (first["activatedAt"], first["expiresAt"])
    assert claims_of(second["token"])["session"] == claims_of(first["token"])["session"]


def test_a_different_identifier_gets_a_different_session(client):
    a = client.post("/api/sessions", json={"identifier": "dev-a"}).json()["data"]["token"]
    b = client.post("/api/sessions", json={"identifier": "dev-b"}).json()["data"]["token"]
    assert claims_of(a)["session"] != claims_of(b)["session"]


def test_create_after_expiry_starts_a_new_session(client, clock):
    first = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    clock.advance(600)
    second = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    assert claims_of(second["token"])["session"] != claims_of(first["token"])["session"]
    assert second["activatedAt"] == first["activatedAt"] + 600


def test_kill_session_ends_the_live_session_and_mints_a_new_one(client, clock):
    first = client.post("/api/sessions", json={"identifier": "dev-1"}).json()["data"]
    clock.advance(5)
    second = client.post("/api/sessions", json={"identifier": "dev-1", "killSession": True}).json()["data"]
    assert claims_of(second["token"])["session"] != claims_of(first["token"])["session"]
    assert second["activatedAt"] == first["activatedAt"] + 5


def test_lifetime_is_configurable(make_client):
    client = make_client(dialects=("zelf",), dialect_options={"zelf": {"lifetime": 60}})
    data = client.post("/api/sessions", json={"identifier": "a"}).json()["data"]
    assert data["expiresAt"] - data["activatedAt"] == 60


def test_bearer_header_sent_by_the_seed_client_is_accepted(client):
    response = client.post(
        "/api/sessions", json={"identifier": "a"}, headers={"Authorization": "Bearer YOUR_ACCESS_TOKEN"}
    )
    assert response.status_code == 200


def test_unknown_members_are_ignored(client):
    response = client.post("/api/sessions", json={"identifier": "a", "type": "general", "domain": "zelf"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "identifier is required"),
        ({"identifier": 42}, "identifier must be a string"),
        ({"identifier": None}, "identifier must be a string"),
        ({"identifier": ""}, "identifier must not be empty"),
        ({"identifier": "x" * 257}, "identifier must be at most 256 characters"),
        ([], "request body must be an object"),
        ({"identifier": "a", "killSession": "yes"}, "killSession must be a boolean"),
    ],
)
def test_invalid_identifier_gets_400_in_zelf_error_shape(client, body, message):
    response = client.post("/api/sessions", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_malformed_json_gets_400_in_zelf_error_shape(client):
    response = client.post("/api/sessions", content=b'{"identifier": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid JSON body"}


def test_missing_body_gets_400(client):
    response = client.post("/api/sessions", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "request body is required"}


def test_wrong_content_type_gets_415(client):
    response = client.post("/api/sessions", content=b"identifier=a", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.json() == {"error": "unsupported media type"}


def test_huge_body_gets_413_and_writes_nothing(client):
    body = json.dumps({"identifier": "a", "pad": "x" * 20_000}).encode()
    response = client.post("/api/sessions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"error": "request body too large"}


def test_other_methods_get_405_with_allow_header(client):
    response = client.get("/api/sessions")
    assert response.status_code == 405
    assert response.json() == {"error": "method not allowed"}
    assert response.headers["allow"] == "OPTIONS, POST"


def test_options_lists_every_method(client):
    response = client.options("/api/sessions")
    assert response.status_code == 204
    assert response.headers["allow"] == "OPTIONS, POST"


def test_seed_sample_request_gets_a_response_shaped_like_the_seed_sample(client):
    request = json.loads((EXAMPLES / "create-session.request.json").read_text())
    sample = json.loads((EXAMPLES / "create-session.response.json").read_text())
    response = client.post("/api/sessions", json=request)
    assert response.status_code == 200
    body = response.json()
    assert set(sample) == set(body)
    assert set(sample["data"]) <= set(body["data"])
    assert claims_of(body["data"]["token"])["identifier"] == request["identifier"]


def test_seed_missing_identifier_example_gets_the_recorded_error(client):
    request = json.loads((EXAMPLES / "create-session-missing-identifier.request.json").read_text())
    expected = json.loads((EXAMPLES / "create-session-missing-identifier.response.json").read_text())
    response = client.post("/api/sessions", json=request)
    assert (response.status_code, response.json()) == (400, expected)


def test_examples_folder_holds_the_seed_samples():
    names = {p.name for p in Path(EXAMPLES).iterdir()}
    assert {"create-session.request.json", "create-session.response.json"} <= names
