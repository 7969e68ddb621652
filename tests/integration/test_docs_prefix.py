"""The API docs a gateway serves name the paths it serves, also when its dialects are mounted under a prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from litestar.routes import HTTPRoute

from sessiongate.app import create_app
from sessiongate.dialects import registry
from sessiongate.settings import Settings
from tests.support.server import running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

DIALECTS = sorted(registry.available())
PREFIXES = {name: f"/{name}" for name in DIALECTS} | {"amity": "/social/amity"}
ENV = {f"SESSIONGATE_{name.upper()}__PREFIX": prefix for name, prefix in PREFIXES.items()}
METHODS = {"get", "put", "post", "delete", "patch"}


def served_routes(tmp_path: Path) -> dict[str, set[tuple[str, str]]]:
    """Each dialect's (method, path template) as the gateway, given the same prefixes, routes them."""
    options = {name: {"prefix": prefix} for name, prefix in PREFIXES.items()}
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/routes.db", dialect_options=options))
    routes: dict[str, set[tuple[str, str]]] = {name: set() for name in DIALECTS}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if (dialect := handler.opt.get("dialect")) is None:
                continue
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            routes[dialect].update((m, path) for m in handler.http_methods if m not in {"OPTIONS", "HEAD"})
    return routes


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    """Each (method, path) of an OpenAPI document, the path read against its (one, relative) server."""
    [server] = document["servers"]
    base = server["url"].rstrip("/")
    return {
        (method.upper(), base + path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.fixture
def prefixed(database_url, tmp_path):
    with running_server(database_url, tmp_path, env=ENV) as server:
        yield server


def test_the_served_specs_name_every_route_under_its_dialects_prefix(prefixed, tmp_path):
    routes = served_routes(tmp_path)
    for name in DIALECTS:
        as_yaml = httpx.get(f"{prefixed.base_url}/docs/{name}/openapi.yaml")
        as_json = httpx.get(f"{prefixed.base_url}/docs/{name}/openapi.json")
        assert as_yaml.status_code == as_json.status_code == 200, name
        assert as_yaml.headers["content-type"].startswith("application/yaml")
        assert as_json.headers["content-type"].startswith("application/json")
        document = yaml.safe_load(as_yaml.text)
        assert as_json.json()["servers"] == document["servers"]
        assert document["servers"] == [{"url": PREFIXES[name]}], name
        assert routes[name], name
        assert documented(document) == documented(as_json.json()) == routes[name], name


def test_every_path_of_a_served_spec_answers_there_and_not_at_the_vendors_own_path(prefixed):
    for name in DIALECTS:
        document = httpx.get(f"{prefixed.base_url}/docs/{name}/openapi.json").json()
        for method, path in sorted(documented(document)):
            concrete = re.sub(r"\{\w+\}", "x", path)
            answer = httpx.options(f"{prefixed.base_url}{concrete}")
            assert answer.status_code == 204, (name, path, answer.status_code)
            assert method in answer.headers["allow"], (name, path, answer.headers["allow"])
            unprefixed = concrete.removeprefix(PREFIXES[name])
            assert httpx.options(f"{prefixed.base_url}{unprefixed}").status_code == 404, (name, unprefixed)


def test_without_a_prefix_the_spec_is_served_as_written(database_url, tmp_path):
    with running_server(database_url, tmp_path) as server:
        for name in DIALECTS:
            served = httpx.get(f"{server.base_url}/docs/{name}/openapi.yaml").content
            assert served == Settings().spec_dir.joinpath(f"{name}.yaml").read_bytes(), name
            assert httpx.get(f"{server.base_url}/docs/{name}/openapi.json").json()["servers"] == [{"url": "/"}]


def test_the_gateways_own_spec_names_its_routes_under_the_prefix_it_is_served_at(database_url, tmp_path):
    env = {"SESSIONGATE_GATEWAY__PREFIX": "/auth/gate"}
    with running_server(database_url, tmp_path, env=env) as server:
        document = httpx.get(f"{server.base_url}/docs/gateway/openapi.json").json()
        as_yaml = yaml.safe_load(httpx.get(f"{server.base_url}/docs/gateway/openapi.yaml").text)
        assert as_yaml["paths"].keys() == document["paths"].keys()
        paths = sorted(document["paths"])
        assert paths, "the gateway's spec documents no path"
        assert all(p.startswith("/auth/gate/") for p in paths), paths
        # Each documented path is routed there (forward auth answers OPTIONS itself, with 401 for no credential; the
        # others with their Allow list), and not at the default prefix.
        for path in paths:
            concrete = re.sub(r"\{\w+\}", "x", path)
            assert httpx.options(f"{server.base_url}{concrete}").status_code in {204, 401}, path
            default = "/_sessiongate" + concrete.removeprefix("/auth/gate")
            assert httpx.options(f"{server.base_url}{default}").status_code == 404, default


def test_with_its_default_prefix_the_gateways_spec_is_served_as_written(database_url, tmp_path):
    with running_server(database_url, tmp_path) as server:
        served = httpx.get(f"{server.base_url}/docs/gateway/openapi.yaml").content
        assert served == Settings().spec_dir.joinpath("gateway.yaml").read_bytes()
