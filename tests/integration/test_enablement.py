from __future__ import annotations

import pytest
from litestar.exceptions import ImproperlyConfiguredException

from sessiongate.app import create_app
from sessiongate.settings import Settings


def test_a_disabled_dialect_has_no_routes_and_no_docs(make_client):
    client = make_client(dialects=())
    response = client.post("/api/sessions", json={"identifier": "a"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404
    assert client.get("/docs/zelf").status_code == 404
    assert "/docs/zelf" not in client.get("/docs").text


def test_an_enabled_dialect_is_listed_in_the_docs(make_client):
    client = make_client(dialects=("zelf",))
    index = client.get("/docs").text
    assert "/docs/zelf" in index
    assert client.get("/docs/zelf/openapi.yaml").text.startswith("openapi: 3.1")


def test_unknown_dialect_stops_start_up_naming_the_installed_ones(tmp_path):
    with pytest.raises(ImproperlyConfiguredException, match=r"installed: .*zelf"):
        create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db", dialects=("zelf", "nope")))


def test_a_prefix_moves_a_dialect(make_client):
    client = make_client(dialects=("zelf",), dialect_options={"zelf": {"prefix": "/zelf"}})
    assert client.post("/zelf/api/sessions", json={"identifier": "a"}).status_code == 200
    assert client.post("/api/sessions", json={"identifier": "a"}).status_code == 404


def test_paths_no_dialect_owns_get_problem_details(make_client):
    client = make_client(dialects=("zelf",))
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {
        "type": "about:blank",
        "title": "not found",
        "status": 404,
        "detail": "not found",
        "instance": "/nowhere",
    }


def test_gateway_schema_describes_only_the_gateway_routes(make_client):
    paths = make_client(dialects=("zelf",)).get("/schema/openapi.json").json()["paths"]
    assert "/healthz" in paths
    assert "/api/sessions" not in paths


def test_readiness_fails_when_the_database_is_unreachable(tmp_path, clock):
    from litestar.testing import TestClient

    settings = Settings(
        database_url="postgresql+asyncpg://nobody@127.0.0.1:1/none", dialects=("zelf",), auto_migrate=False
    )
    app = create_app(settings, clock=clock)
    # No lifespan: the database is down, so start-up itself would fail; /readyz must still answer.
    client = TestClient(app)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "reasons": [{"check": "database", "message": "the database cannot be reached"}],
    }
