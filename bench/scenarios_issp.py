"""issp scenarios for ``bench/run.py``: validate a session by its ``sessionCookie``.

Validate slides the session by its lifetime but writes the renewal at most once per touch interval (60 s by
default), so under load it is one indexed SELECT per request. Goal: at least 15 % of the bare endpoint's req/s.

Built with ``bench/run.py``'s ``Scenario`` passed in, as ``scenarios_portos`` explains. The setup provisions a user
through the operators' CLI, against the database of the gateway under test, and opens one session for it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import TYPE_CHECKING, Any

from gateway_cli import sessiongate

if TYPE_CHECKING:
    from collections.abc import Callable

USER_ID, LOGIN = "bench-issp-user", "bench-issp@example.com"
CREATE_PATH, VALIDATE_PATH = "/api/session/createSession", "/api/session/validateSession"
GOAL_MIN_RATIO = 0.15


def scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """The issp scenario, with its own ratio goal."""
    return [
        scenario(
            name="issp-validate",
            label="issp validate",
            method="POST",
            path=VALIDATE_PATH,
            headers={"Cookie": "sessionCookie={cookie}"},
            setup=session_cookie,
            min_ratio=GOAL_MIN_RATIO,
        ),
    ]


async def session_cookie(target: Any) -> dict[str, str]:
    """A user and one session: ``{"cookie": <the sessionCookie value as the server set it>}``."""
    await asyncio.to_thread(
        sessiongate, target.pid, "users", "add", "--login", LOGIN, "--id", USER_ID, "--email", LOGIN
    )
    return {"cookie": await asyncio.to_thread(_create, target.port)}


def _create(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps({"userID": USER_ID}).encode()
        conn.request("POST", CREATE_PATH, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"issp createSession answered {response.status}: {answer[:200]!r}")
        set_cookie = response.getheader("Set-Cookie") or ""
    finally:
        conn.close()
    name, _, rest = set_cookie.partition("=")
    if name != "sessionCookie":
        raise RuntimeError(f"issp createSession set no sessionCookie: {set_cookie!r}")
    return rest.split(";", 1)[0]
