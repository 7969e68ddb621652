"""The specs' examples are instances of their schemas, and the specs that promise it show an example of every error.

Each example is validated with jsonschema against the schema beside it, in the OpenAPI 3.1 dialect (JSON Schema
2020-12 with OpenAPI's vocabulary and formats), with the ``$ref``s of the spec resolved in the spec itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import yaml
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import ROOT

SPECS = sorted(p.stem for p in (ROOT / "openapi").glob("*.yaml"))
# Specs whose every error response shows an example of its body; add a spec once its errors have theirs.
EVERY_ERROR_HAS_AN_EXAMPLE = ("portos",)
# Success responses that must show an example of their body, by spec: (method, path, status).
SUCCESSES_WITH_AN_EXAMPLE = {
    "portos": [("get", "/api/auth", "200"), ("post", "/api/auth/refresh", "200")],
}
# Examples the spec quotes verbatim from the seed, kept byte for byte in contracts/<spec>/examples/.
SEED_EXAMPLES = {
    "portos": {
        "/paths/~1sessions/get/responses/200/content/application~1json/examples/seed/value": "list-sessions",
        "/components/responses/Session/content/application~1json/examples/seed/value": "get-session",
        "/components/responses/DeletedSession/content/application~1json/examples/seed/value": "delete-session",
    },
}
# Examples in other owners' specs that are not instances of their schemas today: each is a vendor's sample quoted
# verbatim where the gateway answers otherwise, and the spec's owner decides which gives way (a gateway example
# beside the vendor's words, or a schema admitting the vendor's form). Listed exactly: a new mismatch fails, and so
# does a mended one left on the list.
KNOWN_MISMATCHES = {
    "amity": {
        "/components/responses/Registered/content/application~1json/examples/seed/value": (
            "the vendor's sample: '<string>' placeholders, roles and an avatar the gateway never sends"
        ),
    },
    "issp": {
        "/paths/~1api~1session~1createSession/post/responses/200/content/application~1json/examples/seed/value": (
            "the vendor's sample: a UUID sessionId, where the gateway issues 43-character ids"
        ),
    },
    "saymon": {
        "/paths/~1node~1api~1users~1session/post/responses/200/content/application~1json/examples/seed/value": (
            "the vendor's sample: a UUID session id, where the gateway issues 43-character ids"
        ),
    },
    "zelf": {
        "/paths/~1api~1sessions/post/responses/200/content/application~1json/examples/seed/value": (
            "the vendor's sample: no activatedAt or expiresAt, and a token cut short"
        ),
        "/paths/~1api~1sessions/post/responses/200/content/application~1json/examples/newerDocs/value": (
            "the vendor's newer sample: a token cut short with '...'"
        ),
    },
}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BASE = "urn:sessiongate:spec"


class Example(NamedTuple):
    """An example and the schema it must satisfy, both by their JSON pointer in the spec."""

    where: str
    value: Any
    schema: str


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "openapi" / f"{name}.yaml").read_text())


def pointer(*parts: str) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve(spec: dict[str, Any], node: Any, where: str) -> tuple[Any, str]:
    """``node`` with its ``$ref`` chain followed, and where it was found."""
    while isinstance(node, dict) and "$ref" in node:
        where = node["$ref"].removeprefix("#")
        node = spec
        for part in where.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, where


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], str]]:
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method], pointer("paths", path, method)


def responses(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Every response of every operation as (status, response, where), and every response component none uses."""
    used = set()
    for _, _, operation, where in operations(spec):
        for status, response in operation.get("responses", {}).items():
            found, at = resolve(spec, response, f"{where}{pointer('responses', status)}")
            used.add(at)
            yield status, found, at
    for name, response in spec.get("components", {}).get("responses", {}).items():
        if (at := pointer("components", "responses", name)) not in used:
            yield "unattached", response, at


def examples(spec: dict[str, Any]) -> Iterator[Example]:
    """Every example of a body, parameter or header beside its schema, and every example inside a schema."""
    holders: list[tuple[Any, str]] = []
    for _, path, operation, where in operations(spec):
        shared = [
            (p, pointer("paths", path, "parameters", str(i)))
            for i, p in enumerate(spec["paths"][path].get("parameters", []))
        ]
        own = [(p, f"{where}{pointer('parameters', str(i))}") for i, p in enumerate(operation.get("parameters", []))]
        holders += [resolve(spec, p, at) for p, at in shared + own]
        if "requestBody" in operation:
            body, at = resolve(spec, operation["requestBody"], f"{where}/requestBody")
            holders += [(media, f"{at}{pointer('content', kind)}") for kind, media in body.get("content", {}).items()]
    for _, response, at in responses(spec):
        holders += [(media, f"{at}{pointer('content', kind)}") for kind, media in response.get("content", {}).items()]
        for name, header in response.get("headers", {}).items():
            holders.append(resolve(spec, header, f"{at}{pointer('headers', name)}"))
    components = spec.get("components", {})
    for kind in ("parameters", "headers"):
        holders += [(item, pointer("components", kind, name)) for name, item in components.get(kind, {}).items()]
    for name, body in components.get("requestBodies", {}).items():
        at = pointer("components", "requestBodies", name)
        holders += [(media, f"{at}{pointer('content', kind)}") for kind, media in body.get("content", {}).items()]
    seen = set()
    for holder, at in holders:
        if at in seen or "schema" not in holder:
            continue
        seen.add(at)
        if "example" in holder:
            yield Example(f"{at}/example", holder["example"], f"{at}/schema")
        for name, example in holder.get("examples", {}).items():
            found, where = resolve(spec, example, f"{at}{pointer('examples', name)}")
            if "value" in found:
                yield Example(f"{where}/value", found["value"], f"{at}/schema")
    for name, schema in components.get("schemas", {}).items():
        yield from _schema_examples(schema, pointer("components", "schemas", name))


def _schema_examples(schema: Any, at: str) -> Iterator[Example]:
    if not isinstance(schema, dict):
        return
    if "example" in schema:
        yield Example(f"{at}/example", schema["example"], at)
    for i, value in enumerate(schema.get("examples", []) if isinstance(schema.get("examples"), list) else []):
        yield Example(f"{at}/examples/{i}", value, at)
    for keyword in ("properties", "patternProperties", "$defs"):
        for name, sub in schema.get(keyword, {}).items():
            yield from _schema_examples(sub, f"{at}{pointer(keyword, name)}")
    for keyword in ("items", "additionalProperties", "not", "contains", "if", "then", "else"):
        yield from _schema_examples(schema.get(keyword), f"{at}/{keyword}")
    for keyword in ("allOf", "anyOf", "oneOf", "prefixItems"):
        for i, sub in enumerate(schema.get(keyword, [])):
            yield from _schema_examples(sub, f"{at}/{keyword}/{i}")


def failures(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, what is wrong) for each example that is not an instance of its schema."""
    registry: Registry[Any] = Registry().with_resource(
        BASE, Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    found = []
    for example in examples(spec):
        validator = OAS31Validator(
            {"$ref": f"{BASE}#{example.schema}"}, registry=registry, format_checker=oas31_format_checker
        )
        found += [(example.where, error.message) for error in validator.iter_errors(example.value)]
    return found


def errors_without_an_example(spec: dict[str, Any]) -> list[str]:
    """Where an error response's body shows no example (its media type, by JSON pointer)."""
    return [
        f"{where}{pointer('content', kind)}"
        for status, response, where in responses(spec)
        if not status.startswith(("1", "2", "3"))
        for kind, media in response.get("content", {}).items()
        if "example" not in media and not media.get("examples")
    ]


def at(spec: dict[str, Any], where: str) -> Any:
    node, _ = resolve(spec, {"$ref": f"#{where}"}, where)
    return node


@pytest.mark.parametrize("name", SPECS)
def test_every_example_is_an_instance_of_its_schema(name):
    spec = load(name)
    assert list(examples(spec)), f"{name}: no examples found"
    known = KNOWN_MISMATCHES.get(name, {})
    found = failures(spec)
    assert [f"{where}: {message}" for where, message in found if where not in known] == []
    assert set(known) - {where for where, _ in found} == set(), "mended: take them off KNOWN_MISMATCHES"


@pytest.mark.parametrize("name", EVERY_ERROR_HAS_AN_EXAMPLE)
def test_every_error_response_shows_an_example(name):
    assert errors_without_an_example(load(name)) == []


@pytest.mark.parametrize(
    ("name", "method", "path", "status"), [(n, *k) for n, ks in SUCCESSES_WITH_AN_EXAMPLE.items() for k in ks]
)
def test_named_success_responses_show_an_example(name, method, path, status):
    spec = load(name)
    response, _ = resolve(spec, spec["paths"][path][method]["responses"][status], "")
    assert response["content"], (method, path, status)
    for media in response["content"].values():
        assert "example" in media or media.get("examples"), (method, path, status)


@pytest.mark.parametrize(
    ("name", "where", "sample"), [(n, w, s) for n, e in SEED_EXAMPLES.items() for w, s in e.items()]
)
def test_the_seeds_samples_in_the_spec_are_verbatim(name, where, sample):
    kept = json.loads((ROOT / "contracts" / name / "examples" / f"{sample}.response.json").read_bytes())
    assert at(load(name), where) == kept


def test_an_example_that_breaks_its_schema_is_caught():
    # The checks above must be able to fail: a wrong example anywhere they look is reported, with where it is.
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "format": "date-time"}}}
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "paths": {
            "/x": {
                "get": {
                    "parameters": [{"name": "n", "in": "query", "schema": {"type": "integer"}, "example": "one"}],
                    "responses": {
                        "200": {"$ref": "#/components/responses/X"},
                        "404": {"description": "none", "content": {"application/json": {"schema": schema}}},
                    },
                }
            }
        },
        "components": {
            "schemas": {"X": schema | {"example": {"a": 1}}},
            "examples": {"Bad": {"value": {"a": "yesterday"}}},
            "responses": {
                "X": {
                    "description": "x",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/X"},
                            "examples": {
                                "bad": {"$ref": "#/components/examples/Bad"},
                                "good": {"value": {"a": "2023-08-04T11:19:38Z"}},
                            },
                        }
                    },
                }
            },
        },
    }
    assert sorted(failures(spec)) == [
        ("/components/examples/Bad/value", "'yesterday' is not a 'date-time'"),
        ("/components/schemas/X/example", "1 is not of type 'string'"),
        ("/paths/~1x/get/parameters/0/example", "'one' is not of type 'integer'"),
    ]
    assert errors_without_an_example(spec) == ["/paths/~1x/get/responses/404/content/application~1json"]
