"""sessiongate's ``Response`` sends what Litestar's would, byte for byte, whichever path it takes; and the dialects'
handlers answer with it."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar, Request, get
from litestar import Response as LitestarResponse
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie, ResponseHeader
from litestar.exceptions import ImproperlyConfiguredException, SerializationException

from sessiongate.dialects import base as base_module
from sessiongate.dialects.base import DialectPlugin
from sessiongate.dialects.responses import EncodedAnswer, Response

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


class Wire(msgspec.Struct):
    user_id: str = msgspec.field(name="userId")
    expires: str


class Odd:
    """A value msgspec cannot encode without a type encoder."""


ODD_ENCODERS = {Odd: lambda _: "odd"}
OWN_ENCODERS = {Odd: lambda _: "own"}  # an answer's own, over the route's: as Litestar merges them


header_names = st.one_of(
    st.text(alphabet="abcdefgXYZ-", min_size=1, max_size=12).filter(lambda n: n.strip("-")),
    st.sampled_from(["Content-Type", "content-length", "CONTENT-TYPE", "Set-Cookie"]),  # a default, given
)
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
contents = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4),
    st.lists(st.integers(), max_size=4),
    st.builds(Wire, user_id=st.text(max_size=10), expires=st.text(max_size=10)),
    st.lists(st.builds(Odd), min_size=1, max_size=2),
)
media_types = st.sampled_from([None, "application/json", "text/plain", "application/problem+json", "text/html"])
statuses = st.sampled_from([None, 200, 201, 204, 302, 400, 401, 404, 409, 429, 500, 503])


def _request() -> Request[Any, Any, Any]:
    app = Litestar()
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [],
        "query_string": b"",
        "litestar_app": app,
        "app": app,
        "state": {},
    }
    return Request(scope)  # type: ignore[arg-type]


def _sent(answer: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        messages.append(dict(message))

    asyncio.run(answer({"type": "http"}, receive, send))
    return messages


def _both(make: Any, **route: Any) -> tuple[Any, Any]:
    """What sessiongate's Response and Litestar's send for the same arguments, each an exception or the messages."""
    outcomes = []
    for cls in (Response, LitestarResponse):
        try:
            outcomes.append(_sent(make(cls).to_asgi_response(None, _request(), **route)))
        except (ImproperlyConfiguredException, SerializationException) as exc:  # the same refusal, on both paths
            outcomes.append(type(exc))
    return outcomes[0], outcomes[1]


@given(
    content=contents,
    headers=st.dictionaries(header_names, header_values, max_size=4),
    route_headers=st.dictionaries(header_names, header_values, max_size=3),
    media_type=media_types,
    route_media_type=media_types,
    status=statuses,
    route_status=statuses,
    route_encoders=st.sampled_from([None, {}, ODD_ENCODERS]),
    own_encoders=st.sampled_from([None, {}, OWN_ENCODERS]),
)
def test_an_answer_sends_the_messages_litestar_would(  # each a dimension of the answer
    content: Any,
    headers: dict[str, str],
    route_headers: dict[str, str],
    media_type: str | None,
    route_media_type: str | None,
    status: int | None,
    route_status: int | None,
    route_encoders: dict[Any, Any] | None,
    own_encoders: dict[Any, Any] | None,
) -> None:
    ours, litestars = _both(
        lambda cls: cls(
            content, headers=headers, media_type=media_type, status_code=status, type_encoders=own_encoders
        ),
        headers=route_headers,
        media_type=route_media_type,
        status_code=route_status,
        type_encoders=route_encoders,
    )
    assert ours == litestars


def test_a_plain_json_answer_takes_the_short_path() -> None:
    answer = Response(Wire(user_id="u1", expires="x"), headers={"Set-Cookie": "a=b"}).to_asgi_response(
        None, _request(), headers={}, status_code=200, cookies=[]
    )
    assert isinstance(answer, EncodedAnswer)
    assert answer.headers == [
        (b"set-cookie", b"a=b"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(answer.body)).encode()),
    ]


@pytest.mark.parametrize(
    "route",
    [
        {"cookies": [Cookie(key="route", value="1")]},
        {"background": BackgroundTask(lambda: None)},
        {"is_head_response": True},
    ],
    ids=["route-cookie", "background", "head"],
)
def test_what_the_short_path_leaves_out_goes_through_litestar(route: dict[str, Any]) -> None:
    content = None if route.get("is_head_response") else {"a": 1}
    answer = Response(content).to_asgi_response(None, _request(), **route)
    assert not isinstance(answer, EncodedAnswer)
    ours, litestars = _both(lambda cls: cls(content), **route)
    assert ours == litestars


def test_the_routes_type_encoders_encode_an_answer_on_the_short_path() -> None:
    answer = Response([Odd()]).to_asgi_response(None, _request(), type_encoders=ODD_ENCODERS)
    assert isinstance(answer, EncodedAnswer)
    assert answer.body == b'["odd"]'


def test_an_answer_with_type_encoders_of_its_own_takes_the_short_path_its_own_over_the_routes() -> None:
    # A route that returns data (zelf create) is answered this way: Litestar gives the route's encoders to the answer.
    answer = Response([Odd()], type_encoders=OWN_ENCODERS).to_asgi_response(
        None, _request(), type_encoders=ODD_ENCODERS
    )
    assert isinstance(answer, EncodedAnswer)
    assert answer.body == b'["own"]'


def test_an_answer_with_its_own_cookie_objects_goes_through_litestar() -> None:
    answer = Response({"a": 1}, cookies=[Cookie(key="k", value="v")]).to_asgi_response(None, _request())
    assert not isinstance(answer, EncodedAnswer)
    ours, litestars = _both(lambda cls: cls({"a": 1}, cookies=[Cookie(key="k", value="v")]))
    assert ours == litestars


def test_no_dialect_module_answers_with_litestars_own_response() -> None:
    # A dialect that imported Litestar's Response would still work, only by the long path: hold the shipped ones to
    # the SDK's, so the speed the bench measures is the speed every dialect gets.
    offenders = []
    for module in PLUGINS.glob("sessiongate_*/*.py"):
        tree = ast.parse(module.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "litestar":
                offenders += [f"{module.name}: {a.name}" for a in node.names if a.name == "Response"]
    assert offenders == []


def test_a_route_that_returns_data_is_answered_by_the_short_path() -> None:
    @get("/data", sync_to_thread=False)
    def data() -> dict[str, int]:
        return {"a": 1}

    app = Litestar([data], response_class=Response)
    handler = app.route_handler_method_map["/data"]["GET"]
    assert handler.resolve_response_class() is Response


def test_an_answer_that_names_no_media_type_sends_no_content_type_on_either_path() -> None:
    class Unnamed(Response[bytes]):
        names_media_type = False

    for route in ({}, {"background": BackgroundTask(lambda: None)}):
        start = _sent(Unnamed(b"").to_asgi_response(None, _request(), **route))[0]
        assert [name for name, _ in start["headers"]] == [b"content-length"]


@given(
    content=contents,
    headers=st.one_of(
        st.none(),
        st.dictionaries(header_names, header_values, max_size=3),
        st.lists(st.builds(ResponseHeader, name=header_names, value=header_values), max_size=2),
    ),
    cookies=st.one_of(
        st.none(),
        st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=4), st.text(max_size=4), max_size=2),
        st.lists(st.builds(Cookie, key=st.text(alphabet="abc", min_size=1, max_size=4)), max_size=2),
    ),
    media_type=media_types,
    status=statuses,
    encoders=st.sampled_from([None, ODD_ENCODERS]),
)
def test_an_answer_is_made_as_litestar_makes_one(  # each a dimension of the answer
    content: Any,
    headers: Any,
    cookies: Any,
    media_type: str | None,
    status: int | None,
    encoders: dict[Any, Any] | None,
) -> None:
    arguments = {
        "headers": headers,
        "cookies": cookies,
        "media_type": media_type,
        "status_code": status,
        "type_encoders": encoders,
    }
    ours, litestars = Response(content, **arguments), LitestarResponse(content, **arguments)
    assert {name: getattr(ours, name) for name in LitestarResponse.__slots__} == {
        name: getattr(litestars, name) for name in LitestarResponse.__slots__
    }


def test_a_dialect_may_render_its_errors_with_litestars_own_response() -> None:
    # A third party's dialect written before the SDK had a Response of its own must still type-check: render_error
    # promises Litestar's Response, of which the SDK's is a subclass.
    hints = get_type_hints(DialectPlugin.render_error, globalns=vars(base_module))
    assert get_origin(hints["return"]) is LitestarResponse
