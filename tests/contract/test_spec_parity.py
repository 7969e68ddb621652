from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from litestar.handlers import HTTPRouteHandler
from litestar.params import DependencyKwarg, ParameterKwarg
from litestar.routes import HTTPRoute

from sessiongate.app import create_app
from sessiongate.dialects import registry
from sessiongate.settings import Settings
from tests.conftest import ROOT

RESERVED = {"request", "state", "scope", "headers", "cookies", "query", "socket", "body", "data"}
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def spec_operations(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    spec = yaml.safe_load((ROOT / "openapi" / f"{name}.yaml").read_text())
    ops = {}
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method in METHODS:
                ops[(method.upper(), path)] = op | {"parameters": shared + op.get("parameters", [])}
    return ops


def app_operations(name: str, tmp_path) -> dict[tuple[str, str], HTTPRouteHandler]:
    # The gateway's spec documents the admin routes portos adds (its devices), which are served with it enabled.
    dialects = ("portos",) if name == GATEWAY else (name,)
    app = create_app(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db", dialects=dialects))
    ops = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            owner = GATEWAY if handler.opt.get("gateway") else handler.opt.get("dialect")
            if owner != name:
                continue
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            for method in handler.http_methods:
                ops[(method, path)] = handler
    return ops


def handler_parameters(handler: HTTPRouteHandler, path: str) -> set[tuple[str, str]]:
    path_params = set(re.findall(r"\{(\w+)\}", path))
    dependencies = set(handler.resolve_dependencies())
    found = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if name in RESERVED or name in dependencies or isinstance(kwarg, DependencyKwarg):
            continue
        if name in path_params:
            found.add(("path", name))
        elif isinstance(kwarg, ParameterKwarg) and kwarg.header:
            found.add(("header", kwarg.header.lower()))
        elif isinstance(kwarg, ParameterKwarg) and kwarg.cookie:
            found.add(("cookie", kwarg.cookie))
        else:
            # QueryParameter(name=...) keeps its name in `name`; the deprecated Parameter(query=...) in `query`.
            alias = (kwarg.query or kwarg.name) if isinstance(kwarg, ParameterKwarg) else None
            found.add(("query", alias or name))
    return found


def spec_parameters(op: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["in"], p["name"].lower() if p["in"] == "header" else p["name"]) for p in op["parameters"]}


GATEWAY = "gateway"
"""The gateway's own routes (sessiongate.gate): not a dialect, but a spec of its own all the same."""
DIALECTS = [*sorted(registry.available()), GATEWAY]


@pytest.mark.parametrize("name", DIALECTS)
def test_spec_operations_equal_the_routes_the_app_serves(name, tmp_path):
    assert set(spec_operations(name)) == set(app_operations(name, tmp_path))


@pytest.mark.parametrize("name", DIALECTS)
def test_operation_ids_and_success_statuses_match(name, tmp_path):
    spec = spec_operations(name)
    for key, handler in app_operations(name, tmp_path).items():
        if key[0] == "OPTIONS" and handler.operation_id is None:  # the answer listing the methods, not an operation
            assert "204" in spec[key]["responses"], key
            continue
        assert handler.operation_id == spec[key]["operationId"], key
        assert str(handler.status_code) in spec[key]["responses"], key


@pytest.mark.parametrize("name", DIALECTS)
def test_declared_parameters_match(name, tmp_path):
    spec = spec_operations(name)
    for (method, path), handler in app_operations(name, tmp_path).items():
        if method == "OPTIONS" and handler.operation_id is None:
            continue
        served = handler_parameters(handler, path)
        documented = spec_parameters(spec[(method, path)])
        # Path and query parameters must be equal; a spec may document headers the handler reads itself.
        assert {p for p in served if p[0] != "header"} == {p for p in documented if p[0] in {"path", "query"}}
        assert {p for p in served if p[0] == "header"} <= documented
