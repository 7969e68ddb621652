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
FORWARD_AUTH_PATH, INTROSPECT_PATH = "/_sessiongate/forward-auth", "/_sessiongate/introspect"
API_TOKEN = "sgt_bench-token-0123456789abcdef0123456789abcdef01"  # imported with admin-tokens add --from-stdin


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
        # Issue 15: the gateway's own API beside issp validate, on the same kind of session. Forward auth reads the
        # cookie nginx forwards and slides it as validate does; introspection checks the session id for a service
        # holding an API token (one more read for the token, no slide).
        scenario(
            name="forward-auth",
            label="forward auth (issp cookie)",
            method="GET",
            path=FORWARD_AUTH_PATH,
            headers={"Cookie": "sessionCookie={cookie}"},
            setup=session_cookie,
        ),
        scenario(
            name="introspect",
            label="introspection (issp session id)",
            method="POST",
            path=INTROSPECT_PATH,
            headers={
                "Authorization": f"Bearer {API_TOKEN}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            body="token={session_id}",
            setup=introspection_setup,
        ),
    ]


async def session_cookie(target: Any) -> dict[str, str]:
    """A user and one session: ``{"cookie": <the sessionCookie value as the server set it>}``."""
    await asyncio.to_thread(
        sessiongate, target.pid, "users", "add", "--login", LOGIN, "--id", USER_ID, "--email", LOGIN
    )
    cookie, _ = await asyncio.to_thread(_create, target.port)
    return {"cookie": cookie}


async def introspection_setup(target: Any) -> dict[str, str]:
    """A user, one session and an introspect-scope API token: ``{"session_id": …}``."""
    await asyncio.to_thread(
        sessiongate, target.pid, "users", "add", "--login", LOGIN, "--id", USER_ID, "--email", LOGIN
    )
    await asyncio.to_thread(
        sessiongate,
        target.pid,
        "admin-tokens",
        "add",
        "--name",
        "bench",
        "--scope",
        "introspect",
        "--from-stdin",
        stdin=API_TOKEN,
    )
    _, session_id = await asyncio.to_thread(_create, target.port)
    return {"session_id": session_id}


def _create(port: int) -> tuple[str, str]:
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
    return rest.split(";", 1)[0], str(json.loads(answer)["text"]["sessionId"])
