"""The credential each amity operation asks for, for Schemathesis (in process, and its CLI through ``hooks.py``).

A fuzzer with one bearer token loses it to the first ``DELETE /api/v4/sessions`` it sends, and every call after that
is a 401 that tests nothing. So each call gets what its operation needs: the API key to register, the secure
network's server key to mint auth tokens, the network's admin token to revoke a user's tokens (spec decision 17),
and otherwise a bearer token from a registration made for that call alone.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from typing import Any

__all__ = ("AmityAuth", "Credentials")


class Credentials:
    """What a contract run against amity is given: a network's API key and admin token, a secure network's server
    key, and the user it registers (from ``AMITY_API_KEY``, ``AMITY_ADMIN_TOKEN``, ``AMITY_SERVER_KEY``,
    ``AMITY_USER`` when not given)."""

    def __init__(
        self,
        api_key: str | None = None,
        admin_token: str | None = None,
        server_key: str | None = None,
        user: str | None = None,
    ) -> None:
        self.api_key = api_key or os.environ["AMITY_API_KEY"]
        self.admin_token = admin_token or os.environ["AMITY_ADMIN_TOKEN"]
        self.server_key = server_key or os.environ["AMITY_SERVER_KEY"]
        self.user = user or os.environ.get("AMITY_USER", "contract-user")


class AmityAuth:
    """A Schemathesis auth provider (register it with ``refresh_interval=None``: every call gets its own).

    Values Schemathesis generated for the security schemes' headers are replaced, but a bearer token a link carried
    over from a registration (register → verify/revoke/renew) is kept, so the stateful phase walks the session it
    created. ``register`` makes the fresh registrations; over HTTP here, through the app in process in the tests.
    """

    credentials: Credentials | None = None

    def get(self, case: Any, context: Any) -> dict[str, str] | None:
        """The headers ``case``'s operation needs, by its first (simplest) security requirement."""
        requirements = case.operation.definition.raw.get("security") or []
        if not requirements:
            return None
        credentials = self._credentials()
        first = requirements[0]
        if "serverKey" in first:
            return {"x-server-key": credentials.server_key}
        if "apiKey" in first:
            return {"x-api-key": credentials.api_key}
        if "adminToken" in first or _names_a_user(case):
            return {"x-admin-token": credentials.admin_token}
        body = {"userId": credentials.user, "deviceId": f"contract-{uuid.uuid4()}"}
        return {"Authorization": f"Bearer {self.register(case, context, body)}"}

    def set(self, case: Any, data: dict[str, str], context: Any) -> None:
        """Put the headers on ``case``, keeping a token a link carried over."""
        del context
        for name, value in data.items():
            if name == "Authorization" and _issued_token(case.headers.get(name, "")):
                continue
            case.headers[name] = value

    def register(self, case: Any, context: Any, body: dict[str, str]) -> str:
        """A fresh access token: ``POST /api/v5/sessions`` on the server under test."""
        del context
        request = urllib.request.Request(  # noqa: S310 - the URL Schemathesis itself is testing
            f"{case.operation.schema.get_base_url()}/api/v5/sessions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "x-api-key": self._credentials().api_key},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
            token: str = json.load(response)["accessToken"]
        return token

    def _credentials(self) -> Credentials:
        if self.credentials is None:
            self.credentials = Credentials()
        return self.credentials


def _names_a_user(case: Any) -> bool:
    # Revoking a user's tokens is the admin token's (spec decision 17); a user's own token would only get 403.
    return "userId" in (case.query or {}) or (isinstance(case.body, dict) and "userId" in case.body)


def _issued_token(value: str) -> bool:
    # Generated credentials are random text; only a registration's answer holds a three-part JWT.
    return value.startswith("Bearer eyJ") and value.count(".") == 2
