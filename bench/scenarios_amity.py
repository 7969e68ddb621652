"""amity scenarios for ``bench/run.py``: register a session (the SDK's login) and verify a token.

Wire them in with ``SCENARIOS |= {s.name: s for s in scenarios_amity.scenarios(Scenario)}``; this module takes the
``Scenario`` class as an argument instead of importing ``run`` (which runs as ``__main__``).

Registering needs an API key. The setup imports a fixed one (``sessiongate keys add --from-stdin``) into the
database of the gateway under test, found in the environment of its process, unless the gateway accepts it already.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from gateway_cli import sessiongate

if TYPE_CHECKING:
    from collections.abc import Callable

API_KEY = "bench-amity-api-key-0123456789abcdef"  # a benchmark's key, not a secret
TENANT = "bench"
REGISTER_PATH = "/api/v5/sessions"
VERIFY_PATH = "/api/v3/sessions"
REGISTER_HEADERS = {"Content-Type": "application/json", "x-api-key": "{api_key}"}
# What the TypeScript SDK sends under Node.js: a known user logging in, with a new device id every time (the SDK
# draws one per login there). The first request creates the user; the others find it.
REGISTER_BODY = (
    '{"userId": "bench-user", "displayName": "Bench User", "deviceId": "ascWebSdk#{id}", '
    '"deviceInfo": {"kind": "web", "model": "20.20.2", "sdkVersion": "v6.35.3-cjs"}}'
)


def scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """The amity scenarios, built with ``bench/run.py``'s ``Scenario``."""
    return [
        scenario(
            name="amity-register",
            label="amity register",
            method="POST",
            path=REGISTER_PATH,
            headers=REGISTER_HEADERS,
            body=REGISTER_BODY,
            setup=provision,
        ),
        scenario(
            name="amity-verify",
            label="amity verify",
            method="GET",
            path=VERIFY_PATH,
            headers={"Authorization": "Bearer {token}"},
            setup=registered,
        ),
    ]


async def provision(target: Any) -> dict[str, str]:
    """Make sure the gateway accepts ``API_KEY``; ``{"api_key": ...}`` for the templates."""
    if await _register(target, "bench-probe") is None:
        await asyncio.to_thread(_import_key, target.pid)
        if await _register(target, "bench-probe") is None:
            raise RuntimeError("the gateway still refuses the benchmark's API key after importing it")
    return {"api_key": API_KEY}


async def registered(target: Any) -> dict[str, str]:
    """A live access token for the verify scenario: ``{"token": ...}``."""
    await provision(target)
    token = await _register(target, "bench-verifier")
    if token is None:
        raise RuntimeError("could not register the benchmark's session")
    return {"token": token}


async def _register(target: Any, user: str) -> str | None:
    body = json.dumps({"userId": user, "deviceId": f"{user}-device"}).encode()
    headers = {"Content-Type": "application/json", "x-api-key": API_KEY}
    status, answer = await target.request("POST", REGISTER_PATH, body=body, headers=headers)
    if status == 401:
        return None
    if status != 200:
        raise RuntimeError(f"registering answered {status}: {answer[:200]!r}")
    token: str = json.loads(answer)["accessToken"]
    return token


def _import_key(pid: int) -> None:
    sessiongate(pid, "keys", "add", "--tenant", TENANT, "--from-stdin", stdin=f"{API_KEY}\n")
