"""The body timeout granian's edge adds (``EdgeLimits``), as an ASGI app sees it; the server's side is in
``tests/integration/test_granian_edge.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sessiongate.granian_edge import EdgeLimits
from sessiongate.server import ServerLimits

pytestmark = pytest.mark.anyio

TIMEOUT = 0.05
SCOPE = {
    "type": "http",
    "method": "POST",
    "raw_path": b"/api/sessions",
    "query_string": b"",
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}


class Client:
    """The server's side of one request: the messages it hands over, each after a delay, and what it was sent."""

    def __init__(self, *messages: tuple[float, dict[str, Any]]) -> None:
        self.messages = list(messages)
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        delay, message = self.messages.pop(0)
        await asyncio.sleep(delay)
        return message

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def answering_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the body, waits for the client to leave (as a streaming answer does), then answers 200."""
    seen = [await receive()]
    while seen[-1]["type"] == "http.request" and seen[-1].get("more_body"):
        seen.append(await receive())
    scope["seen"] = seen
    scope["then"] = await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def test_a_body_that_stalls_past_the_timeout_gets_408_and_the_app_sees_the_client_gone():
    client = Client((0, {"type": "http.request", "body": b"{", "more_body": True}), (10 * TIMEOUT, {}))
    scope = dict(SCOPE)
    await EdgeLimits(answering_app, ServerLimits(body_timeout=TIMEOUT))(scope, client.receive, client.send)
    assert scope["seen"][-1] == {"type": "http.disconnect"}
    assert [m.get("status") for m in client.sent if m["type"] == "http.response.start"] == [408]
    assert client.sent[-1]["body"] == b"Request body timed out."


async def test_once_the_whole_body_is_in_waiting_for_the_client_is_not_timed():
    client = Client(
        (0, {"type": "http.request", "body": b"{", "more_body": True}),
        (TIMEOUT / 2, {"type": "http.request", "body": b"}", "more_body": False}),
        (4 * TIMEOUT, {"type": "http.disconnect"}),  # the client leaves long after the timeout: no 408 for that
    )
    scope = dict(SCOPE)
    await EdgeLimits(answering_app, ServerLimits(body_timeout=TIMEOUT))(scope, client.receive, client.send)
    assert [m["body"] for m in scope["seen"]] == [b"{", b"}"]
    assert scope["then"] == {"type": "http.disconnect"}
    assert [m.get("status") for m in client.sent if m["type"] == "http.response.start"] == [200]
