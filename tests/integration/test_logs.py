"""The logs of a real ``serve`` process: JSON lines only, one per request with the access log on, never a secret;
an unexpected error logged as frames without its message or local values."""

from __future__ import annotations

import json
import os
import socket
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import API_KEY, LOGIN, PASSWORD, provision
from tests.support.server import Server, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

COOKIE = "cookie-secret-5f2b9c"
BEARER = "bearer-secret-8d1e4a"
QUERY = "query-secret-77c3a0"
IN_PATH = "path-secret-0a9b8c"
IN_BODY = "body-secret-3e6f1d"
AMITY_USER = "amity-user-5c1a"  # not a secret: the audit event of its session names it (issue 15), the access log not
SECRETS = (COOKIE, BEARER, QUERY, IN_PATH, IN_BODY, PASSWORD, API_KEY)
FORWARDED_CLIENT = "203.0.113.9"
AMITY = {"x-api-key": API_KEY, "authorization": None}  # a bearer token there would be taken for the session's
ENV = {
    "SESSIONGATE_ACCESS_LOG": "true",
    "SESSIONGATE_TRUST_FORWARDED": "true",  # one proxy (the default): the client is the last entry it appended
}


def log_lines(server: Server) -> list[dict[str, Any]]:
    """Every line the server wrote, each of which must be one JSON object."""
    lines = server.logs().splitlines()
    assert lines
    return [json.loads(line) for line in lines]


def logged_request(server: Server, method: str, path: str | None, status: int) -> list[dict[str, Any]]:
    """The server's lines once it has logged that request: a request is logged after its answer has gone out."""
    deadline = time.monotonic() + 10
    while True:
        lines = log_lines(server)
        if any((r["method"], r["path"], r["status"]) == (method, path, status) for r in access(lines)):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"{method} {path} {status} is not in the access log: {access(lines)}")
        time.sleep(0.05)


def access(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "sessiongate.access"]


def send(server: Server, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {
        "cookie": f"sid={COOKIE}; sessionCookie={COOKIE}",
        "authorization": f"Bearer {BEARER}",
        "x-forwarded-for": f"198.51.100.1, {FORWARDED_CLIENT}",
        **kwargs.pop("headers", {}),
    }
    sent = {name: value for name, value in headers.items() if value is not None}
    return httpx.request(method, f"{server.base_url}{path}?token={QUERY}&password={QUERY}", headers=sent, **kwargs)


def test_each_request_is_one_json_line_naming_its_route_and_never_a_secret(database_url, tmp_path):
    provision(database_url)
    with running_server(database_url, tmp_path, env=ENV) as server:
        assert send(server, "POST", "/api/sessions", json={"identifier": IN_BODY}).status_code == 200
        assert send(server, "GET", f"/node/api/users/session/verify/{IN_PATH}").status_code == 401
        portos = {"UserName": LOGIN, "Password": PASSWORD, "DeviceName": "P01"}
        assert send(server, "POST", "/api/auth", json=portos).status_code == 200
        amity = {"userId": AMITY_USER, "deviceId": "log-device"}
        assert send(server, "POST", "/api/v4/sessions", json=amity, headers=AMITY).status_code == 200
        assert send(server, "GET", f"/nowhere/{IN_PATH}").status_code == 404
        # uvicorn's own message about a request it cannot parse is a JSON line too.
        with socket.create_connection(("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))) as raw:
            raw.sendall(f"NOT HTTP {IN_PATH}\r\n\r\n".encode())
            assert raw.recv(1024).startswith(b"HTTP/1.1 400")

        lines = logged_request(server, "GET", None, 404)
        logs = server.logs()
        for secret in SECRETS:
            assert secret not in logs, secret
        assert AMITY_USER not in json.dumps(access(lines))
        requests = [
            {k: line[k] for k in ("method", "path", "status", "dialect", "tenant", "client")} for line in access(lines)
        ]
        assert requests[-5:] == [
            {
                "method": "POST",
                "path": "/api/sessions",
                "status": 200,
                "dialect": "zelf",
                "tenant": "default",
                "client": FORWARDED_CLIENT,
            },
            {
                "method": "GET",
                "path": "/node/api/users/session/verify/{sid}",
                "status": 401,
                "dialect": "saymon",
                "tenant": None,  # refused before any session, login or key named one
                "client": FORWARDED_CLIENT,
            },
            {
                "method": "POST",
                "path": "/api/auth",
                "status": 200,
                "dialect": "portos",
                "tenant": "default",
                "client": FORWARDED_CLIENT,
            },
            {
                "method": "POST",
                "path": "/api/v4/sessions",
                "status": 200,
                "dialect": "amity",
                "tenant": "edge",
                "client": FORWARDED_CLIENT,
            },
            {"method": "GET", "path": None, "status": 404, "dialect": None, "tenant": None, "client": FORWARDED_CLIENT},
        ]
        for line in access(lines):
            assert line["level"] == "info"
            assert line["message"] == "request"
            assert 0 <= line["duration"] < 60
            assert line["time"].endswith("Z")
        assert any(line["logger"] == "uvicorn.error" and "Invalid HTTP request" in line["message"] for line in lines)
        assert any(line["logger"] == "sessiongate" and line["message"] == "started" for line in lines)


def test_without_the_access_log_requests_are_not_logged(database_url, tmp_path):
    with running_server(database_url, tmp_path) as server:
        assert send(server, "POST", "/api/sessions", json={"identifier": "quiet"}).status_code == 200
        assert not access(log_lines(server))


BOOM = """
from __future__ import annotations

from typing import Any, ClassVar

from litestar import Request, Response, get

from sessiongate.core.errors import GatewayError
from sessiongate.core.models import ExpiryPolicy
from sessiongate.dialects.base import DialectPlugin


@get("/boom", sync_to_thread=False)
def explode(request: Request[Any, Any, Any]) -> dict[str, str]:
    credential = request.headers.get("authorization", "")
    return use(credential)


def use(credential: str) -> dict[str, str]:
    secret_local = credential.upper()
    raise RuntimeError(f"cannot use {credential} ({secret_local})")


class BoomDialect(DialectPlugin):
    name = "boom"
    title = "Boom"
    controllers: ClassVar = [explode]

    def expiry_policy(self) -> ExpiryPolicy:
        return ExpiryPolicy(ttl=60)

    def render_error(self, request: Request[Any, Any, Any], error: GatewayError) -> Response[Any]:
        return Response({"error": error.message}, status_code=error.status)
"""


def install_boom(place: Path) -> Path:
    """A third-party dialect whose route fails unexpectedly, installed in ``place`` (an entry point, as pip would)."""
    package = place / "sessiongate_boom"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(BOOM))
    meta = place / "sessiongate_boom-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: sessiongate-boom\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[sessiongate.dialects]\nboom = sessiongate_boom:BoomDialect\n")
    return package / "__init__.py"


def test_an_unexpected_error_is_logged_as_frames_without_its_message_or_locals(tmp_path):
    source = install_boom(tmp_path / "site")
    path = os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")]))
    env = ENV | {"PYTHONPATH": path, "SESSIONGATE_DIALECTS": "zelf,boom"}
    with running_server(f"sqlite+aiosqlite:///{tmp_path}/boom.db", tmp_path, env=env) as server:
        answer = send(server, "GET", "/boom")
        assert (answer.status_code, answer.json()) == (500, {"error": "internal error"})

        lines = logged_request(server, "GET", "/boom", 500)
        logs = server.logs()
        assert BEARER not in logs
        assert BEARER.upper() not in logs
        [error] = [line for line in lines if line["level"] == "error"]
        assert error["exception"] == "RuntimeError"
        [stack] = error["traceback"]
        assert stack["type"] == "RuntimeError"
        assert set(stack["frames"][-1]) == {"file", "line", "function"}
        ours = [frame for frame in stack["frames"] if frame["file"] == str(source)]
        assert [frame["function"] for frame in ours] == ["explode", "use"]
        assert all(isinstance(frame["line"], int) for frame in ours)
        last = access(lines)[-1]
        assert (last["method"], last["path"], last["status"], last["dialect"]) == ("GET", "/boom", 500, "boom")
