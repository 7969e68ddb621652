"""saymon scenarios for ``bench/run.py``: log in by password (argon2id-bound: the figure is logins/s) and read the
current user with the session cookie (one indexed lookup, the idle timeout slid at most once per touch interval).

Built with ``bench/run.py``'s ``Scenario`` passed in, as ``scenarios_portos`` explains. The setup provisions the
benchmark's user through the operators' CLI, against the database of the gateway under test.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from gateway_cli import sessiongate

if TYPE_CHECKING:
    from collections.abc import Callable

LOGIN, PASSWORD = "bench-saymon@example.com", "bench saymon password"  # a benchmark's login, not a secret
LOGIN_PATH = "/node/api/users/session"
JSON = {"Content-Type": "application/json"}
LOGIN_CONNECTIONS = 8  # four logins waiting per hashing thread keep both busy without queueing into timeouts


def scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """The saymon scenarios: login has no ratio or latency goal (argon2id is slow on purpose), only errors == 0."""
    return [
        scenario(
            name="saymon-login",
            label="saymon login (argon2id)",
            method="POST",
            path=LOGIN_PATH,
            headers=JSON,
            body=json.dumps({"login": LOGIN, "password": PASSWORD}),
            setup=provisioned,
            min_ratio=None,
            max_p99_low_ms=None,
            max_connections=LOGIN_CONNECTIONS,
        ),
        scenario(
            name="saymon-current",
            label="saymon current user",
            method="GET",
            path="/node/api/users/current",
            headers={"Cookie": "sid={sid}"},
            setup=logged_in,
        ),
    ]


async def provisioned(target: Any) -> dict[str, str]:
    """The benchmark's user, with a password (already there is fine)."""
    await asyncio.to_thread(
        sessiongate, target.pid, "users", "add", "--login", LOGIN, "--password-stdin", stdin=f"{PASSWORD}\n"
    )
    return {}


async def logged_in(target: Any) -> dict[str, str]:
    """A live session id for the cookie: ``{"sid": ...}``."""
    await provisioned(target)
    body = json.dumps({"login": LOGIN, "password": PASSWORD}).encode()
    status, answer = await target.request("POST", LOGIN_PATH, body=body, headers=JSON)
    if status != 200:
        raise RuntimeError(f"saymon login answered {status}: {answer[:200]!r}")
    sid: str = json.loads(answer)
    return {"sid": sid}
