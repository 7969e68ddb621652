from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import pytest

from tests.integration.test_secrets_at_rest import (
    MASTER,
    copied_secrets,
    forge,
    list_sessions,
    log_in,
    log_lines,
    provision,
)
from tests.support.server import Server, run_command, running_server

# Every test here starts a gateway process or runs the CLI in one: `python -m pytest -m slow` (CI runs them).
pytestmark = pytest.mark.slow

FAST = {"SESSIONGATE_KEY_REFRESH_INTERVAL": "1"}  # every process reads the key ring each second
PATIENCE = 60.0  # seconds: a generous bound for what servers re-reading each second do on their own, on a busy machine
SIGNING_KEY = "configured-signing-key-0123456789abcdef-0123"
DIGEST_1 = "configured-digest-key-one-0123456789abcdef"
DIGEST_2 = "configured-digest-key-two-0123456789abcdef"
# The retirement of a rotated-out signing key, after the new key starts signing (two re-reads after the rotation):
# one re-read more (a process still signing with the old key), the longest lifetime (amity's 30 days), the leeway.
RETIRE_AFTER = 1 + 30 * 86400 + 5


def cli(database_url: str, directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = run_command(database_url, directory, *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def refused(database_url: str, directory: Path, *args: str, env: dict[str, str] | None = None) -> list[str]:
    done = run_command(database_url, directory, *args, env=env)
    assert done.returncode != 0, done.stdout + done.stderr
    return [line for line in done.stderr.splitlines() if not line.startswith("database: ")]  # what it says besides


def key_ring(database_url: str, directory: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    listed = cli(database_url, directory, "key-ring", "list", env=env)
    return dict(line.split(None, 1) for line in listed.splitlines())


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {PATIENCE} s: {what}")
        time.sleep(0.2)


def signed_with(server: Server, wanted: str) -> str:
    """A portos login on ``server`` once it signs with ``wanted``."""
    tokens: list[str] = []

    def signs() -> bool:
        tokens.append(log_in(server))
        return kid(tokens[-1]) == wanted

    eventually(signs, f"{server.base_url} signs with {wanted}")
    return tokens[-1]


def said_key_ring(server: Server, **state: object) -> bool:
    return any(
        line["message"] == "key ring changed" and all(line.get(k) == v for k, v in state.items())
        for line in log_lines(server.logs())
    )


def auth_token(database_url: str, directory: Path, login: str, env: dict[str, str] | None = None) -> str:
    cli(database_url, directory, "users", "add", "--login", login, "--email", login, env=env)
    return cli(database_url, directory, "tokens", "add", "--login", login, env=env).strip()


def api_key(database_url: str, directory: Path, tenant: str, env: dict[str, str] | None = None) -> str:
    added = cli(database_url, directory, "keys", "add", "--tenant", tenant, env=env)
    return next(line.split()[-1] for line in added.splitlines() if line.startswith("api key:"))


def saymon_login(server: Server, token: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/node/api/users/session", json={"auth-token": token}, timeout=30)


def sid_of(server: Server, token: str) -> str:
    response = saymon_login(server, token)
    assert response.status_code == 200, response.text
    return str(response.json())


def saymon_current(server: Server, sid: str) -> int:
    return httpx.get(f"{server.base_url}/node/api/users/current", cookies={"sid": sid}, timeout=30).status_code


def amity_register(server: Server, key: str) -> int:
    body = {"userId": "carol", "deviceId": "web-1"}
    return httpx.post(
        f"{server.base_url}/api/v3/sessions", json=body, headers={"x-api-key": key}, timeout=30
    ).status_code


def portos_login(server: Server) -> dict[str, str]:
    body = {"UserName": "999", "Password": "portos-999-secret", "DeviceName": "BackOffice"}
    response = httpx.post(f"{server.base_url}/api/auth", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return {"tokenId": response.json()["tokenId"], "refreshToken": response.json()["refreshToken"]}


def portos_refresh(server: Server, login: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/api/auth/refresh", json=login, timeout=30)


def test_tokens_signed_by_the_generated_key_keep_verifying_once_jwt_keys_are_set_until_it_is_retired(
    database_url, tmp_path
):
    provision(database_url, tmp_path, {})
    with running_server(database_url, tmp_path) as server:
        generated = log_in(server)
    configured = FAST | {"SESSIONGATE_JWT_KEYS": json.dumps({"k1": SIGNING_KEY})}
    with running_server(database_url, tmp_path, env=configured) as server:
        assert list_sessions(server, generated) == 200
        signed = log_in(server)
        assert kid(signed) == "k1"
        assert list_sessions(server, signed) == 200
        listed = key_ring(database_url, tmp_path, configured)
        assert (listed["jwt:k1"], listed["jwt:auto-1"]) == ("signs (SESSIONGATE_JWT_KEYS)", "verifies until retired")
        cli(database_url, tmp_path, "key-ring", "retire", "jwt:auto-1", env=configured)
        eventually(
            lambda: list_sessions(server, generated) == 401, "the retired key stops verifying, without a restart"
        )
        assert list_sessions(server, signed) == 200
    with running_server(database_url, tmp_path, env=configured) as server:
        assert (list_sessions(server, generated), list_sessions(server, signed)) == (401, 200)
    assert key_ring(database_url, tmp_path, configured)["jwt:auto-1"].startswith("retired at ")


def test_secrets_digested_under_the_generated_key_keep_working_once_token_key_is_set_and_when_it_rotates(
    database_url, tmp_path
):
    token = auth_token(database_url, tmp_path, "alice@example.com")
    key = api_key(database_url, tmp_path, "acme")
    with running_server(database_url, tmp_path) as server:
        sid = sid_of(server, token)
    first = {"SESSIONGATE_TOKEN_KEY": DIGEST_1}
    with running_server(database_url, tmp_path, env=first) as server:
        assert (saymon_current(server, sid), amity_register(server, key)) == (200, 200)
        later = sid_of(server, token)
        assert saymon_current(server, later) == 200
    second = {"SESSIONGATE_TOKEN_KEY": DIGEST_2, "SESSIONGATE_TOKEN_KEY_PREVIOUS": DIGEST_1}
    with running_server(database_url, tmp_path, env=second) as server:
        assert [saymon_current(server, s) for s in (sid, later)] == [200, 200]
        assert (saymon_login(server, token).status_code, amity_register(server, key)) == (200, 200)
    cli(database_url, tmp_path, "key-ring", "retire", "digest-key", env=second)
    # Neither the generated key nor the first configured one is left: what was used since is digested under the second.
    only = {"SESSIONGATE_TOKEN_KEY": DIGEST_2}
    with running_server(database_url, tmp_path, env=only) as server:
        assert [saymon_current(server, s) for s in (sid, later)] == [200, 200]
        assert (saymon_login(server, token).status_code, amity_register(server, key)) == (200, 200)
        assert saymon_current(server, "not-a-session") == 401


def test_a_signing_key_rotated_with_the_cli_reaches_two_serving_processes_and_the_keys_it_replaces_retire_by_themselves(
    database_url, tmp_path
):
    provision(database_url, tmp_path, {})
    with (
        running_server(database_url, tmp_path, env=FAST) as one,
        running_server(database_url, tmp_path, env=FAST) as two,
    ):
        before = [log_in(one), log_in(two)]
        assert [kid(t) for t in before] == ["auto-1", "auto-1"]
        started = time.time()
        rotated = cli(database_url, tmp_path, "key-ring", "rotate", "jwt", env=FAST)
        finished = time.time()
        assert "jwt:auto-2" in rotated
        after = [signed_with(one, "auto-2"), signed_with(two, "auto-2")]
        assert [list_sessions(server, t) for server in (one, two) for t in before + after] == [200] * 8
        listed = key_ring(database_url, tmp_path, FAST)
        assert listed["jwt:auto-2"] == "signs"
        retires = datetime.fromisoformat(listed["jwt:auto-1"].removeprefix("verifies until ")).timestamp()
        assert started + 2 + RETIRE_AFTER - 1 <= retires <= finished + 2 + RETIRE_AFTER + 1
        # Told to retire what it replaces 2 s after it starts, a second rotation retires auto-1 sooner too.
        cli(database_url, tmp_path, "key-ring", "rotate", "jwt", "--retire-after", "2", env=FAST)
        latest = signed_with(two, "auto-3")
        eventually(
            lambda: [list_sessions(s, t) for s in (one, two) for t in before + after] == [401] * 8,
            "auto-1 and auto-2 retire in both processes",
        )
        assert [list_sessions(s, latest) for s in (one, two)] == [200, 200]
    listed = key_ring(database_url, tmp_path, FAST)
    assert [listed[name].split(" at ")[0] for name in ("jwt:auto-1", "jwt:auto-2")] == ["retired", "retired"]
    assert listed["jwt:auto-3"] == "signs"


def test_a_process_that_has_not_read_a_rotation_yet_verifies_the_first_token_naming_the_new_key(database_url, tmp_path):
    provision(database_url, tmp_path, {})
    slow = {"SESSIONGATE_KEY_REFRESH_INTERVAL": "3600"}  # it would not read the ring again during this test
    with (
        running_server(database_url, tmp_path, env=FAST) as reading,
        running_server(database_url, tmp_path, env=slow) as waiting,
    ):
        before = log_in(waiting)
        cli(database_url, tmp_path, "key-ring", "rotate", "jwt", env=FAST)
        new = signed_with(reading, "auto-2")
        assert list_sessions(waiting, new) == 200
        assert list_sessions(waiting, before) == 200
        claims = jwt.decode(new, options={"verify_signature": False})
        assert list_sessions(waiting, jwt.encode(claims, SIGNING_KEY, headers={"kid": "nope"})) == 401


def test_a_digest_key_rotated_with_the_cli_keeps_every_secret_working_in_two_processes_and_moves_each_on_use(
    database_url, tmp_path
):
    provision(database_url, tmp_path, FAST)
    used_token = auth_token(database_url, tmp_path, "alice@example.com", FAST)
    idle_token = auth_token(database_url, tmp_path, "bob@example.com", FAST)
    used_key, idle_key = api_key(database_url, tmp_path, "acme", FAST), api_key(database_url, tmp_path, "idle", FAST)
    with (
        running_server(database_url, tmp_path, env=FAST) as one,
        running_server(database_url, tmp_path, env=FAST) as two,
    ):
        sid = sid_of(one, used_token)
        login = portos_login(one)
        rotated = cli(database_url, tmp_path, "key-ring", "rotate", "digest", env=FAST)
        assert "digest-key-2" in rotated
        eventually(
            lambda: all(said_key_ring(s, digest_key="digest-key-2") for s in (one, two)),
            "both processes digest new secrets with digest-key-2",
        )
        assert [saymon_current(s, sid) for s in (two, one)] == [200, 200]
        new_sid = sid_of(two, used_token)
        assert [saymon_current(s, new_sid) for s in (one, two)] == [200, 200]
        assert amity_register(two, used_key) == 200
        refreshed = portos_refresh(two, login)
        assert refreshed.status_code == 200, refreshed.text
        assert key_ring(database_url, tmp_path, FAST)["digest-key"] == "tried until retired"
        # Retiring the previous key ends only what was not used since the rotation. (Using an idle secret before a
        # process has read the retirement would move it to digest-key-2: wait for both to say they read it.)
        cli(database_url, tmp_path, "key-ring", "retire", "digest-key", env=FAST)
        eventually(
            lambda: all(said_key_ring(s, digest_key="digest-key-2", tried_digest_keys=[]) for s in (one, two)),
            "both processes stop trying digest-key",
        )
        assert [amity_register(s, idle_key) for s in (one, two)] == [401, 401]
        assert [saymon_login(s, idle_token).status_code for s in (one, two)] == [401, 401]
        for server in (one, two):
            assert [saymon_current(server, s) for s in (sid, new_sid)] == [200, 200]
            assert (saymon_login(server, used_token).status_code, amity_register(server, used_key)) == (200, 200)
        login = {"tokenId": refreshed.json()["tokenId"], "refreshToken": refreshed.json()["refreshToken"]}
        assert portos_refresh(one, login).status_code == 200


def test_keys_a_rotation_makes_are_kept_encrypted_under_the_master_key(database_url, tmp_path):
    env = FAST | {"SESSIONGATE_SECRET_KEY": MASTER}
    provision(database_url, tmp_path, env)
    with running_server(database_url, tmp_path, env=env) as server:
        old = log_in(server)
    cli(database_url, tmp_path, "key-ring", "rotate", "jwt", env=env)
    cli(database_url, tmp_path, "key-ring", "rotate", "digest", env=env)
    kept = copied_secrets(database_url, tmp_path)
    assert set(kept) == {"jwt:auto-1", "jwt:auto-2", "digest-key", "digest-key-2"}
    assert all(value.startswith("fernet:") for value in kept.values())
    without = refused(database_url, tmp_path, "key-ring", "rotate", "jwt", env=FAST)
    assert len(without) == 1
    assert "SESSIONGATE_SECRET_KEY" in without[0]
    assert copied_secrets(database_url, tmp_path) == kept  # nothing was made in clear beside them
    with running_server(database_url, tmp_path, env=env) as server:
        new = signed_with(server, "auto-2")
        assert (list_sessions(server, old), list_sessions(server, new)) == (200, 200)
        assert [list_sessions(server, forge(new, value)) for value in kept.values()] == [401] * len(kept)
    assert MASTER not in server.logs()


def test_the_key_ring_command_refuses_to_retire_what_is_in_use_and_never_shows_a_key(database_url, tmp_path):
    assert key_ring(database_url, tmp_path) == {}  # listing changes nothing: no gateway has made its keys yet
    cli(database_url, tmp_path, "users", "list")  # every other command starts as a gateway does, making them
    assert key_ring(database_url, tmp_path) == {"jwt:auto-1": "signs", "digest-key": "digests"}
    assert "signs" in refused(database_url, tmp_path, "key-ring", "retire", "jwt:auto-1")[-1]
    assert "digests" in refused(database_url, tmp_path, "key-ring", "retire", "digest-key")[-1]
    assert "no generated key" in refused(database_url, tmp_path, "key-ring", "retire", "jwt:auto-9")[-1]
    configured = {"SESSIONGATE_JWT_KEYS": json.dumps({"k1": SIGNING_KEY}), "SESSIONGATE_TOKEN_KEY": DIGEST_1}
    assert "SESSIONGATE_JWT_KEYS" in refused(database_url, tmp_path, "key-ring", "rotate", "jwt", env=configured)[-1]
    assert (
        "SESSIONGATE_TOKEN_KEY" in refused(database_url, tmp_path, "key-ring", "rotate", "digest", env=configured)[-1]
    )
    assert key_ring(database_url, tmp_path, configured) == {
        "jwt:k1": "signs (SESSIONGATE_JWT_KEYS)",
        "jwt:auto-1": "verifies until retired",
        "SESSIONGATE_TOKEN_KEY": "digests",
        "digest-key": "tried until retired",
    }
    rotated = cli(database_url, tmp_path, "key-ring", "rotate", "jwt")
    listed = cli(database_url, tmp_path, "key-ring", "list", env=configured)
    kept = copied_secrets(database_url, tmp_path)
    assert len(kept) == 3
    assert not any(value in rotated + listed for value in [*kept.values(), SIGNING_KEY, DIGEST_1])
