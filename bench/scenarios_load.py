"""Production-shaped scenarios for ``bench/run.py`` (issue 17): many distinct sessions, writes landing, PostgreSQL.

* ``issp-validate-many``: issp validate over ``MANY`` distinct live sessions, each request a different cookie (the
  load generator goes round the list), so no answer is kept from the request before.
* ``mix``: the production mix, 90 % validates of distinct sessions across dialects (issp validate, amity verify,
  saymon current user) and 10 % zelf creates, interleaved, so commits land between the validates.
* ``2w-issp-validate-many``, ``2w-zelf-create`` and ``2w-mix``: the same three on a gateway serving its own SQLite file
  with two workers (issue 17: measure two workers against one; each has its own writer thread, and they share the
  file's write lock and see each other's commits through it). The goals are held against the one-worker rows.
* ``granian-issp-validate-many`` and ``granian-mix``: the first and the second on a gateway served by granian
  (``serve --server granian``, one worker, its own SQLite file), beside the same rows on the default, uvicorn.
* ``pg-issp-validate-many`` and ``pg-zelf-create``: the same validate, and zelf create, on the gateway that serves
  PostgreSQL with two workers.
* ``lean-validate-many``: the lean Litestar + SQLAlchemy Core + asyncpg validate (``lean_app.py``), two workers, over
  as many distinct sessions on the same PostgreSQL server: the anchor the PostgreSQL validate is held against.

Built with ``bench/run.py``'s ``Scenario`` passed in, as ``scenarios_portos`` explains. Each setup returns
``{"variants": <JSON list of requests>}``, which the harness hands to the load generator.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import scenarios_amity
import scenarios_issp
import scenarios_saymon
from gateway_cli import sessiongate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

MANY = 10_000
"""Distinct live sessions the validate scenarios go round (issue 17: at least 10 000)."""
AMITY_SESSIONS = 2_000
SAYMON_SESSIONS = 32  # each is an argon2id login: a few seconds for all
CREATE_EVERY = 10  # one create in ten requests of the mix
POPULATE_CONNECTIONS = 8
BENCH_DIR = Path(__file__).resolve().parent
JSON = {"Content-Type": "application/json"}


def scenarios(scenario: Callable[..., Any]) -> list[Any]:
    """The issue-17 scenarios (their goals are checked by ``run.issue17_goals``)."""
    validate = {"method": "POST", "path": scenarios_issp.VALIDATE_PATH}
    many = {"setup": issp_many, **validate}
    create = {"method": "POST", "path": "/api/sessions", "headers": JSON, "body": '{"identifier": "{id}"}'}
    return [
        scenario(name="issp-validate-many", label=f"issp validate, {MANY:,} sessions", **many),
        scenario(name="mix", label="mix: 90 % validates, 10 % creates", setup=mix, **validate),
        scenario(name="2w-issp-validate-many", label=f"SQLite 2w: issp validate, {MANY:,}", target="sqlite-2w", **many),
        scenario(name="2w-zelf-create", label="SQLite 2w: zelf create", target="sqlite-2w", **create),
        scenario(name="2w-mix", label="SQLite 2w: mix", setup=mix, target="sqlite-2w", **validate),
        scenario(
            name="granian-issp-validate-many", label=f"granian: issp validate, {MANY:,}", target="granian", **many
        ),
        scenario(name="granian-mix", label="granian: mix", setup=mix, target="granian", **validate),
        scenario(name="pg-issp-validate-many", label=f"PG 2w: issp validate, {MANY:,} sessions", target="pg", **many),
        scenario(name="pg-zelf-create", label="PG 2w: zelf create", target="pg", **create),
        scenario(
            name="lean-validate-many",
            label=f"lean asyncpg 2w: validate, {MANY:,}",
            method="POST",
            path="/validate",
            setup=lean_many,
            target="lean",
        ),
    ]


def _requests(port: int, count: int, make: Callable[[http.client.HTTPConnection, int], str]) -> list[str]:
    """``make(connection, i)`` for i in range(count), on a few keep-alive connections at once."""

    def some(indexes: range) -> list[str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            return [make(conn, i) for i in indexes]
        finally:
            conn.close()

    step = -(-count // POPULATE_CONNECTIONS)
    chunks = [range(start, min(start + step, count)) for start in range(0, count, step)]
    with ThreadPoolExecutor(POPULATE_CONNECTIONS) as pool:
        return [item for chunk in pool.map(some, chunks) for item in chunk]


def _post(conn: http.client.HTTPConnection, path: str, body: object, headers: dict[str, str]) -> tuple[bytes, str]:
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    response = conn.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path} answered {response.status}: {answer[:200]!r}")
    return answer, response.getheader("Set-Cookie") or ""


def issp_cookies(target: Any, count: int) -> list[str]:
    """``count`` live issp sessions of the benchmark's user: their ``sessionCookie`` values."""
    user = scenarios_issp.USER_ID
    sessiongate(
        target.pid, "users", "add", "--login", scenarios_issp.LOGIN, "--id", user, "--email", scenarios_issp.LOGIN
    )

    def make(conn: http.client.HTTPConnection, _: int) -> str:
        _, cookie = _post(conn, scenarios_issp.CREATE_PATH, {"userID": user}, JSON)
        return cookie.partition("=")[2].split(";", 1)[0]

    return _requests(target.port, count, make)


def _issp_validate(cookie: str) -> dict[str, Any]:
    headers = [["Cookie", f"sessionCookie={cookie}"]]
    return {"method": "POST", "path": scenarios_issp.VALIDATE_PATH, "headers": headers, "body": None}


async def issp_many(target: Any) -> dict[str, str]:
    """``MANY`` issp sessions, one validate each."""
    cookies = await asyncio.to_thread(issp_cookies, target, MANY)
    return {"variants": json.dumps([_issp_validate(c) for c in cookies])}


def _amity_tokens(target: Any, count: int) -> list[str]:
    def make(conn: http.client.HTTPConnection, i: int) -> str:
        body = {"userId": f"bench-many-{i}", "deviceId": f"bench-many-{i}-device"}
        answer, _ = _post(conn, scenarios_amity.REGISTER_PATH, body, JSON | {"x-api-key": scenarios_amity.API_KEY})
        token: str = json.loads(answer)["accessToken"]
        return token

    return _requests(target.port, count, make)


def _saymon_sids(target: Any, count: int) -> list[str]:
    login = {"login": scenarios_saymon.LOGIN, "password": scenarios_saymon.PASSWORD}

    def make(conn: http.client.HTTPConnection, _: int) -> str:
        sid: str = json.loads(_post(conn, scenarios_saymon.LOGIN_PATH, login, JSON)[0])
        return sid

    return _requests(target.port, count, make)


async def mix(target: Any) -> dict[str, str]:
    """Validates of distinct sessions of three dialects, one zelf create in every ``CREATE_EVERY`` requests."""
    await scenarios_amity.provision(target)
    await scenarios_saymon.provisioned(target)
    issp = await asyncio.to_thread(issp_cookies, target, MANY - AMITY_SESSIONS - SAYMON_SESSIONS)
    amity = await asyncio.to_thread(_amity_tokens, target, AMITY_SESSIONS)
    saymon = await asyncio.to_thread(_saymon_sids, target, SAYMON_SESSIONS)
    validates = [_issp_validate(c) for c in issp]
    validates += [
        {"method": "GET", "path": scenarios_amity.VERIFY_PATH, "headers": [["Authorization", f"Bearer {t}"]]}
        for t in amity
    ]
    validates += [
        {"method": "GET", "path": "/node/api/users/current", "headers": [["Cookie", f"sid={s}"]]} for s in saymon
    ]
    for item in validates:
        item.setdefault("body", None)
    random.Random(17).shuffle(validates)
    create = {"method": "POST", "path": "/api/sessions", "headers": [list(h) for h in JSON.items()]}
    create["body"] = '{"identifier": "{id}"}'
    return {"variants": json.dumps(list(_interleave(validates, create)))}


def _interleave(validates: list[dict[str, Any]], create: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for index, item in enumerate(validates, start=1):
        yield item
        if index % (CREATE_EVERY - 1) == 0:
            yield create


async def lean_many(target: Any) -> dict[str, str]:
    """``MANY`` sessions in the anchor's table, one validate each (seeded straight into its database)."""
    environ = Path(f"/proc/{target.pid}/environ").read_bytes().split(b"\0")
    url = dict(item.decode().split("=", 1) for item in environ if b"=" in item)["LEAN_DATABASE_URL"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cookies.txt"
        argv = [sys.executable, str(BENCH_DIR / "lean_app.py"), "seed", "--url", url, "--count", str(MANY)]
        await asyncio.to_thread(subprocess.run, [*argv, "--out", str(out)], check=True)
        cookies = out.read_text().split()
    return {"variants": json.dumps([{**_issp_validate(c), "path": "/validate"} for c in cookies])}
