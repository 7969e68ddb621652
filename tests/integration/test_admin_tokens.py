"""``sessiongate admin-tokens``: made, listed and revoked by an operator, and a revoke reaches every server process."""

from __future__ import annotations

import re

import httpx
import pytest

from sessiongate.storage.api_token_tables import ApiTokenRecord
from tests.support.gate import INTROSPECT
from tests.support.migrations import differences_from_declared
from tests.support.server import run_command, running_server

TOKEN = re.compile(r"^token: (sgt_[A-Za-z0-9_-]{43})$", re.MULTILINE)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def add(database_url, tmp_path, name, *scope):
    result = run_command(database_url, tmp_path, "admin-tokens", "add", "--name", name, *scope)
    assert result.returncode == 0, result.stderr
    match = TOKEN.search(result.stdout)
    assert match is not None, result.stdout
    assert "cannot be shown again" in result.stderr
    return match.group(1)


@pytest.mark.slow
def test_tokens_are_shown_once_listed_without_their_value_and_revoked_by_name(database_url, tmp_path):
    first = add(database_url, tmp_path, "resource-server")
    second = add(database_url, tmp_path, "operator", "--scope", "admin")
    listed = run_command(database_url, tmp_path, "admin-tokens", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [["resource-server", "introspect"], ["operator", "admin"]]
    assert first[:12] in lines[0]
    assert second[:12] in lines[1]
    assert first not in listed.stdout
    assert second not in listed.stdout
    assert all("last used never" in line for line in lines)
    revoked = run_command(database_url, tmp_path, "admin-tokens", "revoke", "--name", "operator")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked operator" in revoked.stdout
    assert "revoked " in run_command(database_url, tmp_path, "admin-tokens", "list").stdout.splitlines()[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "--name", "dup"), "exists already"),
        (("add", "--name", " padded"), "printable characters"),
        (("add", "--name", "a/b"), "printable characters"),
        (("add", "--name", "caf\u00e9"), "printable characters"),
        (("add", "--name", "x", "--scope", "root"), "Invalid value for '--scope'"),
        (("revoke", "--name", "nobody"), "no token named 'nobody'"),
    ],
)
def test_mistakes_are_one_clear_line(database_url, tmp_path, args, message):
    add(database_url, tmp_path, "dup")
    result = run_command(database_url, tmp_path, "admin-tokens", *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_revoked_token_is_refused_by_every_server_process_on_its_next_request(database_url, tmp_path):
    token = add(database_url, tmp_path, "resource-server")
    headers = {"Authorization": f"Bearer {token}", **FORM}
    with running_server(database_url, tmp_path, workers=2) as server, httpx.Client(base_url=server.base_url) as http:
        # Fresh connections are spread over both workers; every one of them takes the token now.
        for _ in range(8):
            with httpx.Client(base_url=server.base_url) as fresh:
                assert fresh.post(INTROSPECT, data={"token": "x"}, headers=headers).json() == {"active": False}
        assert (
            run_command(database_url, tmp_path, "admin-tokens", "revoke", "--name", "resource-server").returncode == 0
        )
        for _ in range(8):
            with httpx.Client(base_url=server.base_url) as fresh:
                assert fresh.post(INTROSPECT, data={"token": "x"}, headers=headers).status_code == 401
        assert http.post(INTROSPECT, data={"token": "x"}, headers=headers).status_code == 401
        assert token not in server.logs()


def test_migration_0009_creates_what_the_table_declares(database_url):
    assert differences_from_declared(database_url, ApiTokenRecord.__tablename__) == []


@pytest.mark.slow
def test_an_existing_token_is_imported_and_never_echoed(database_url, tmp_path):
    value = "sgt_" + "k" * 40
    args = ("admin-tokens", "add", "--name", "imported", "--from-stdin")
    result = run_command(database_url, tmp_path, *args, stdin=value + "\n")
    assert result.returncode == 0, result.stderr
    assert "token: (imported)" in result.stdout
    assert value not in result.stdout + result.stderr
    assert value[:12] in run_command(database_url, tmp_path, "admin-tokens", "list").stdout
    refused = run_command(database_url, tmp_path, *args, stdin="not-a-gateway-token-0123456789abcdef\n")
    assert refused.returncode != 0
    assert "a token must be 'sgt_'" in refused.stderr
    taken = run_command(database_url, tmp_path, "admin-tokens", "add", "--name", "again", "--from-stdin", stdin=value)
    assert taken.returncode != 0
    assert "a token with this value exists already" in taken.stderr
    assert "Traceback" not in taken.stderr
